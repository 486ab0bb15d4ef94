"""Per-request observability: the request id, the in-flight gauge, HTTP metrics and the
one canonical access line."""

from __future__ import annotations

import structlog
from quart import Quart, Response, g
from quart.globals import request_ctx

from ielts_service.observability import timing
from ielts_service.observability.logging import fast_logger
from ielts_service.observability.metrics import Labelled, Metrics, method_label
from ielts_service.observability.request_id import request_id_from

# Blueprints whose answers are question answers: they carry Server-Timing and count in
# ielts_overhead_seconds (the contract's "every question answer").
TIMED_BLUEPRINTS = frozenset({"questions"})

ACCESS = "ielts_service.access"


class Observed:
    """What the access hooks keep on a request: its id, its timings (its clock starts
    here), whether it counts in the in-flight gauge."""

    __slots__ = ("request_id", "timings", "inflight")

    def __init__(self, request_id: str, *, inflight: bool = True) -> None:
        self.request_id, self.timings, self.inflight = request_id, timing.start(), inflight


def init_request_observability(app: Quart, metrics: Metrics) -> None:
    """Register the hooks; call first, so the request id is bound before anything logs."""
    log = fast_logger(ACCESS)
    answered, took = Labelled(metrics.http_requests), Labelled(metrics.http_duration)
    overhead = Labelled(metrics.overhead)

    @app.before_request
    async def _start() -> None:
        req = request_ctx.request  # one context lookup, not one per attribute
        g.observed = Observed(request_id_from(req.headers.get("X-Request-ID")))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.observed.request_id)
        metrics.inflight.inc()

    @app.after_request
    async def _finish(response: Response) -> Response:
        req = request_ctx.request
        observed: Observed | None = g.get("observed")
        if observed is None:  # a before_request hook failed before ours ran
            observed = Observed(request_id_from(None), inflight=False)
        headers = response.headers
        headers["X-Request-ID"] = observed.request_id
        route = req.url_rule.rule if req.url_rule else "unmatched"
        method = method_label(req.method)
        status = response.status_code
        timings = observed.timings
        total = timings.elapsed()
        answered(method, route, str(status)).inc()
        took(method, route).observe(total)
        if req.blueprint in TIMED_BLUEPRINTS:
            headers["Server-Timing"] = timings.header(total)
            overhead(route).observe(max(0.0, total - timings.spent("model")))
        fields = {}
        if details := g.get("error_details"):
            fields["details"] = details
        log.info(
            "request",
            method=req.method,
            route=route,
            path=req.path,
            status=status,
            duration_ms=round(total * 1000, 1),
            bytes=response.content_length,
            client=req.remote_addr,
            user_agent=req.headers.get("User-Agent"),
            request_id=observed.request_id,
            **fields,
        )
        return response

    @app.teardown_request
    async def _teardown(exc: BaseException | None) -> None:
        observed: Observed | None = g.get("observed")
        if observed is not None and observed.inflight:
            observed.inflight = False
            metrics.inflight.dec()
