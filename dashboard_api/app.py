"""The FastAPI application factory; the pool opens with the app and closes with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dashboard_api.notifications import router as notifications_router
from dashboard_api.routes import router
from devices.db import open_pool
from devices.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await open_pool(settings.database_url, name="api", max_size=10)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="Eldercare monitoring API",
        version="0.1.0",
        lifespan=lifespan,
        description="Live alerts, dispatch orders and residents for care-station "
        "staff; their own relative for families. Sign in at /api/auth/token.",
    )
    app.state.settings = settings
    app.include_router(router)
    app.include_router(notifications_router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
