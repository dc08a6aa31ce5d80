"""Connections: one async pool per process, opened in main() and passed down."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

AsyncPool = AsyncConnectionPool[AsyncConnection[DictRow]]


async def open_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 8, name: str
) -> AsyncPool:
    pool: AsyncPool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        connection_class=AsyncConnection[DictRow],
        kwargs={"row_factory": dict_row, "application_name": f"eldercare-{name}"},
    )
    await pool.open(wait=True, timeout=30)
    return pool


def sqlalchemy_url(database_url: str) -> str:
    """The same database as a SQLAlchemy URL (psycopg 3 driver), for Alembic."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ValueError(f"not a postgresql:// URL: {database_url!r}")
