"""Generated inputs against every route: no 5xx, every response an envelope with a stable
code. `make test` runs 1,200 cases; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) runs 20x more."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ielts_service.app import create_app
from ielts_service.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
SCALE = 20 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 1
CODE = re.compile(r"[a-z][a-z0-9_]*")
PATHS = ["/generate-question", "/v1/mock-test", "/v1/topics", "/health/live", "/health/ready",
         "/admin/prompts", "/admin/prompts/reload", "/admin/cache/purge", "/openapi.json",
         "/docs", "/metrics", "/", "/generate-question/", "/v1/../generate-question"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "BREW"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "application/problem+json", "", "*/*",
                 "application/json; charset=latin-1", "multipart/form-data; boundary=x"]

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


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    """One bank-mode app for every example (no limits, an admin token set)."""
    loop = asyncio.new_event_loop()
    app = create_app(load_settings({"PROMPTS_DIR": str(ROOT / "prompts"),
                                    "RATE_LIMIT_PER_MINUTE": "0",
                                    "ADMIN_TOKEN": "fuzz-admin-token-long-enough-to-start"}, env_file=None))
    context = app.test_app()
    loop.run_until_complete(context.__aenter__())
    yield loop, context.test_client()
    loop.run_until_complete(context.__aexit__(None, None, None))
    loop.close()


def check(loop: asyncio.AbstractEventLoop, response: Any) -> None:
    status = response.status_code
    assert status < 500, status
    assert response.headers.get("X-Request-ID")
    if response.mimetype != "application/json":
        return
    body = json.loads(loop.run_until_complete(response.get_data()) or b"null")
    if status >= 400:
        assert body["status"] == "error" and CODE.fullmatch(body["code"]), body
        assert isinstance(body["message"], str)
    elif status == 200 and body is not None and "openapi" not in body:
        assert body["status"] == "success" and "data" in body


FUZZ = settings(deadline=None, max_examples=600 * SCALE, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(payload=payloads, part_of_path=st.sampled_from(["/generate-question", "/v1/mock-test"]))
def test_generated_payloads_never_cause_a_5xx(fuzz_app, payload, part_of_path):
    loop, client = fuzz_app
    check(loop, loop.run_until_complete(client.post(part_of_path, json=payload)))


@FUZZ
@given(method=st.sampled_from(METHODS), path=st.sampled_from(PATHS) | st.text(max_size=30)
       .map(lambda t: "/" + quote(t.lstrip("/"))),  # any text, as a client would send it
       content_type=st.sampled_from(CONTENT_TYPES), body=st.binary(max_size=300),
       request_id=st.text(max_size=80), auth=st.sampled_from(
           ["", "Bearer fuzz-admin-token-long-enough-to-start", "Bearer x", "Basic abc", "bearer"]),
       query=st.dictionaries(st.sampled_from(["topic", "part", "session_id", "x"]),
                             st.text(max_size=20), max_size=3))
def test_generated_requests_never_cause_a_5xx(fuzz_app, method, path, content_type, body,
                                              request_id, auth, query):
    loop, client = fuzz_app
    headers = {"Content-Type": content_type, "Authorization": auth}
    if request_id.isprintable() and request_id.isascii():
        headers["X-Request-ID"] = request_id
    response = loop.run_until_complete(client.open(
        path, method=method, data=body, headers={k: v for k, v in headers.items() if v},
        query_string=query))
    check(loop, response)
