"""The web pages: static HTML, CSS and vanilla JS from ``dashboard_api/static`` (no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/login")


@router.get("/login")
async def login_page() -> FileResponse:
    return _page("login.html")


@router.get("/station")
async def station_page() -> FileResponse:
    return _page("station.html")


@router.get("/family")
async def family_page() -> FileResponse:
    return _page("family.html")


@router.get("/visits")
async def visits_page() -> FileResponse:
    return _page("visits.html")


@router.get("/safety")
async def safety_page() -> FileResponse:
    return _page("safety.html")
