"""Language and time zone for each request (issue 14): the user's own language, else the
site's; catalogue files for the pages; API errors in the caller's language."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from dashboard_api.deps import ConnDep, CurrentUser, SettingsDep
from devices.accounts import Principal, set_locale
from devices.i18n import LOCALES, Locale, catalogue
from devices.i18n.explain import explain
from devices.settings import Settings

router = APIRouter()


def locale_of(user: Principal | None, settings: Settings) -> Locale:
    if user is not None and user.locale in LOCALES:
        return user.locale
    return settings.site_locale


def _locale(user: CurrentUser, settings: SettingsDep) -> Locale:
    return locale_of(user, settings)


LocaleDep = Annotated[Locale, Depends(_locale)]


def explained(row: Mapping[str, Any], *, locale: Locale, tz: str, now: datetime) -> dict[str, Any]:
    """An alert row (kind, details, resident_name, site_id, occurred_at) with its explanation
    rendered in ``locale``; the stored details are not passed on."""
    out = dict(row)
    details = out.pop("details", None) or {}
    out["explanation"] = explain(
        str(row["kind"]),
        details,
        resident=row.get("resident_name"),
        site_id=str(row["site_id"]),
        occurred_at=row["occurred_at"],
        locale=locale,
        tz=tz,
        now=now,
    )
    return out


def _catalogue_route(locale: Locale) -> None:
    async def messages() -> Response:
        """The catalogue for the pages (public: the sign-in page needs it before sign-in)."""
        return JSONResponse(dict(catalogue(locale)), headers={"Cache-Control": "max-age=300"})

    router.add_api_route(f"/i18n/{locale}.json", messages, include_in_schema=False)


for _locale_name in LOCALES:
    _catalogue_route(_locale_name)


class LocaleIn(BaseModel):
    locale: Locale | None  # None: follow the site's language


class LocaleOut(BaseModel):
    locale: Locale
    timezone: str


@router.put("/api/me/locale", response_model=LocaleOut)
async def set_my_locale(
    conn: ConnDep, user: CurrentUser, settings: SettingsDep, body: LocaleIn
) -> LocaleOut:
    """Choose your own language for pages, explanations and notifications."""
    await set_locale(conn, user_id=user.user_id, locale=body.locale)
    await conn.commit()
    return LocaleOut(locale=body.locale or settings.site_locale, timezone=settings.site_timezone)
