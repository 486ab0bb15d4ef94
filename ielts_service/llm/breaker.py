"""Circuit breakers: stop calling a dependency that keeps failing, probe it, come back.

`CircuitBreaker` guards the model deployment: it opens when the failure ratio over a
sliding window passes a threshold (after a minimum of calls), lets one probe through
after a cool-down (half-open), and closes on that probe's success. `RedisGate` is the
same idea for Redis, simpler: after a failure, Redis is skipped for a short while, so a
dead or silent Redis costs a request at most one short timeout.
"""

from __future__ import annotations

import time
from collections import deque

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError


class CircuitBreaker:
    def __init__(self, *, window: float = 30.0, min_calls: int = 10,
                 failure_ratio: float = 0.5, cooldown: float = 15.0) -> None:
        self.window, self.min_calls = window, min_calls
        self.failure_ratio, self.cooldown = failure_ratio, cooldown
        self._calls: deque[tuple[float, bool]] = deque()
        self._opened_at: float | None = None
        self._probing = False

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

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def record(self, success: bool) -> None:
        now = time.monotonic()
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


class RedisGate:
    """After a Redis failure, skip Redis for `pause` seconds, then try again."""

    def __init__(self, pause: float = 2.0) -> None:
        self.pause = pause
        self._down_until = 0.0

    def __repr__(self) -> str:
        return f"RedisGate(open={self.open})"

    @property
    def open(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, error: BaseException | None = None) -> None:
        """Close the gate, unless the error says only that this worker's pool was full:
        a burst is not an outage, and skipping Redis would turn it into cache misses."""
        if isinstance(error, MaxConnectionsError) or (
                isinstance(error, RedisConnectionError) and "No connection available" in str(error)):
            return  # the blocking pool's wait ran out: this worker is busy, Redis is fine
        self._down_until = time.monotonic() + self.pause

    def succeeded(self) -> None:
        self._down_until = 0.0
