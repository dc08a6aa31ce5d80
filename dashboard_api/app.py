"""The FastAPI application factory; the pool and the live LISTEN task open with the app and
close with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from alerts.notify.wiring import open_channels
from alerts.watchdog.loop import WatchConfig, watchdog_loop
from dashboard_api import (
    admin,
    console,
    docs,
    i18n,
    inbound,
    live,
    operations,
    pages,
    timeline,
    wall,
    watch,
)
from dashboard_api.care.routes import router as care_router
from dashboard_api.care.safety_routes import router as safety_router
from dashboard_api.errors import ApiError, api_error, database_unavailable, validation_error
from dashboard_api.figures import router as figures_router
from dashboard_api.notifications import router as notifications_router
from dashboard_api.orders import router as orders_router
from dashboard_api.report.routes import router as reports_router
from dashboard_api.routes import router
from dashboard_api.security import SecurityHeaders
from devices.db import open_pool
from devices.heartbeat import WorkerIdentity, heartbeat_loop
from devices.settings import Settings
from devices.supervise import Supervisor


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await open_pool(settings.database_url, name="api", max_size=10)
        hub = app.state.hub = live.Hub(settings.database_url, keepalive_s=settings.live_keepalive_s)
        listener = asyncio.create_task(hub.run(), name="live-listen")
        async with contextlib.AsyncExitStack() as stack:
            stop = asyncio.Event()
            app.state.supervisor = supervisor = Supervisor(stop=stop)
            tasks: list[asyncio.Task[None]] = []
            if settings.watchdog_in_api:
                # the dead-man's switch: the API tells the centre when the alerts worker died
                channels = await stack.enter_async_context(open_channels(settings))
                who = WorkerIdentity.current("api")
                config = WatchConfig.from_settings(settings)
                pool = app.state.pool
                tasks.append(
                    asyncio.create_task(
                        supervisor.run(
                            "watchdog",
                            lambda: watchdog_loop(
                                pool,
                                config=config,
                                channels=channels,
                                watcher=who.worker_id,
                                stop=stop,
                            ),
                        ),
                        name="watchdog",
                    )
                )
                tasks.append(
                    asyncio.create_task(
                        heartbeat_loop(
                            pool,
                            who,
                            supervisor=supervisor,
                            every_s=settings.heartbeat_interval_s,
                            stop=stop,
                        ),
                        name="heartbeat",
                    )
                )
            try:
                yield
            finally:
                stop.set()
                for task in (*tasks, listener):
                    if task is listener:
                        task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await app.state.pool.close()

    app = FastAPI(
        title="Eldercare monitoring API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # our own /docs with Swagger UI served locally (dashboard_api/docs.py)
        redoc_url=None,
        description="Live alerts, dispatch orders and residents for care-station "
        "staff; their own relative for families. Sign in at /api/auth/token. "
        "Pages: /login, /station (care staff), /console (the 96345 centre), /family.",
    )
    app.state.settings = settings
    app.state.search_window = console.SearchWindow()
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(ApiError, api_error)
    app.add_middleware(SecurityHeaders)
    app.include_router(router)
    app.include_router(orders_router)
    app.include_router(figures_router)
    app.include_router(timeline.router)
    app.include_router(watch.router)
    app.include_router(wall.router)
    app.include_router(console.router)
    app.include_router(live.router)
    app.include_router(pages.router)
    app.include_router(i18n.router)
    app.mount("/static", pages.static_files, name="static")
    app.include_router(docs.router)
    app.include_router(notifications_router)
    app.include_router(admin.router)
    app.include_router(operations.router)
    app.include_router(care_router)
    app.include_router(safety_router)
    app.include_router(reports_router)
    app.include_router(inbound.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
