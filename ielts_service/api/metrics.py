"""Prometheus text exposition."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response

from ielts_service.clients import services

blueprint = Blueprint("metrics", __name__)


@blueprint.route("/metrics")
async def metrics() -> Response:
    """Every worker's metrics (read from files off the event loop under multiprocess mode)."""
    body, content_type = await asyncio.to_thread(services().metrics.render)
    return Response(body, status=200, content_type=content_type)
