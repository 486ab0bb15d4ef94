"""The span helper every room calls (observability/tracing.py), on the real SDK with an
in-memory exporter: what a failure records, linked background traces, and nothing at all
while tracing is off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ielts_service.observability import tracing

SECRET_TEXT = "the Student's Own Words 9f8e"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Tracing on in this process, into memory (no global provider, nothing instrumented);
    off again afterwards."""
    tracing.let_sdk_in()
    from opentelemetry import context, trace
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_on", None)  # restored (tracing off) after the test
    tracing.enable(provider.get_tracer("test"), trace, context, Status(StatusCode.ERROR),
                   _SUPPRESS_INSTRUMENTATION_KEY)
    yield exporter
    provider.shutdown()


def test_a_failed_span_names_its_error_type_and_never_the_message(exported):
    with pytest.raises(ValueError), tracing.span("work", {"ielts.part": 2, "skip": None}):
        raise ValueError(SECRET_TEXT)
    (span,) = exported.get_finished_spans()
    assert span.attributes == {"ielts.part": 2, "error.type": "ValueError"}
    assert span.status.status_code.name == "ERROR"
    assert SECRET_TEXT not in repr((span.status.description, [e.attributes for e in span.events]))


def test_a_room_names_its_own_failure_and_the_helper_keeps_it(exported):
    with pytest.raises(TimeoutError), tracing.span("chat m", kind="client") as span:
        span.fail("timeout")
        raise TimeoutError()
    (finished,) = exported.get_finished_spans()
    assert finished.attributes["error.type"] == "timeout" and finished.kind.name == "CLIENT"


def test_background_work_starts_a_trace_of_its_own_linked_to_the_current_span(exported):
    with tracing.span("request") as _:
        request_ids = tracing.log_ids()
        with tracing.span("background refill", new_trace=True):
            refill_ids = tracing.log_ids()
    assert request_ids and refill_ids and refill_ids["trace_id"] != request_ids["trace_id"]
    refill, request = exported.get_finished_spans()
    assert refill.parent is None
    assert [link.context.span_id for link in refill.links] == [request.context.span_id]


def test_a_detached_context_has_no_span_and_turns_instrumentation_off(exported):
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    with tracing.span("request"):
        fresh = tracing.detached()
    assert fresh.run(tracing.log_ids) is None
    assert fresh.run(is_instrumentation_enabled) is False and is_instrumentation_enabled()


def test_with_tracing_off_the_helper_does_nothing():
    assert not tracing.enabled()
    with tracing.span("work", {"a": 1}) as span:
        span.set({"b": 2})
        span.fail("x")
        assert tracing.log_ids() is None and tracing.sampled_trace_id() is None
    assert len(tracing.detached()) == 0  # an empty context: no request fields either
