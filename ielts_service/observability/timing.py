"""Where a request's time went: the time it waited on the model and on the cache, for the
`Server-Timing` header and the `ielts_overhead_seconds` histogram.

`start()` opens a request's record (the access hooks call it); `waiting("model")` around
an await adds that wait to whatever request is current, also from tasks the request
started (they share the record through the context). Concurrent waits of one request
count once: a mock test waiting on four model calls at once waited for the model as long
as the longest of them, not their sum.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[Timings | None] = ContextVar("ielts_timings", default=None)


class Timings:
    """One request's waits, as intervals on the performance counter, per kind."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._spans: dict[str, list[tuple[float, float]]] = {}

    def add(self, kind: str, start: float, end: float) -> None:
        self._spans.setdefault(kind, []).append((start, end))

    def spent(self, kind: str) -> float:
        """Seconds spent waiting on `kind`, overlapping waits counted once."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self._spans.get(kind, [])):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

    def kinds(self) -> list[str]:
        return sorted(self._spans)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def header(self, total: float) -> str:
        """`Server-Timing` in milliseconds: `model` when the request waited for it, `cache`
        (0 when a worker's own copy answered), then `total`."""
        kinds = sorted({*self.kinds(), "cache"})
        parts = [f"{kind};dur={self.spent(kind) * 1000:.1f}" for kind in kinds]
        return ", ".join([*parts, f"total;dur={total * 1000:.1f}"])


def start() -> Timings:
    """Open the current request's record."""
    timings = Timings()
    _current.set(timings)
    return timings


@contextmanager
def waiting(kind: str) -> Iterator[None]:
    """Count the enclosed await as time the current request waited on `kind`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if (timings := _current.get()) is not None:
            timings.add(kind, started, time.perf_counter())
