"""/docs (Swagger UI) and /redoc served offline: their scripts come from the fastapi-offline
package, started by a script of ours rather than an inline one, so a strict policy holds."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from bekal.shared.web.security import DOCS_POLICY

ASSETS = "/docs-assets"
_VENDOR = Path(fastapi_offline.__file__).parent / "static"
_OURS = Path(__file__).parent / "static"


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{ASSETS}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>"""
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_POLICY})


def install_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=_VENDOR), name="docs-assets")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(
            f"{title} - Swagger UI",
            f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">',
            f'<div id="swagger-ui" data-openapi="{app.openapi_url}"></div>\n'
            f'<script src="{ASSETS}/swagger-ui-bundle.js"></script>\n'
            f'<script src="/docs-start.js"></script>',
        )

    @app.get("/docs-start.js", include_in_schema=False)
    async def swagger_start() -> HTMLResponse:
        script = (_OURS / "docs-start.js").read_text()
        return HTMLResponse(script, media_type="text/javascript")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(
            f"{title} - ReDoc",
            "",
            f'<redoc spec-url="{app.openapi_url}"></redoc>\n'
            f'<script src="{ASSETS}/redoc.standalone.js"></script>',
        )
