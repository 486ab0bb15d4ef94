"""The model call: one structured-output chat completion per attempt, retried by policy.

`ModelClient.generate` returns the valid items of the first attempt that has any, or
raises: `ContentFiltered` (not retried), `ModelUnavailable` (retries spent or a
non-retryable error), `DeadlineExceeded` (the request's deadline passed).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass

import openai
import structlog
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ielts_service.deadline import Deadline
from ielts_service.llm.budget import Budget, BudgetExhausted
from ielts_service.llm.breaker import CircuitBreaker
from ielts_service.questions.items import Item, response_format
from ielts_service.questions.prompts import PromptSet
from ielts_service.llm.retry import (
    ContentFiltered,
    InvalidOutput,
    RetryPolicy,
    advertised_wait,
    is_retryable,
    outcome_of,
    stop_policy,
    wait_advertised_or_backoff,
)
from ielts_service.questions.validators import accept_items
from ielts_service.observability.metrics import Metrics

log = structlog.get_logger("ielts_service.model")


class ModelUnavailable(Exception):
    """No valid answer could be had; `retry_after` is the provider's hint, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.detail = ""  # the last error, for people (the CLI); never sent to clients


class CircuitOpen(Exception):
    """The breaker is open: no call goes out until the cool-down ends."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open for {retry_after:.1f} s")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The request's deadline passed while waiting for the model."""


@dataclass(frozen=True)
class Generation:
    items: list[Item]
    attempts: int
    rejected: list[str]


@dataclass
class _Attempt:
    """What one attempt leaves for its `ai_call` line and its metrics."""

    number: int
    outcome: str = "success"
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status_code: int | None = None


