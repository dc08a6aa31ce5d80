"""``/healthz``, ``/readyz`` and ``/metrics`` for a worker process (the API serves its own):
alive; ready (every supervised loop running and the database answering); Prometheus text.
A small Starlette app served by uvicorn inside the worker's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devices.db import AsyncPool
from devices.supervise import Supervisor

log = logging.getLogger(__name__)

POOL = Gauge("db_pool", "Connection pool statistics (psycopg_pool get_stats)", ["pool", "stat"])
_POOL_STATS = ("pool_size", "pool_available", "requests_waiting", "requests_errors")


def record_pool_stats(pool: AsyncPool) -> None:
    stats = pool.get_stats()
    for name in _POOL_STATS:
        POOL.labels(pool.name, name).set(stats.get(name, 0))


async def database_answers(pool: AsyncPool, *, timeout_s: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout_s), pool.connection(timeout=timeout_s) as conn:
            await conn.execute("SELECT 1")
    except Exception:  # noqa: BLE001  any failure means "not ready": what /readyz reports
        return False
    return True


async def readiness(
    pool: AsyncPool, supervisor: Supervisor | None
) -> tuple[bool, dict[str, object]]:
    """Ready: the database answers and every supervised loop runs. The body says which."""
    db = await database_answers(pool)
    loops = {} if supervisor is None else {n: h.as_json() for n, h in supervisor.loops.items()}
    ready = db and (supervisor is None or supervisor.ready())
    return ready, {"ready": ready, "database": db, "loops": loops}


def probe_app(pool: AsyncPool, supervisor: Supervisor, *, process: str) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "process": process})

    async def readyz(request: Request) -> Response:
        ready, body = await readiness(pool, supervisor)
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        record_pool_stats(pool)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
    )


class _QuietServer(uvicorn.Server):
    """Leaves the process's signal handlers alone (the worker's own stop event ends it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_probe(app: Starlette, *, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve until ``stop``; uvicorn's own signal handlers stay off (the worker owns them)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(), name="probe")
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
