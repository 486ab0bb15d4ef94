"""The practice page: `/` and its few static files, shipped inside the package."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from quart import Blueprint, Response, send_from_directory
from werkzeug.exceptions import NotFound

blueprint = Blueprint("page", __name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
         ".svg": "image/svg+xml"}  # text types get "; charset=utf-8" from Quart
# Only this origin's own files: no inline script or style, nothing from elsewhere.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@cache
def served() -> frozenset[str]:
    """The names under static/ that are served; no request path reaches the filesystem."""
    return frozenset(p.name for p in STATIC.iterdir() if p.is_file() and p.suffix in TYPES)


async def _send(name: str) -> Response:
    response = await send_from_directory(STATIC, name, mimetype=TYPES[Path(name).suffix],
                                         cache_timeout=0)
    response.headers["Cache-Control"] = "no-cache"  # revalidated by ETag, never stale
    response.headers.pop("Expires", None)
    return response


@blueprint.get("/")
async def index() -> Response:
    """The practice page, with a Content-Security-Policy that lets it run its own script."""
    response = await _send("index.html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@blueprint.get("/static/<path:name>")
async def static_file(name: str) -> Response:
    """The page's script, style sheet and icon; anything else is 404."""
    if name not in served():
        raise NotFound()
    return await _send(name)
