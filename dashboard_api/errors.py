"""Request validation errors as 422s that always render; a database outage as a 503.

FastAPI's default handler echoes the offending input back; input holding a lone UTF-16
surrogate (valid JSON: ``"\\udc80"``) cannot be encoded as UTF-8 and turned a client's mistake
into a 500. This handler keeps type, location and message (enough to fix the request), drops
the echoed input, and escapes anything non-ASCII.
"""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    body = json.dumps({"detail": detail}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The database is restarting or out of connections: 503 with Retry-After, not a 500, so
    pages and clients retry instead of reporting a bug."""
    body = json.dumps(
        {"detail": "数据库暂时不可用，请稍后重试 / the database is unavailable, retry shortly"},
        ensure_ascii=True,
    )
    return Response(
        body, status_code=503, media_type="application/json", headers={"Retry-After": "5"}
    )
