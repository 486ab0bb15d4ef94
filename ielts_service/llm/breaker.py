"""The circuit breaker: stop calling a model deployment that keeps failing, probe it, come back.

It judges the deployment, not the prompt: the caller records an attempt as a success, a
failure, or neither (`None`: an answer the caller could not use, a 429 the budget and
`Retry-After` handle, a content-filter refusal, a call cut short by the request's own
deadline). Otherwise anyone who can make the model write unusable answers could open it
for everyone.

It opens when the failure ratio over a sliding window passes a threshold (after a minimum
of calls), lets one probe through after a cool-down (half-open), and closes on that
probe's success. Written here rather than taken from pybreaker/aiobreaker: those count
consecutive failures (not a ratio over a time window) and aiobreaker is unmaintained.
"""

from __future__ import annotations

import time
from collections import deque

from ielts_service.config import Settings


class CircuitBreaker:
    def __init__(self, *, window: float, min_calls: int, failure_ratio: float,
                 cooldown: float) -> None:
        self.window, self.min_calls = window, min_calls
        self.failure_ratio, self.cooldown = failure_ratio, cooldown
        self._calls: deque[tuple[float, bool]] = deque()
        self._opened_at: float | None = None
        self._probing = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CircuitBreaker:
        return cls(window=settings.circuit_window_seconds, min_calls=settings.circuit_min_calls,
                   failure_ratio=settings.circuit_failure_ratio,
                   cooldown=settings.circuit_cooldown_seconds)

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state!r})"

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self.retry_after() == 0 else "open"

    def retry_after(self) -> float:
        """Seconds until a probe may go out (0 when closed or half-open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - time.monotonic())

    def ready(self) -> bool:
        """Would `allow()` let a call out now? Claims nothing: ask before spending a
        quota or budget on a call the breaker would then refuse."""
        state = self.state
        return state == "closed" or (state == "half_open" and not self._probing)

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def record(self, success: bool | None) -> None:
        """One attempt's verdict on the deployment; None: it says nothing either way (a
        probe that ends so frees the slot for the next one)."""
        now = time.monotonic()
        if success is None:
            self._probing = False
            return
        if self._opened_at is not None:  # the probe's answer decides
            self._probing = False
            if success:
                self._opened_at = None
                self._calls.clear()
            else:
                self._opened_at = now
            return
        self._calls.append((now, success))
        while self._calls and self._calls[0][0] < now - self.window:
            self._calls.popleft()
        failures = sum(1 for _, ok in self._calls if not ok)
        if len(self._calls) >= self.min_calls and failures / len(self._calls) >= self.failure_ratio:
            self._opened_at = now


# Outcomes that say nothing about the deployment's health: an answer the caller could not
# use, a 429 (the budget and Retry-After deal with those), a refusal, a client that left.
_NEUTRAL = frozenset({"invalid_output", "rate_limited", "content_filtered", "cancelled"})


def breaker_verdict(outcome: str, *, full_time: bool, broken_body: bool) -> bool | None:
    """What one attempt says about the deployment: healthy, failing, or nothing (None).
    A timeout counts only when the attempt had its whole timeout: one cut short by the
    request's deadline (after a budget wait, say) is not the deployment's fault."""
    if outcome == "success":
        return True
    if broken_body:  # a 200 whose body is not JSON: the transport, not the prompt
        return False
    if outcome in ("timeout", "deadline"):
        return False if full_time else None
    return None if outcome in _NEUTRAL else False