class ModelClient:
    """Owns one SDK client (its own retries off) and the service's retry policy."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        provider: str,
        model: str,
        policy: RetryPolicy,
        metrics: Metrics,
        temperature: float = 0.9,
        budget: Budget | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._client = client
        self.provider = provider
        self.model = model
        self.policy = policy
        self.metrics = metrics
        self.temperature = temperature
        self.budget = budget
        self.breaker = breaker or CircuitBreaker()

    def __repr__(self) -> str:
        return f"ModelClient(provider={self.provider!r}, model={self.model!r})"

    async def close(self) -> None:
        await self._client.close()

    async def generate(
        self, prompt: PromptSet, topic: str, count: int, deadline: Deadline
    ) -> Generation:
        """Valid items for `topic` from the first successful attempt."""
        attempts: list[_Attempt] = []

        def before_sleep(retry_state: RetryCallState) -> None:
            wait = retry_state.upcoming_sleep or 0.0
            self.metrics.ai_retries.labels(attempts[-1].outcome).inc()
            self._log(prompt, attempts[-1], retry_reason=attempts[-1].outcome, wait=wait)

        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_policy(self.policy, deadline),
            wait=wait_advertised_or_backoff(self.policy),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    record = _Attempt(attempt.retry_state.attempt_number)
                    attempts.append(record)
                    items, rejected = await self._attempt(prompt, topic, count, deadline, record)
                    self._log(prompt, record)
                    return Generation(items, record.number, rejected)
        except BaseException as exc:
            if attempts and attempts[-1].outcome not in ("success", "skipped"):  # logged once
                self._log(prompt, attempts[-1])
            raise self._unavailable(exc, deadline) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    @staticmethod
    def _unavailable(exc: BaseException, deadline: Deadline) -> BaseException:
        """What a spent retry loop means for the caller."""
        if isinstance(exc, ContentFiltered | DeadlineExceeded | asyncio.CancelledError):
            return exc
        if isinstance(exc, BudgetExhausted):
            return ModelUnavailable("budget_exhausted", math.ceil(exc.retry_after))
        if isinstance(exc, CircuitOpen):
            return ModelUnavailable("circuit_open", math.ceil(exc.retry_after) or 1)
        if isinstance(exc, openai.APIError | InvalidOutput):
            if deadline.expired:
                return DeadlineExceeded()
            hint = advertised_wait(exc)
            unavailable = ModelUnavailable(outcome_of(exc), math.ceil(hint) if hint else None)
            unavailable.detail = str(exc)
            return unavailable
        return exc

    async def _attempt(
        self, prompt: PromptSet, topic: str, count: int, deadline: Deadline, record: _Attempt
    ) -> tuple[list[Item], list[str]]:
        record.outcome = "skipped"  # until a call is made: nothing to log or count
        if not self.breaker.allow():
            raise CircuitOpen(self.breaker.retry_after())
        messages = prompt.messages(topic, count)
        if self.budget is not None:
            estimate = (prompt.max_tokens or 1500) + sum(len(m["content"]) for m in messages) // 4
            await self.budget.take(estimate, deadline)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise DeadlineExceeded()
        started = time.monotonic()
        error: BaseException | None = None
        try:
            async with asyncio.timeout(remaining):
                # The SDK's documented raw `post` sends the same request as
                # `chat.completions.create` (Azure's deployment path included) without
                # re-walking our already-plain body through its typed transforms, which
                # cost more CPU than the rest of a cold request.
                completion = await self._client.post(
                    "/chat/completions",
                    body=self._body(prompt, messages),
                    cast_to=ChatCompletion,
                    options={"timeout": min(self.policy.attempt_timeout, remaining),
                             "headers": _request_id_header()},
                )
            if completion.usage is not None:
                record.prompt_tokens = completion.usage.prompt_tokens
                record.completion_tokens = completion.usage.completion_tokens
            return self._items(prompt.part, completion)
        except json.JSONDecodeError:
            # The SDK raises this bare when a 200 carries a truncated or broken body.
            error = InvalidOutput("response body is not JSON")
            raise error from None
        except TimeoutError:
            error = TimeoutError()
            raise DeadlineExceeded() from None
        except asyncio.CancelledError as exc:  # the client left and nobody shares this call
            error = exc
            raise
        except Exception as exc:
            error = exc
            if is_content_filter_error(exc):
                error = ContentFiltered()
                raise error from None
            raise
        finally:
            record.outcome = outcome_of(error)
            if record.outcome not in ("content_filtered", "cancelled"):
                self._record_health(record.outcome == "success")
            record.latency_ms = round((time.monotonic() - started) * 1000, 1)
            record.status_code = getattr(error, "status_code", None)
            self._count(prompt.part, record)

    def _body(self, prompt: PromptSet, messages: list[dict[str, str]]) -> dict[str, object]:
        return chat_body(self.model, self.temperature, prompt, messages)

    def _record_health(self, success: bool) -> None:
        before = self.breaker.state
        self.breaker.record(success)
        if (after := self.breaker.state) != before:
            log.warning("circuit_" + ("closed" if after == "closed" else "opened"),
                        provider=self.provider, model=self.model, state=after)

    def _count(self, part: int, record: _Attempt) -> None:
        labels = (self.provider, self.model, str(part), record.outcome)
        self.metrics.ai_requests.labels(*labels).inc()
        self.metrics.ai_duration.labels(*labels).observe(record.latency_ms / 1000)
        for kind, tokens in (("prompt", record.prompt_tokens),
                             ("completion", record.completion_tokens)):
            if tokens:
                self.metrics.ai_tokens.labels(self.model, kind).inc(tokens)

    def _log(
        self, prompt: PromptSet, record: _Attempt, *, retry_reason: str | None = None,
        wait: float | None = None,
    ) -> None:
        """One `ai_call` line per attempt; a retried one says why and how long it waits."""
        log.info(
            "ai_call",
            provider=self.provider,
            model=self.model,
            prompt=f"part{prompt.part}",
            prompt_version=prompt.version,
            part=prompt.part,
            attempt=record.number,
            outcome=record.outcome,
            latency_ms=record.latency_ms,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            status_code=record.status_code,
            retry_reason=retry_reason,
            retry_wait_ms=None if wait is None else round(wait * 1000, 1),
        )

    def _items(
        self, part: int, completion: openai.types.chat.ChatCompletion
    ) -> tuple[list[Item], list[str]]:
        if not completion.choices:
            raise InvalidOutput("no choices")
        choice = completion.choices[0]
        if choice.finish_reason == "content_filter" or choice.message.refusal:
            raise ContentFiltered()
        try:
            payload = json.loads(choice.message.content or "")
        except (ValueError, RecursionError):
            raise InvalidOutput(f"answer is not JSON (finish_reason={choice.finish_reason})")
        raw = payload.get("items") if isinstance(payload, dict) else None
        items, rejected = accept_items(part, raw)
        for reason in rejected:
            self.metrics.items_rejected.labels(str(part), reason.code).inc()
        if rejected:
            log.warning("ai_items_rejected", part=part, rejected=len(rejected),
                        accepted=len(items), reasons=rejected[:5])
        if not items:
            raise InvalidOutput("no valid item: " + "; ".join(rejected[:5]))
        return items, [str(r) for r in rejected]


def chat_body(model: str, temperature: float, prompt: PromptSet,
              messages: list[dict[str, str]]) -> dict[str, object]:
    """The chat-completion request body; the prompt file's settings win over the defaults."""
    body: dict[str, object] = {
        "model": model,
        "messages": messages,
        "response_format": response_format(prompt.part),
        "temperature": temperature if prompt.temperature is None else prompt.temperature,
    }
    if prompt.max_tokens is not None:
        body["max_tokens"] = prompt.max_tokens
    return body


def is_content_filter_error(exc: BaseException) -> bool:
    """Azure's first signal of a blocked prompt: HTTP 400 with code `content_filter`."""
    return isinstance(exc, openai.BadRequestError) and exc.code == "content_filter"


def _request_id_header() -> dict[str, str]:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"X-Request-ID": request_id} if request_id else {}
