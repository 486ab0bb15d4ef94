"""The retry policy's pieces: advertised waits, backoff, and the deadline stop."""

from __future__ import annotations

import email.utils
import time
from types import SimpleNamespace

import httpx2
import openai
import pytest

from ielts_service.deadline import Deadline
from ielts_service.llm.retry import (
    RetryPolicy,
    advertised_wait,
    is_retryable,
    stop_before_deadline,
    wait_advertised_or_backoff,
)


def status_error(code: int, **headers: str) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://model.test/chat")
    response = httpx2.Response(code, headers=headers, request=request)
    return openai.APIStatusError("boom", response=response, body=None)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_advertised_wait_reads_the_headers(headers, expected):
    assert advertised_wait(status_error(429, **headers)) == expected


def test_advertised_wait_reads_an_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= advertised_wait(status_error(503, **{"retry-after": when})) <= 30


@pytest.mark.parametrize(("code", "retry"), [(408, True), (409, True), (429, True), (500, True),
                                             (503, True), (400, False), (401, False),
                                             (404, False), (422, False)])
def test_which_statuses_are_retried(code, retry):
    assert is_retryable(status_error(code)) is retry


def state(exc: BaseException, attempt: int = 1, upcoming: float = 0.0) -> SimpleNamespace:
    outcome = SimpleNamespace(exception=lambda: exc, failed=True)
    return SimpleNamespace(outcome=outcome, attempt_number=attempt, upcoming_sleep=upcoming)


def test_wait_honours_the_cap_and_falls_back_to_jittered_backoff():
    wait = wait_advertised_or_backoff(RetryPolicy(max_attempts=4, attempt_timeout=20,
                                                  retry_after_cap=2, backoff_base=1,
                                                  backoff_max=4))
    assert wait(state(status_error(429, **{"retry-after": "60"}))) == 2
    backoffs = {wait(state(status_error(500), attempt=3)) for _ in range(50)}
    assert all(0 <= b <= 4 for b in backoffs) and len(backoffs) > 1


def test_stop_before_deadline_skips_a_retry_that_cannot_fit():
    stop = stop_before_deadline(Deadline.after(60), min_attempt_seconds=0.5)
    assert stop(state(status_error(500), upcoming=30)) is False
    assert stop(state(status_error(500), upcoming=59.8)) is True
