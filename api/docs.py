"""The API's own documentation at /docs, entirely from this machine: Swagger UI's files come
from the installed `fastapi-offline` package (made for serving FastAPI's docs without a CDN),
and the page and its start-up script are plain files beside the tablet's, so the page needs
no inline script and works under a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def add_docs(app: FastAPI, static: Path) -> None:
    """/docs (the page) and /docs/assets/ (Swagger UI's script and style sheet)."""
    app.mount("/docs/assets", StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(static / "docs.html", media_type="text/html")
