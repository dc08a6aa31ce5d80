"""``python -m dashboard_api.report --month 2026-11 --out DIR``: the month's report per
district and community (PDF, PNG pages, CSV). ``python -m dashboard_api.report schedule
--out DIR``: the main job's monthly schedule, its own small process (run.sh): it writes last
month's report once the month is over, once (``report_runs``), and sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import psycopg
import typer
from psycopg.rows import dict_row

from alerts.care.plan import parse_month
from alerts.care.store import PLAN_TZ
from dashboard_api.report.data import gather
from dashboard_api.report.render import write_scope
from devices.logs import setup_logging
from devices.settings import Settings

app = typer.Typer(add_completion=False, help="The monthly report")
log = logging.getLogger("report")


async def write_report(database_url: str, *, month: date, out: Path) -> list[Path]:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        figures = await gather(conn, month=month)
    written: list[Path] = []
    for f in figures:
        written += await asyncio.to_thread(write_scope, f, out)
    return written


def previous_month(now: datetime) -> date:
    local = now.astimezone(ZoneInfo(PLAN_TZ)).date()
    return date(local.year - (local.month == 1), (local.month - 2) % 12 + 1, 1)


async def due_month(
    conn: psycopg.AsyncConnection[dict[str, object]], *, now: datetime, out: Path
) -> date | None:
    """Claim last month's report if nobody wrote it yet (a restart does not write it twice)."""
    month = previous_month(now)
    cur = await conn.execute(
        "INSERT INTO report_runs (month, started_at, out_dir) VALUES (%s, %s, %s) "
        "ON CONFLICT (month) DO NOTHING",
        (month, now, str(out)),
    )
    await conn.commit()
    return month if cur.rowcount == 1 else None


async def schedule(settings: Settings, *, out: Path, every_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(
                settings.database_url, row_factory=dict_row
            ) as conn:
                month = await due_month(conn, now=datetime.now(UTC), out=out)
                if month is not None:
                    target = out / month.strftime("%Y-%m")
                    try:
                        files = await write_report(settings.database_url, month=month, out=target)
                        await conn.execute(
                            "UPDATE report_runs SET done_at = now() WHERE month = %s", (month,)
                        )
                        log.info("monthly report %s: %d files in %s", month, len(files), target)
                    except Exception as exc:  # recorded, and the loop goes on
                        await conn.execute(
                            "UPDATE report_runs SET error = %s WHERE month = %s", (repr(exc), month)
                        )
                        log.exception("monthly report %s failed", month)
                    await conn.commit()
        except psycopg.OperationalError as exc:
            log.warning("database unavailable (%s); retrying", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


@app.command()
def main(
    month: Annotated[str | None, typer.Option(help="YYYY-MM; default: last month")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("reports"),
    every: Annotated[float, typer.Option(help="with --schedule: seconds between checks")] = 3600.0,
    run_schedule: Annotated[
        bool, typer.Option("--schedule", help="run as the main job's monthly schedule")
    ] = False,
) -> None:
    """Write the report for one month, or run the monthly schedule."""
    settings = Settings()
    setup_logging(process="report")
    if run_schedule:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(schedule(settings, out=out, every_s=every))
        return
    m = parse_month(month) if month else previous_month(datetime.now(UTC))
    files = asyncio.run(write_report(settings.database_url, month=m, out=out))
    typer.echo(f"{len(files)} files in {out}")


if __name__ == "__main__":
    app()
