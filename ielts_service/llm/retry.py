"""The retry policy for model calls (contract section 2), built on tenacity.

Retried: 429, 408, 409, 5xx, timeouts, connection errors and answers with no valid item.
The wait honours `retry-after-ms` / `Retry-After` (seconds or an HTTP date) up to a cap,
otherwise exponential backoff with full jitter. Attempts are bounded, and a retry that
could not start with time left for an attempt before the deadline is not started.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass

import openai
from tenacity import RetryCallState, stop_after_attempt, wait_random_exponential
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ielts_service.config import Settings
from ielts_service.deadline import Deadline
from ielts_service.llm.errors import ContentFiltered, InvalidOutput

RETRY_STATUSES = frozenset({408, 409, 429})


MIN_ATTEMPT_SECONDS = 0.5  # a retry with less time than this before the deadline is not started


@dataclass(frozen=True)
class RetryPolicy:
    """The retry settings, from `Settings` (the only place defaults are written)."""

    max_attempts: int
    attempt_timeout: float
    retry_after_cap: float
    backoff_base: float
    backoff_max: float
    min_attempt_seconds: float = MIN_ATTEMPT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_attempts=settings.ai_max_attempts,
                   attempt_timeout=settings.ai_attempt_timeout_seconds,
                   retry_after_cap=settings.ai_retry_after_cap_seconds,
                   backoff_base=settings.ai_backoff_base_seconds,
                   backoff_max=settings.ai_backoff_max_seconds)


def outcome_of(exc: BaseException | None) -> str:
    """The outcome label of an attempt: one vocabulary for logs, metrics and retry reasons."""
    if exc is None:
        return "success"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limited"
        return "server_error" if exc.status_code >= 500 else f"http_{exc.status_code}"
    if isinstance(exc, InvalidOutput | openai.APIResponseValidationError):
        return "invalid_output"
    if isinstance(exc, ContentFiltered):
        return "content_filtered"
    if isinstance(exc, TimeoutError):
        return "deadline"
    return "error"


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUSES or exc.status_code >= 500
    return isinstance(
        exc, openai.APIConnectionError | InvalidOutput | openai.APIResponseValidationError
    )


def advertised_wait(exc: BaseException | None) -> float | None:
    """Seconds the provider asked us to wait, from `retry-after-ms` or `Retry-After`."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        if (value := headers.get("retry-after")) is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                parsed = email.utils.parsedate_to_datetime(value)
                return max(0.0, parsed.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
    return None


class wait_advertised_or_backoff(wait_base):  # noqa: N801 (tenacity's naming: wait_*)
    """The provider's advertised wait (capped), else exponential backoff with full jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.cap = policy.retry_after_cap
        self.backoff = wait_random_exponential(multiplier=policy.backoff_base,
                                               max=policy.backoff_max)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        advertised = advertised_wait(outcome.exception() if outcome else None)
        if advertised is not None:
            return min(advertised, self.cap)
        return float(self.backoff(retry_state))


class stop_before_deadline(stop_base):  # noqa: N801 (tenacity's naming: stop_*)
    """Stop when the chosen wait would leave too little time for another attempt."""

    def __init__(self, deadline: Deadline, min_attempt_seconds: float) -> None:
        self.deadline = deadline
        self.min_attempt = min_attempt_seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        wait = retry_state.upcoming_sleep or 0.0
        return self.deadline.remaining() - wait < self.min_attempt


def stop_policy(policy: RetryPolicy, deadline: Deadline) -> stop_base:
    return stop_after_attempt(policy.max_attempts) | stop_before_deadline(
        deadline, policy.min_attempt_seconds
    )
