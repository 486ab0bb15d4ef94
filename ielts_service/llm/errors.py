"""What a model call can end in, besides an answer.

`ModelClient.generate` raises `ContentFiltered` (not retried), `ModelUnavailable` (retries
spent, a non-retryable error, the breaker open or the budget spent) or `DeadlineExceeded`
(from `ielts_service.deadline`). The others are how one attempt fails inside the loop.
"""

from __future__ import annotations


class ModelUnavailable(Exception):
    """No valid answer could be had; `retry_after` is the provider's hint, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.detail = detail  # the last error, for people (the CLI); never sent to clients


class ContentFiltered(Exception):
    """The provider's content filter blocked the prompt or the answer: retrying won't help."""


class InvalidOutput(Exception):
    """The model answered, but nothing usable came of it (a failed attempt, retried)."""


class CircuitOpen(Exception):
    """The breaker is open: no call goes out until the cool-down ends."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open for {retry_after:.1f} s")
        self.retry_after = retry_after


class BudgetExhausted(Exception):
    """The shared quota has no room before the deadline; `retry_after` in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"model budget exhausted for {retry_after:.1f} s")
        self.retry_after = retry_after
