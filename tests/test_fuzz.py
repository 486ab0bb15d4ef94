"""Generated inputs against every route: no 5xx, and every answer either an envelope with a
stable code or one of the few documented non-JSON answers, checked by route. In process
(the bank) and over a real socket (`ielts-service serve` with the fake Azure model failing
in generated ways). `make test` runs 1,260 cases; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) 20x.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ielts_service.app import create_app
from ielts_service.config import load_settings
from tests.conftest import azure_env
from tests.support import fake_model as fm

ROOT = Path(__file__).resolve().parent.parent
SCALE = 20 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 1
ADMIN = "fuzz-admin-token-long-enough-to-start"
CODE = re.compile(r"[a-z][a-z0-9_]*")
PATHS = ["/generate-question", "/v1/mock-test", "/v1/topics", "/health/live", "/health/ready",
         "/admin/prompts", "/admin/prompts/reload", "/admin/cache/purge", "/openapi.json",
         "/docs", "/metrics", "/", "/static/app.js", "/static/style.css", "/static/icon.svg",
         "/static/nope.js", "/static/../cli.py", "//docs", "/generate-question/",
         "/v1/../generate-question"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "BREW"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "application/problem+json", "", "*/*",
                 "application/json; charset=latin-1", "multipart/form-data; boundary=x"]

# The answers that are not JSON, as the contract and README document them, by route:
# Prometheus text, the docs page, the practice page and its static files. Every other
# answer, and every error on these routes too, is a JSON envelope.
PAGES = {"/": "text/html", "/docs": "text/html", "/metrics": "text/plain"}
STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                ".svg": "image/svg+xml"}
STATIC_FILES = {p.name for p in (ROOT / "ielts_service" / "static").iterdir()
                if p.suffix in STATIC_TYPES}
# Over a socket, with a model that fails: these are the contract's 5xx (never a 500).
UPSTREAM = {503: {"upstream_unavailable", "not_ready"}, 504: {"timeout"}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
payloads = st.fixed_dictionaries({}, optional={
    "topic": st.one_of(st.text(max_size=200), json_values),
    "part": st.one_of(st.integers(-5, 10), json_values),
    "session_id": st.one_of(st.from_regex(r"[A-Za-z0-9._-]{1,70}", fullmatch=True), json_values),
}) | st.dictionaries(st.text(max_size=12), json_values, max_size=4)
paths = st.sampled_from(PATHS) | st.text(max_size=30).map(
    lambda t: "/" + quote(t.lstrip("/")))  # any text, as a client would send it
requests = st.fixed_dictionaries({
    "method": st.sampled_from(METHODS), "path": paths,
    "content_type": st.sampled_from(CONTENT_TYPES), "body": st.binary(max_size=300),
    "request_id": st.text(max_size=80),
    "auth": st.sampled_from(["", f"Bearer {ADMIN}", "Bearer x", "Basic abc", "bearer"]),
    "query": st.dictionaries(st.sampled_from(["topic", "part", "session_id", "x"]),
                             st.text(max_size=20), max_size=3),
})
# Questions the model is asked about: most of them valid, on topics no pool holds yet.
valid_questions = st.fixed_dictionaries({
    "method": st.just("POST"), "path": st.sampled_from(["/generate-question", "/v1/mock-test"]),
    "content_type": st.just("application/json"), "request_id": st.just(""), "auth": st.just(""),
    "query": st.just({}),
    "body": st.fixed_dictionaries(
        {"topic": st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)},
        optional={"part": st.sampled_from([1, 2, 3]),
                  "session_id": st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)},
    ).map(lambda p: json.dumps(p).encode()),
})
questions = valid_questions.flatmap(lambda q: payloads.map(
    lambda p: {**q, "body": json.dumps(p).encode()}))
model_replies = st.sampled_from([
    fm.ok(), fm.echo_topic(), fm.ok(fm.invalid_items(2)), fm.status(429),
    fm.status(429, headers={"retry-after-ms": "5"}), fm.status(500), fm.status(503),
    fm.status(401), fm.content_filter_400(), fm.content_filter_finish(), fm.drop(),
    fm.raw(b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "{\\"items'),
    fm.ok(content="not json at all"), fm.ok(content='{"items": "nope"}'),
])


def headers_of(request: Mapping[str, Any]) -> dict[str, str]:
    headers = {"Content-Type": request["content_type"], "Authorization": request["auth"]}
    rid = request["request_id"]
    # What an HTTP client can send: printable ASCII without surrounding whitespace (h11
    # refuses b" " before the request leaves: a failure of the test, not of the service).
    if rid.isprintable() and rid.isascii() and rid == rid.strip():
        headers["X-Request-ID"] = rid
    return {k: v for k, v in headers.items() if v}


def route(path: str) -> str:
    """`path` (query and all) as the router matches it: decoded, repeated slashes merged."""
    return re.sub("/+", "/", unquote(path.split("?", 1)[0]))


def non_json_type(path: str) -> str | None:
    """The documented media type of a successful GET of `path`, if it is not JSON."""
    route_ = route(path)
    if route_.startswith("/static/") and route_.removeprefix("/static/") in STATIC_FILES:
        return STATIC_TYPES[Path(route_).suffix]
    return PAGES.get(route_)


def check(method: str, path: str, status: int, headers: Mapping[str, str], mimetype: str,
          body: bytes, *, allowed_5xx: dict[int, set[str]] | None = None) -> None:
    """One answer against the contract."""
    assert status != 500, "a 500 is a bug: no input may cause one"
    assert status < 500 or status in (allowed_5xx or {}), status
    assert headers.get("X-Request-ID")
    documented = non_json_type(path) if method in ("GET", "HEAD") else None
    if method == "OPTIONS" and 200 <= status < 300:  # the automatic answer: methods, no body
        assert headers.get("Allow") and body == b"", (status, headers, body[:80])
        return
    if documented is not None and 200 <= status < 300:
        assert mimetype == documented, (path, mimetype)
        return
    assert mimetype == "application/json", (method, path, status, mimetype, body[:80])
    if method == "HEAD" and body == b"":  # a real server sends HEAD's headers only
        return
    answer = json.loads(body)
    if route(path) == "/openapi.json" and method in ("GET", "HEAD") and status == 200:
        assert answer["openapi"].startswith("3.")
    elif status >= 400:
        assert answer["status"] == "error" and CODE.fullmatch(answer["code"]), answer
        assert isinstance(answer["message"], str)
        assert isinstance(answer.get("details", []), list)
        assert status < 500 or answer["code"] in (allowed_5xx or {})[status], answer
    else:
        assert answer["status"] == "success" and "data" in answer, answer


# ---------------------------------------------------------------- in process, the bank
@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    """One bank-mode app for every example (no limits, an admin token set)."""
    loop = asyncio.new_event_loop()
    app = create_app(load_settings({"PROMPTS_DIR": str(ROOT / "prompts"),
                                    "RATE_LIMIT_PER_MINUTE": "0",
                                    "ADMIN_TOKEN": ADMIN}, env_file=None))
    context = app.test_app()
    loop.run_until_complete(context.__aenter__())
    yield loop, context.test_client()
    loop.run_until_complete(context.__aexit__(None, None, None))
    loop.close()


def check_in_process(loop: asyncio.AbstractEventLoop, method: str, path: str,
                     response: Any) -> None:
    body = loop.run_until_complete(response.get_data())
    check(method, path, response.status_code, response.headers, response.mimetype, body)


# `make test` runs the same cases every time (a suite that stays green); `make fuzz` explores.
FUZZ = settings(deadline=None, max_examples=600 * SCALE, database=None, derandomize=SCALE == 1,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(payload=payloads, path=st.sampled_from(["/generate-question", "/v1/mock-test"]))
def test_generated_payloads_never_cause_a_5xx(fuzz_app, payload, path):
    loop, client = fuzz_app
    check_in_process(loop, "POST", path, loop.run_until_complete(client.post(path, json=payload)))


@FUZZ
@given(request=requests)
def test_generated_requests_never_cause_a_5xx(fuzz_app, request):
    loop, client = fuzz_app
    response = loop.run_until_complete(client.open(
        request["path"], method=request["method"], data=request["body"],
        headers=headers_of(request), query_string=request["query"]))
    check_in_process(loop, request["method"], request["path"], response)


# ---------------------------------------------------------------- a real socket, a model
@pytest.mark.e2e
def test_generated_requests_over_a_socket_with_a_failing_model(serve, fake_model, redis):
    """`ielts-service serve` on the fake Azure model, whose every reply is generated too:
    answers, throttling, errors, content filters, broken JSON, dropped connections."""
    server = serve(**azure_env(fake_model, REDIS_URL=redis.url, RATE_LIMIT_PER_MINUTE="0",
                               ADMIN_TOKEN=ADMIN, CIRCUIT_MIN_CALLS="100000",
                               LOG_FORMAT="json"))
    @settings(deadline=None, max_examples=60 * SCALE, database=None, derandomize=SCALE == 1,
              suppress_health_check=[HealthCheck.too_slow])
    @given(request=st.one_of(valid_questions, valid_questions, questions, requests),
           reply=model_replies)
    def one(request: dict[str, Any], reply: fm.Reply) -> None:
        fake_model.set_default(reply)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            response = client.request(request["method"], request["path"],
                                      content=request["body"], headers=headers_of(request),
                                      params=request["query"])
        mimetype = response.headers.get("Content-Type", "").split(";")[0].strip()
        check(request["method"], response.request.url.raw_path.decode(),
              response.status_code, response.headers, mimetype, response.content,
              allowed_5xx=UPSTREAM)

    one()
    assert fake_model.requests, "no generated request reached the model"
    lines = [json.loads(line) for line in server.stop() if line.startswith("{")]
    crashes = [e for e in lines if e.get("event") == "unhandled_exception"]
    assert not crashes, crashes[0]
