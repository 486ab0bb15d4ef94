"""Self-checks of the test harness, driven through the real openai SDK."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis

from tests.support.fake_model import (
    FakeModel,
    content_filter_400,
    content_filter_finish,
    drop,
    invalid_items,
    ok,
    raw,
    slow,
    status,
    valid_items,
)
from tests.support.redis_server import RedisServer, ensure_redis_server_binary

STARTS = ("what", "who", "when", "where", "how")
MESSAGES: list[Any] = [{"role": "user", "content": "Write IELTS items."}]


def fmt(part: int) -> Any:
    """response_format as the service sends it."""
    return {"type": "json_schema", "json_schema": {
        "name": f"ielts_part{part}", "strict": True, "schema": {"type": "object"}}}


def item_ok(part: int, item: dict[str, Any]) -> bool:
    """The IELTS item rules the fake's built-in answers must satisfy."""
    if part in (1, 3):
        qs = item.get("questions", [])
        if len(qs) != (4 if part == 1 else 5) or not all(q.endswith("?") for q in qs):
            return False
        return part == 1 or not any("your" in q.lower() or "you ever" in q.lower() for q in qs)
    bullets, follow = item.get("bullets", []), item.get("follow_ups", [])
    return (item.get("type") in ("person", "place", "object", "event", "activity")
            and item.get("title", "").startswith("Describe ") and len(bullets) == 3
            and all(b.split()[0].lower() in STARTS and "?" not in b for b in bullets)
            and item.get("explain", "").startswith("and explain ")
            and len(follow) == 1 and follow[0].endswith("?"))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeModel]:
    with FakeModel() as fake:
        yield fake


@pytest.fixture()
def fake(server: FakeModel) -> Iterator[FakeModel]:
    server.reset()
    yield server
    server.reset()


