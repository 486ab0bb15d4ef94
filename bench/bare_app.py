"""The baseline for figure (a): a bare Quart app with one POST route that echoes its JSON body.

Served by Hypercorn with the service's hypercorn.toml and worker count, so the ratio
measures what the service itself adds (validation, limits, logging, metrics, Redis).
"""

from __future__ import annotations

from typing import Any

from quart import Quart, request

app = Quart(__name__)


@app.post("/generate-question")
async def echo() -> dict[str, Any]:
    body = await request.get_json()
    return {"status": "success", "data": body}
