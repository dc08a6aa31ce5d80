"""The FastAPI application factory; the pool and the live LISTEN task open with the app and
close with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from dashboard_api import admin, docs, i18n, live, pages, timeline, wall
from dashboard_api.errors import ApiError, api_error, validation_error
from dashboard_api.figures import router as figures_router
from dashboard_api.notifications import router as notifications_router
from dashboard_api.orders import router as orders_router
from dashboard_api.routes import router
from dashboard_api.security import SecurityHeaders
from devices.db import open_pool
from devices.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await open_pool(settings.database_url, name="api", max_size=10)
        hub = app.state.hub = live.Hub(settings.database_url, keepalive_s=settings.live_keepalive_s)
        listener = asyncio.create_task(hub.run(), name="live-listen")
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await app.state.pool.close()

    app = FastAPI(
        title="Eldercare monitoring API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # our own /docs with Swagger UI served locally (dashboard_api/docs.py)
        redoc_url=None,
        description="Live alerts, dispatch orders and residents for care-station "
        "staff; their own relative for families. Sign in at /api/auth/token. "
        "Pages: /login, /station (care staff), /family.",
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_middleware(SecurityHeaders)
    app.include_router(router)
    app.include_router(orders_router)
    app.include_router(figures_router)
    app.include_router(timeline.router)
    app.include_router(wall.router)
    app.include_router(live.router)
    app.include_router(pages.router)
    app.include_router(i18n.router)
    app.mount("/static", pages.static_files, name="static")
    app.include_router(docs.router)
    app.include_router(notifications_router)
    app.include_router(admin.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
