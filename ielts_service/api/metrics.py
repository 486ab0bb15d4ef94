"""Prometheus text exposition."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, request

from ielts_service.guards.security import require_bearer
from ielts_service.services import services

blueprint = Blueprint("metrics", __name__)


@blueprint.route("/metrics")
async def metrics() -> Response:
    """Every worker's metrics (read from files off the event loop under multiprocess mode).

    With METRICS_TOKEN set, scrapers must send it as a bearer token. A scraper that accepts
    OpenMetrics (Prometheus does) gets it, with the model-latency exemplars."""
    if (token := services().settings.metrics_token) is not None:
        await require_bearer(token, "METRICS_TOKEN")
    accept = request.headers.get("Accept", "")
    body, content_type = await asyncio.to_thread(services().metrics.render, accept)
    return Response(body, status=200, content_type=content_type)
