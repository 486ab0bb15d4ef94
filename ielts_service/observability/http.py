"""Per-request observability: the request id, the in-flight gauge, HTTP metrics and the
one canonical access line."""

from __future__ import annotations

import time

import structlog
from quart import Quart, Response, g, request

from ielts_service.observability import timing
from ielts_service.observability.metrics import Metrics, method_label
from ielts_service.observability.request_id import request_id_from

# Blueprints whose answers are question answers: they carry Server-Timing and count in
# ielts_overhead_seconds (the contract's "every question answer").
TIMED_BLUEPRINTS = frozenset({"questions"})

log = structlog.get_logger("ielts_service.access")


def init_request_observability(app: Quart, metrics: Metrics) -> None:
    """Register the hooks; call first, so the request id is bound before anything logs."""

    @app.before_request
    async def _start() -> None:
        g.started = time.monotonic()
        g.timings = timing.start()
        g.request_id = request_id_from(request.headers.get("X-Request-ID"))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)
        metrics.inflight.inc()
        g.counted_inflight = True

    @app.after_request
    async def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from(None)
        response.headers["X-Request-ID"] = request_id
        route = request.url_rule.rule if request.url_rule else "unmatched"
        method = method_label(request.method)
        elapsed = time.monotonic() - g.get("started", time.monotonic())
        metrics.http_requests.labels(method, route, str(response.status_code)).inc()
        metrics.http_duration.labels(method, route).observe(elapsed)
        timings: timing.Timings | None = g.get("timings")
        if timings is not None and request.blueprint in TIMED_BLUEPRINTS:
            total = timings.elapsed()
            response.headers["Server-Timing"] = timings.header(total)
            metrics.overhead.labels(route).observe(max(0.0, total - timings.spent("model")))
        fields = {}
        if details := g.get("error_details"):
            fields["details"] = details
        log.info(
            "request",
            method=request.method,
            route=route,
            path=request.path,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 1),
            bytes=response.content_length,
            client=request.remote_addr,
            user_agent=request.headers.get("User-Agent"),
            request_id=request_id,
            **fields,
        )
        return response

    @app.teardown_request
    async def _teardown(exc: BaseException | None) -> None:
        if g.pop("counted_inflight", False):
            metrics.inflight.dec()
