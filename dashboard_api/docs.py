"""/docs served entirely from this server (issue 14 item 7): Swagger UI 5 vendored in
``static/swagger-ui/`` (swagger-ui-dist from the npm registry, Apache-2.0, its LICENSE and
NOTICE beside it; version in VERSION), started by a script of our own, so the page works
offline and under the same strict CSP as the other pages. (The PyPI ``swagger-ui-bundle``
ships Swagger UI 4, which cannot render the OpenAPI 3.1 document FastAPI writes.)"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eldercare API</title>
<link rel="icon" type="image/png" href="/static/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script>
</body></html>
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})
