"""A request's deadline: a point on the monotonic clock that everything it starts respects."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """`at` is a `time.monotonic()` value; `remaining()` never goes below zero."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0


class DeadlineExceeded(Exception):
    """The request's deadline passed while waiting (for the model, a lease, a pool)."""
