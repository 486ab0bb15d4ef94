"""Spans for every room, free when tracing is off.

Rooms call `span(...)`; log lines and exemplars ask `log_ids()` / `sampled_trace_id()`.
Until `observability.otel.init_tracing` hands over a tracer (only when an OTLP endpoint is
configured) every call here returns at once, and nothing imports the OpenTelemetry SDK.
Nothing recorded on a span carries an exception's message (it may quote a topic or a
provider's answer): a failure is its `error.type` and an error status.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Attr = str | bool | int | float | Sequence[str]
Kind = Literal["internal", "client"]

# The model providers' names in the GenAI semantic conventions (gen_ai.provider.name).
GENAI_PROVIDERS = {"azure": "azure.ai.openai", "openai": "openai"}


class Span:
    """What a room may do with its span: add attributes, say it failed and why."""

    __slots__ = ("_span", "failed")

    def __init__(self, span: Any = None) -> None:
        self._span, self.failed = span, False

    def set(self, attributes: Mapping[str, Attr | None]) -> None:
        if self._span is not None:
            self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def fail(self, error_type: str) -> None:
        """`error.type` (a low-cardinality name, never a message) and an error status."""
        if self._span is None or _on is None:
            return
        self.failed = True
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(_on.status_error)


class _Tracing:
    """The tracer and the few API objects the helpers need, handed over by `enable`."""

    def __init__(self, tracer: Any, api: Any, context: Any, status_error: Any,
                 suppress_key: str) -> None:
        self.tracer, self.api, self.context = tracer, api, context
        self.status_error, self.suppress_key = status_error, suppress_key


_on: _Tracing | None = None  # set once per process by init_tracing; None: tracing is off
_NOOP = Span()


# redis-py 8 imports OpenTelemetry's metrics API and SDK whenever they are installed (for
# metrics of its own, which this service does not turn on): 60 modules, ~60 ms at start-up.
_REDIS_OPTIONAL_IMPORTS = ("opentelemetry.metrics", "opentelemetry.sdk.metrics")


def keep_unused_sdk_out() -> None:
    """Make redis-py's optional OpenTelemetry imports fail (it catches the ImportError), so
    an untraced service imports nothing of OpenTelemetry. Call before redis is imported."""
    for name in _REDIS_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def let_sdk_in() -> None:
    """Undo `keep_unused_sdk_out` before tracing starts: the instrumentations need them."""
    for name in _REDIS_OPTIONAL_IMPORTS:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


def enable(tracer: Any, api: Any, context: Any, status_error: Any, suppress_key: str) -> None:
    global _on
    _on = _Tracing(tracer, api, context, status_error, suppress_key)


def enabled() -> bool:
    return _on is not None


@contextmanager
def span(name: str, attributes: Mapping[str, Attr | None] | None = None, *,
         kind: Kind = "internal", new_trace: bool = False) -> Iterator[Span]:
    """A child of the current span; with `new_trace`, the root of a new trace that links to
    the current span instead (background work that outlives the request that caused it)."""
    if _on is None:
        yield _NOOP
        return
    api = _on.api
    links, parent = None, None
    if new_trace:
        origin = api.get_current_span().get_span_context()
        links = [api.Link(origin)] if origin.is_valid else None
        parent = _on.context.Context()
    otel_kind = api.SpanKind.CLIENT if kind == "client" else api.SpanKind.INTERNAL
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with _on.tracer.start_as_current_span(name, context=parent, kind=otel_kind, links=links,
                                          attributes=clean, record_exception=False,
                                          set_status_on_exception=False) as raw:
        handle = Span(raw)
        try:
            yield handle
        except BaseException as exc:
            if not handle.failed:
                handle.fail(type(exc).__name__)
            raise


async def in_span(name: str, work: Awaitable[T], attributes: Mapping[str, Attr | None]) -> T:
    """`await work` inside a span: for a task, so that what it does is that span's child."""
    with span(name, attributes):
        return await work


def log_ids() -> dict[str, str] | None:
    """trace_id and span_id of the current span, for log lines; None outside a trace."""
    if _on is None:
        return None
    ctx = _on.api.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


def sampled_trace_id() -> str | None:
    """The current trace's id when it is being recorded (an exemplar must find its trace)."""
    if _on is None:
        return None
    ctx = _on.api.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid and ctx.trace_flags.sampled else None


def detached() -> contextvars.Context:
    """A context for a process-wide loop started from inside a request: none of the
    request's log fields or span, and (when tracing) its Redis calls not traced, so a
    lease renewer does not add spans to whichever request happened to start it."""
    fresh = contextvars.Context()
    if _on is not None:
        ctx = _on.context
        fresh.run(lambda: ctx.attach(ctx.set_value(_on.suppress_key, True, ctx.Context())))
    return fresh


def genai_request(provider: str, model: str, part: int, prompt_version: str, *, attempt: int,
                  temperature: float | None, max_tokens: int | None,
                  server: tuple[str, int | None]) -> dict[str, Attr | None]:
    """The attributes of a model attempt's span that are known before it is sent."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": GENAI_PROVIDERS.get(provider, provider),
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": temperature,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.output.type": "json",
        "server.address": server[0],
        "server.port": server[1],
        "ielts.ai.attempt": attempt,
        "ielts.ai.part": part,
        "ielts.ai.prompt_version": prompt_version,
    }


def attempt_done(span: Span, outcome: str, *, response: tuple[str, str, list[str]] | None,
                 tokens: tuple[int | None, int | None],
                 first_item_ms: float | None) -> dict[str, str] | None:
    """A model attempt's result on its span (GenAI response and usage attributes; a failure
    as its outcome); returns the span's ids for the attempt's log line."""
    if _on is None:
        return None
    if outcome != "success":
        span.fail(outcome)
    model, response_id, finish_reasons = response or (None, None, None)
    span.set({
        "gen_ai.response.model": model,
        "gen_ai.response.id": response_id,
        "gen_ai.response.finish_reasons": finish_reasons or None,
        "gen_ai.usage.input_tokens": tokens[0],
        "gen_ai.usage.output_tokens": tokens[1],
        "ielts.ai.outcome": outcome,
        "ielts.ai.first_item_ms": first_item_ms,  # a streamed answer's first valid item
    })
    return log_ids()
