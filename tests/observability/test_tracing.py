"""Traces over real sockets: `ielts-service serve` exporting to a local OTLP/HTTP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import AZURE_KEY, azure_env
from tests.support import fake_model as fm
from tests.support.fake_model import FakeModel
from tests.support.otlp import OtlpReceiver, Span
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"  # the frontend's span, which the service's span continues


def traceparent(trace_id: str = TRACE, parent: str = CALLER_SPAN) -> str:
    return f"00-{trace_id}-{parent}-01"


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def traced_env(fake: FakeModel, otlp: OtlpReceiver, **extra: str) -> dict[str, str]:
    return azure_env(fake, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
                     OTEL_SERVICE_NAME="ielts-under-test", RATE_LIMIT_PER_MINUTE="0", **extra)


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def ancestors(span: Span, spans: list[Span]) -> list[Span]:
    """The span's parent, its parent's parent, ... as far as the received spans go."""
    index, chain = by_id(spans), []
    while span.parent_id in index:
        span = index[span.parent_id]
        chain.append(span)
    return chain


def log_events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(url + "/generate-question", json=body, headers=headers)


@pytest.mark.parametrize("stream", ["true", "false"], ids=["streamed", "whole"])
async def test_a_cold_request_continues_the_callers_trace_down_to_the_model_attempt(
        serve, fake_model, redis, otlp, stream):
    server = serve(**traced_env(fake_model, otlp, REDIS_URL=redis.url, AI_STREAM=stream))
    response = await post(server.url, {"topic": "a lighthouse keeper's day", "part": 2},
                          {"traceparent": traceparent(), "X-Request-ID": "traced-cold-1"})
    assert response.status_code == 200 and response.json()["data"]["source"] == "ai"

    def exported() -> list[Span] | None:
        spans = otlp.spans(TRACE)
        kinds = {s.kind for s in spans}
        return spans if "server" in kinds and any(s.name.startswith("chat ") for s in spans) \
            else None

    spans = await eventually(exported)
    (server_span,) = [s for s in spans if s.kind == "server"]
    assert server_span.parent_id == CALLER_SPAN  # the caller's trace, continued
    assert server_span.name == "POST /generate-question"
    assert server_span.attributes["http.route"] == "/generate-question"
    assert server_span.attributes["http.method"] == "POST"
    assert server_span.attributes["http.status_code"] == 200
    assert server_span.attributes["ielts.request_id"] == "traced-cold-1"
    assert server_span.resource["service.name"] == "ielts-under-test"

    (attempt,) = [s for s in spans if s.name == "chat gpt-4o-test"]
    assert attempt.kind == "client" and server_span in ancestors(attempt, spans)
    a = attempt.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "azure.ai.openai"
    assert a["gen_ai.request.model"] == "gpt-4o-test"
    assert a["gen_ai.response.model"] == "gpt-4o"  # what the fake deployment says it runs
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (100, 200)
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["ielts.ai.attempt"] == 1 and a["ielts.ai.outcome"] == "success"
    if stream == "true":  # the time to the first valid item of the streamed answer
        assert a["ielts.ai.first_item_ms"] > 0
    else:
        assert "ielts.ai.first_item_ms" not in a
    assert "error.type" not in a and attempt.status_code != 2

    # Redis commands and the single-flight are spans of the same request.
    redis_spans = [s for s in spans if s.attributes.get("db.system") == "redis"]
    assert redis_spans and all(server_span in ancestors(s, spans) for s in redis_spans)
    (flight,) = [s for s in spans if s.name == "single-flight"]
    assert flight in ancestors(attempt, spans) and server_span in ancestors(flight, spans)
    produced = ("ielts.flight.streamed" if stream == "true" else "ielts.flight.produced")
    assert flight.attributes[produced] is True

    # The model call carries the trace onward, from a span below the attempt's.
    (sent,) = fake_model.requests
    _, trace_id, parent_id, _ = sent.headers["traceparent"].split("-")
    assert trace_id == TRACE
    assert parent_id == attempt.span_id or attempt in ancestors(by_id(spans)[parent_id], spans)

    # Every line the request logged carries the trace; ai_call names the attempt's span.
    mine = [e for e in log_events(server.stop()) if e.get("request_id") == "traced-cold-1"]
    assert {"ai_call", "request"} <= {e["event"] for e in mine}
    assert all(e.get("trace_id") == TRACE for e in mine), mine
    (ai_call,) = [e for e in mine if e["event"] == "ai_call"]
    assert ai_call["span_id"] == attempt.span_id


async def test_each_model_attempt_is_a_span_and_a_failed_one_names_its_error(
        serve, fake_model, otlp):
    fake_model.enqueue(fm.status(429, headers={"retry-after-ms": "10"}), fm.ok())
    server = serve(**traced_env(fake_model, otlp))
    response = await post(server.url, {"topic": "street markets", "part": 2},
                          {"traceparent": traceparent()})
    assert response.status_code == 200

    def attempts() -> list[Span] | None:
        found = sorted((s for s in otlp.spans(TRACE) if s.name.startswith("chat ")),
                       key=lambda s: s.attributes["ielts.ai.attempt"])
        return found if len(found) == 2 else None

    first, second = await eventually(attempts)
    assert first.attributes["error.type"] == "rate_limited" and first.status_code == 2
    assert first.attributes["ielts.ai.outcome"] == "rate_limited"
    assert "gen_ai.usage.output_tokens" not in first.attributes
    assert second.attributes["ielts.ai.attempt"] == 2 and "error.type" not in second.attributes
    assert first.parent_id == second.parent_id  # both attempts of one call


async def test_a_background_refill_is_a_trace_of_its_own_linked_to_the_request(
        serve, fake_model, redis, otlp):
    server = serve(**traced_env(fake_model, otlp, REDIS_URL=redis.url,
                                POOL_SOFT_TTL_SECONDS="1", LOCAL_POOL_TTL_SECONDS="0"))
    asked: dict[str, str] = {}  # trace id of each request -> its request id

    async def refill_seen() -> Span | None:
        trace_id = f"{len(asked) + 1:032x}"
        asked[trace_id] = f"refill-{len(asked)}"
        await post(server.url, {"topic": "bridges", "part": 2},
                   {"traceparent": traceparent(trace_id), "X-Request-ID": asked[trace_id]})
        refills = [s for s in otlp.spans() if s.name == "background refill"]
        return refills[0] if refills else None

    refill = await eventually(refill_seen, timeout=60)  # the pool goes stale after 1 s
    assert refill.parent_id == ""  # a root: it outlives the request that started it
    ((linked_trace, linked_span),) = refill.links
    assert linked_trace in asked and linked_trace != refill.trace_id
    origin = await eventually(lambda: [s for s in otlp.spans(linked_trace) if s.kind == "server"])
    assert origin[0].span_id == linked_span  # linked to the server span of that request
    # The refill's own model call is in the refill's trace.
    await eventually(lambda: any(s.name.startswith("chat ") for s in otlp.spans(refill.trace_id)))


async def test_no_secret_and_no_raw_topic_text_reaches_a_span(serve, fake_model, redis, otlp):
    import hashlib

    client_key, admin = "client-key-4e5f6a7b8c", "admin-token-9c1d2e3f-5a6b7c8d-0e1f2a3b"
    otlp_secret = "otlp-team-secret-77aa1b"
    server = serve(**traced_env(
        fake_model, otlp, REDIS_URL=redis.url, ADMIN_TOKEN=admin,
        OTEL_EXPORTER_OTLP_HEADERS=f"x-honeycomb-team={otlp_secret}",
        CLIENT_API_KEYS=f"tester:{hashlib.sha256(client_key.encode()).hexdigest()}"))
    raw = "The ZqXwv Quokka FESTIVAL!!"  # normalised: lower case, no article, no "!!"
    key = {"X-API-Key": client_key}
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        posted = await client.post("/generate-question", json={"topic": raw, "part": 2},
                                   headers=key)

        async def pool_landed() -> httpx.Response | None:  # a GET never generates: it
            got = await client.get("/generate-question", headers=key,  # waits for the pool
                                   params={"topic": raw, "part": "2"})
            return got if got.status_code == 200 else None

        await eventually(pool_landed)
        admin_call = await client.get("/admin/prompts",
                                      headers={"Authorization": f"Bearer {admin}"})
    assert (posted.status_code, admin_call.status_code) == (200, 200)

    def every_route() -> list[Span] | None:
        spans = otlp.spans()
        answered = {(s.name, s.attributes.get("http.status_code")) for s in spans}
        wanted = {("POST /generate-question", 200), ("GET /generate-question", 200),
                  ("GET /admin/prompts", 200)}
        return spans if wanted <= answered and any(s.name.startswith("chat ") for s in spans) \
            else None

    spans = await eventually(every_route)
    assert any(s.name.startswith("chat ") for s in spans)  # the model call was traced too
    leaks = [(s.name, word) for s in spans for word in
             (AZURE_KEY, client_key, admin, otlp_secret, "ZqXwv", "FESTIVAL", "!!")
             if word in s.text()]
    assert leaks == []
    # The exporter did send its headers (to the receiver, not into a span or a log line).
    assert otlp.posts[0].headers["x-honeycomb-team"] == otlp_secret
    assert not [line for line in server.stop() if otlp_secret in line]


def test_an_unreachable_collector_costs_no_answer_and_no_clean_stop(serve, fake_model):
    from tests.support.process import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = serve(**azure_env(fake_model, OTEL_EXPORTER_OTLP_ENDPOINT=dead,
                               RATE_LIMIT_PER_MINUTE="0"))
    statuses = [httpx.post(server.url + "/generate-question", timeout=60,
                           json={"topic": f"kites {i}", "part": 2}).status_code
                for i in range(10)]
    assert statuses == [200] * 10
    lines = server.stop()
    assert server.process.returncode == 0
    assert not [line for line in lines if '"unhandled_exception"' in line]