_OPEN: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """SDK clients made by a test are closed after it, so no socket outlives its test."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def _track(client: Any) -> Any:
    _OPEN.append(client)
    return client


def oai(fake: FakeModel, **kw: Any) -> openai.OpenAI:
    return _track(openai.OpenAI(base_url=fake.url + "/v1", api_key="k", max_retries=0, **kw))


def azure(fake: FakeModel, **kw: Any) -> openai.AzureOpenAI:
    return _track(openai.AzureOpenAI(azure_endpoint=fake.url, api_key="k",
                                     api_version="2024-10-21", max_retries=0, **kw))


def create(client: openai.OpenAI, part: int = 2) -> Any:
    return client.chat.completions.create(model="dep", messages=MESSAGES,
                                          response_format=fmt(part))


@pytest.mark.parametrize("part", [1, 2, 3])
def test_item_helpers(part: int) -> None:
    first, second = valid_items(part), valid_items(part)
    assert len(first) == 5 and all(item_ok(part, i) for i in first + second)
    assert len({json.dumps(i) for i in first + second}) == 10
    assert invalid_items(part) and not any(item_ok(part, i) for i in invalid_items(part))


@pytest.mark.parametrize("part", [1, 2, 3])
def test_default_answer_is_valid_for_requested_part(fake: FakeModel, part: int) -> None:
    resp = create(oai(fake), part)
    assert resp.object == "chat.completion" and resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens == 300
    items = json.loads(resp.choices[0].message.content)["items"]
    assert len(items) == 5 and all(item_ok(part, i) for i in items)
    again = json.loads(create(oai(fake), part).choices[0].message.content)["items"]
    assert again != items


def test_queue_order_then_default(fake: FakeModel) -> None:
    client = oai(fake)
    fake.enqueue(status(503), ok([{"questions": ["A?"]}], model="m2"))
    fake.set_default(ok(content="fixed"))
    with pytest.raises(openai.InternalServerError):
        create(client)
    resp = create(client)
    assert resp.model == "m2" and json.loads(resp.choices[0].message.content) == {
        "items": [{"questions": ["A?"]}]}
    assert create(client).choices[0].message.content == "fixed"
    fake.set_default(None)
    assert len(json.loads(create(client).choices[0].message.content)["items"]) == 5
    assert [r.path for r in fake.requests] == ["/v1/chat/completions"] * 4


def test_rate_limit_headers_surface(fake: FakeModel) -> None:
    fake.enqueue(status(429, headers={"retry-after-ms": "300"}),
                 status(429, headers={"Retry-After": "1"}))
    with pytest.raises(openai.RateLimitError) as info:
        create(oai(fake))
    assert info.value.response.headers["retry-after-ms"] == "300"
    with pytest.raises(openai.RateLimitError) as info:
        create(oai(fake))
    assert info.value.response.headers["retry-after"] == "1"


def test_sdk_retry_honours_retry_after_ms(fake: FakeModel) -> None:
    fake.enqueue(status(429, headers={"retry-after-ms": "50"}))
    create(oai(fake).with_options(max_retries=1))
    first, second = fake.requests
    assert second.received_at - first.received_at >= 0.045


def test_drop_gives_connection_error(fake: FakeModel) -> None:
    fake.enqueue(drop())
    with pytest.raises(openai.APIConnectionError) as info:
        create(oai(fake))
    assert not isinstance(info.value, openai.APITimeoutError)
    assert len(fake.requests) == 1


def test_slow_gives_timeout(fake: FakeModel) -> None:
    fake.enqueue(slow(60))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        create(oai(fake, timeout=0.3))
    assert time.monotonic() - started < 30  # the client's timeout, not the 60 s reply


def test_reset_releases_slow_reply_at_once(fake: FakeModel) -> None:
    fake.enqueue(slow(600, ok(content="late")))
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(create(oai(fake, timeout=600))),
                              daemon=True)
    worker.start()
    fake.wait_for_requests(1, timeout=30)
    fake.reset()
    worker.join(timeout=60)  # far sooner than the 600 s the reply was delayed by
    assert not worker.is_alive()
    assert result[0].choices[0].message.content == "late"


def test_truncated_body_is_a_parse_error(fake: FakeModel) -> None:
    fake.enqueue(raw(b'{"id": "x", "choi'))
    with pytest.raises((ValueError, openai.APIResponseValidationError)):
        create(oai(fake))


def test_content_filter_400(fake: FakeModel) -> None:
    fake.enqueue(content_filter_400())
    with pytest.raises(openai.BadRequestError) as info:
        create(azure(fake))
    assert info.value.code == "content_filter"
    assert info.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_content_filter_finish(fake: FakeModel) -> None:
    fake.enqueue(content_filter_finish())
    choice = create(azure(fake)).choices[0]
    assert choice.finish_reason == "content_filter" and not choice.message.content


def test_azure_request_is_recorded(fake: FakeModel) -> None:
    items = json.loads(create(azure(fake), 3).choices[0].message.content)["items"]
    assert all(item_ok(3, i) for i in items)
    (rec,) = fake.requests
    assert rec.method == "POST" and rec.path == "/openai/deployments/dep/chat/completions"
    assert rec.deployment == "dep" and rec.query == {"api-version": "2024-10-21"}
    assert rec.headers["api-key"] == "k" and rec.headers["content-type"] == "application/json"
    assert rec.body["response_format"]["json_schema"]["name"] == "ielts_part3"
    assert rec.body["messages"] == MESSAGES


def test_routing_errors_and_keep_alive(fake: FakeModel) -> None:
    host, port = fake.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    body = json.dumps({"messages": MESSAGES, "response_format": fmt(1)})
    answers = []
    for path in ("/openai/deployments/d/chat/completions", "/v1/models", "/chat/completions",
                 "/openai/deployments/d/chat/completions?api-version=x"):
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answers.append((resp.status, json.loads(resp.read())))
    conn.request("POST", "/v1/chat/completions", body=b"{not json")
    bad = conn.getresponse()
    answers.append((bad.status, json.loads(bad.read())))
    conn.close()
    assert [a[0] for a in answers] == [404, 404, 200, 200, 400]
    assert "api-version" in answers[0][1]["error"]["message"]
    assert len(fake.requests) == 4 and fake.requests[3].body is None


def test_wait_for_requests_times_out(fake: FakeModel) -> None:
    with pytest.raises(AssertionError):
        fake.wait_for_requests(1, timeout=0.05)


def test_stop_closes_server() -> None:
    fake = FakeModel().start()
    url = fake.url
    fake.enqueue(slow(600))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            create(oai(fake, timeout=600))
        except openai.APIConnectionError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    fake.wait_for_requests(1, timeout=30)
    fake.stop()
    worker.join(timeout=60)  # far sooner than the 600 s the reply was delayed by
    assert not worker.is_alive() and len(errors) == 1
    assert not isinstance(errors[0], openai.APITimeoutError)
    with pytest.raises(openai.APIConnectionError):
        create(_track(openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)))


def test_redis_server_lifecycle() -> None:
    assert ensure_redis_server_binary()
    with RedisServer() as server:
        assert server.running and server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url, socket_timeout=10)
        client.set("k", "v")
        server.flush()
        assert client.get("k") is None
        port = server.port
        server.stop()
        server.stop()
        assert not server.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        server.start()
        assert server.port == port and server.running
        assert redis.Redis.from_url(server.url, socket_timeout=10).ping() is True
    assert not server.running


def test_redis_server_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support import redis_server as rs
    monkeypatch.setattr(rs.shutil, "which", lambda _name: None)
    monkeypatch.setattr(rs, "_DEFAULT_BINARY", "/nonexistent/redis-server")
    with pytest.raises(RuntimeError, match="run `make test`"):
        rs.ensure_redis_server_binary()
    server = RedisServer()
    with pytest.raises(RuntimeError, match="redis-server not found"):
        server.start()
    server.close()
