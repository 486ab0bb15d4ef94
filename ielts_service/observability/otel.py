"""OpenTelemetry traces, started only when an OTLP endpoint is configured.

`init_tracing(app, settings)` imports the SDK (and only then), exports spans over OTLP/HTTP
in batches from a background thread, and uses the maintained instrumentations where
they fit: ASGI (the server span, W3C `traceparent` continued), Redis (every command,
arguments replaced by `?`) and httpx2, the HTTP client inside the openai SDK (the model
call's HTTP span, and `traceparent` sent onward). The model attempt's GenAI span is
written by hand in llm/client.py: the OpenAI instrumentations wrap
`chat.completions.create`, which that client bypasses, and know nothing of attempts.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from quart import Quart, request

from ielts_service.config import Settings
from ielts_service.observability import tracing

Scope = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]

EXPORT_TIMEOUT = 5.0  # seconds one export may take, retries included (a stopping worker waits that)
SCHEDULE_DELAY_MS = 1000  # spans reach the backend within about a second
# Probes and scrapes every few seconds would drown the traces that matter.
NOT_TRACED = "/health/live$,/health/ready$,/metrics$"
# Redacted even if an operator turns on header capture (OTEL_INSTRUMENTATION_HTTP_CAPTURE_*).
SENSITIVE_HEADERS = ["authorization", "x-api-key", "api-key", "cookie", "set-cookie"]
_QUERY = "ielts.query_string"
WARN_EVERY = 10.0  # seconds between two log lines of the same OpenTelemetry message
# The span queue ("Queue full, dropping span.") and the exporter (a collector that is down).
NOISY_LOGGERS = ("opentelemetry.sdk._shared_internal",
                 "opentelemetry.exporter.otlp.proto.http.trace_exporter")


class _OncePer(logging.Filter):
    """The SDK logs "Queue full, dropping span." for every span it drops: under overload,
    one line per message per `seconds` instead of thousands formatted on the event loop."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last.get(str(record.msg), -self.seconds) < self.seconds:
            return False
        self._last[str(record.msg)] = now
        return True


def init_tracing(app: Quart, settings: Settings) -> bool:
    """Trace every request of `app` (once per process); False, and nothing imported, when
    no endpoint is configured or OTEL_SDK_DISABLED is true."""
    endpoint = settings.traces_endpoint
    if endpoint is None:
        return False
    tracing.let_sdk_in()
    from opentelemetry import context, propagate, trace
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(resource=Resource.create(settings.resource_attributes()),
                              sampler=_sampler(settings))
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=settings.otlp_headers(),
                                timeout=EXPORT_TIMEOUT)
    provider.add_span_processor(BatchSpanProcessor(exporter,
                                                   schedule_delay_millis=SCHEDULE_DELAY_MS))
    for name in NOISY_LOGGERS:  # (a logger's filters do not apply to its children)
        logging.getLogger(name).addFilter(_OncePer(WARN_EVERY))
    trace.set_tracer_provider(provider)
    # W3C trace context only: baggage from any caller would otherwise travel on to the
    # model provider.
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    RedisInstrumentor().instrument(tracer_provider=provider)
    HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)
    traced = OpenTelemetryMiddleware(
        _restore_query(app.asgi_app), excluded_urls=NOT_TRACED, tracer_provider=provider,
        exclude_spans=["receive", "send"], http_capture_headers_sanitize_fields=SENSITIVE_HEADERS)
    app.asgi_app = _hide_query(traced)  # type: ignore[method-assign,assignment]
    tracing.enable(provider.get_tracer("ielts_service"), trace, context,
                   Status(StatusCode.ERROR), _SUPPRESS_INSTRUMENTATION_KEY)

    @app.after_request
    async def _name_server_span(response: Any) -> Any:
        """The server span is named by the route template (bounded), not the raw path."""
        current = trace.get_current_span()
        if current.is_recording():
            rule = request.url_rule.rule if request.url_rule else None
            current.update_name(f"{request.method} {rule}" if rule else request.method)
            if rule:
                current.set_attribute("http.route", rule)
            if request_id := structlog.contextvars.get_contextvars().get("request_id"):
                current.set_attribute("ielts.request_id", request_id)
        return response

    @app.after_serving
    async def _flush() -> None:
        await asyncio.to_thread(provider.shutdown)  # exports what is still queued

    return True


def missing_packages(settings: Settings) -> str | None:
    """With tracing configured, one line saying the `otel` extra is not installed, if so."""
    if settings.traces_endpoint is None:
        return None
    for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http",
                 "opentelemetry.instrumentation.asgi", "opentelemetry.instrumentation.redis",
                 "opentelemetry.instrumentation.httpx"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return (f"OTEL_EXPORTER_OTLP_ENDPOINT is set but {name} is not installed: "
                    "pip install 'ielts-service[otel]'")
    return None


def _sampler(settings: Settings) -> Any:
    from opentelemetry.sdk.trace import sampling

    ratio = sampling.TraceIdRatioBased(settings.otel_traces_sampler_arg)
    return {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(ratio),
    }[settings.otel_traces_sampler]


def _hide_query(app: ASGIApp) -> ASGIApp:
    """The ASGI instrumentation records the query string in `http.url`, and a GET's query
    holds the student's raw topic: the span sees the request without it."""

    async def without_query(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("query_string"):
            scope = {**scope, "query_string": b"", _QUERY: scope["query_string"]}
        await app(scope, receive, send)

    return without_query


def _restore_query(app: ASGIApp) -> ASGIApp:
    """...and the app behind the instrumentation gets its query string back."""

    async def with_query(scope: Scope, receive: Any, send: Any) -> None:
        if _QUERY in scope:
            scope = {**scope, "query_string": scope[_QUERY]}
        await app(scope, receive, send)

    return with_query
