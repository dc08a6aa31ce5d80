"""The web pages: HTML, CSS and vanilla JS from ``dashboard_api/static`` (no CDN).

Each page's words are ``{{key}}`` markers filled in from the message catalogue
(devices/i18n) in the language of the ``eldercare_locale`` cookie (set by the pages' language
switch and from the signed-in user's own choice), else the site's; ``{{lang}}`` is that
language, so each page declares it. Scripts read the same catalogue from /i18n/<lang>.json.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from devices.i18n import Locale, parse_locale, t
from devices.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "eldercare_locale"
MARKER = re.compile(r"\{\{([a-zA-Z0-9_.-]+)\}\}")
router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC)


@cache
def _template(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def render(name: str, locale: Locale) -> str:
    def fill(m: re.Match[str]) -> str:
        key = m.group(1)
        return locale if key == "lang" else html.escape(t(key, locale))

    return MARKER.sub(fill, _template(name))


def _page(request: Request, name: str) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    locale = parse_locale(request.cookies.get(COOKIE), settings.site_locale)
    return HTMLResponse(render(name, locale), headers={"Cache-Control": "no-cache"})


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/login")


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html")


@router.get("/station")
async def station_page(request: Request) -> HTMLResponse:
    return _page(request, "station.html")


@router.get("/wall-tv")
async def wall_tv_page(request: Request) -> HTMLResponse:
    """The alert wall alone, large, for a wall-mounted screen."""
    return _page(request, "wall.html")


@router.get("/console")
async def console_page(request: Request) -> HTMLResponse:
    """The 96345 centre console: every site's orders, the hotline form, the league table."""
    return _page(request, "console.html")


@router.get("/family")
async def family_page(request: Request) -> HTMLResponse:
    return _page(request, "family.html")


@router.get("/visits")
async def visits_page(request: Request) -> HTMLResponse:
    return _page(request, "visits.html")


@router.get("/safety")
async def safety_page(request: Request) -> HTMLResponse:
    return _page(request, "safety.html")
