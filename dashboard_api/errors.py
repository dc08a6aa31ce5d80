"""Request validation errors as 422s that always render; a database outage as a 503.

FastAPI's default handler echoes the offending input back; input holding a lone UTF-16
surrogate (valid JSON: ``"\\udc80"``) cannot be encoded as UTF-8 and turned a client's mistake
into a 500. This handler keeps type, location and message (enough to fix the request), drops
the echoed input, and escapes anything non-ASCII.
"""

from __future__ import annotations

import json

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from devices.i18n import parse_locale, t
from devices.settings import Settings


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    settings: Settings = request.app.state.settings
    locale = parse_locale(request.headers.get("accept-language"), settings.site_locale)
    message = t("error.invalid", locale)
    body = json.dumps({"detail": detail, "message": message}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")


class ApiError(HTTPException):
    """An HTTP error whose message is a catalogue key, rendered in the caller's language."""

    def __init__(
        self, status_code: int, key: str, headers: dict[str, str] | None = None, **params: object
    ) -> None:
        super().__init__(status_code, t(key, "en", **params), headers=headers)
        self.key, self.params = key, params


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    settings: Settings = request.app.state.settings
    locale = parse_locale(request.headers.get("accept-language"), settings.site_locale)
    return JSONResponse(
        {"detail": t(exc.key, locale, **exc.params), "code": exc.key},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The database is restarting or out of connections: 503 with Retry-After, not a 500, so
    pages and clients retry instead of reporting a bug."""
    settings: Settings = request.app.state.settings
    locale = parse_locale(request.headers.get("accept-language"), settings.site_locale)
    key = "error.database_unavailable"
    return JSONResponse(
        {"detail": t(key, locale), "code": key}, status_code=503, headers={"Retry-After": "5"}
    )
