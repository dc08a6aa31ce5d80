"""``python -m dashboard_api serve``: the HTTP API."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from dashboard_api.app import create_app
from dashboard_api.inbound import RedactKey
from devices.logs import setup_logging
from devices.settings import Settings

app = typer.Typer(add_completion=False, help="Dashboard API")


@app.callback()
def _group() -> None:
    """Subcommands of the API."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the API (OpenAPI at /docs)."""
    settings = Settings()
    setup_logging(process="dashboard_api")
    logging.getLogger("uvicorn.access").addFilter(RedactKey())
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
        timeout_graceful_shutdown=3,  # open event streams never finish on their own
    )


if __name__ == "__main__":
    app()
