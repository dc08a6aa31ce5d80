"""/docs served entirely from this server (issue 14 item 7): Swagger UI's files come from the
``swagger-ui-bundle`` package (Apache-2.0, its licence ships in the package), started by a
script of our own, so the page works offline and under the same strict CSP as the others."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

router = APIRouter(include_in_schema=False)
assets = StaticFiles(directory=swagger_ui_path)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eldercare API</title>
<link rel="icon" type="image/png" href="/docs-assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs-assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script>
</body></html>
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})
