"""The model call: one structured-output chat completion per attempt, retried by policy.

`ModelClient.generate(call, parse, deadline, admit)` sends `call` until `parse` accepts an
answer and returns what `parse` made of it (`stream` hands on items as they are written),
or raises: `ContentFiltered` (not retried),
`ModelUnavailable` (retries spent, a non-retryable error, breaker open, budget spent),
`DeadlineExceeded` (the request's deadline passed), or whatever `admit` raised: the caller's
own check, run before every attempt that would reach the model (a client's quota). It
knows nothing of IELTS: the caller says what to send and what counts as a usable answer.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import openai
import structlog
from openai import AsyncStream, RequestOptions
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ielts_service.deadline import Deadline, DeadlineExceeded
from ielts_service.llm.breaker import CircuitBreaker, breaker_verdict
from ielts_service.llm.budget import Budget
from ielts_service.llm.call import ChatCall, chat_body
from ielts_service.llm.errors import (
    BudgetExhausted,
    CircuitOpen,
    ContentFiltered,
    InvalidOutput,
    ModelUnavailable,
)
from ielts_service.llm.response import is_content_filter_error, payload_of
from ielts_service.llm.retry import (
    RetryPolicy,
    advertised_wait,
    is_retryable,
    outcome_of,
    stop_policy,
    wait_advertised_or_backoff,
)
from ielts_service.llm.stream import PartialStream, StreamRecord, read_items
from ielts_service.observability import tracing
from ielts_service.observability.metrics import Metrics

log = structlog.get_logger("ielts_service.model")
T = TypeVar("T")
Admit = Callable[[], Awaitable[None]]


@dataclass
class _Attempt:
    """What one attempt leaves for its `ai_call` line and its metrics."""

    number: int
    outcome: str = "success"
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status_code: int | None = None
    stream: StreamRecord | None = None  # set when the answer is streamed
    response: tuple[str, str, list[str]] | None = None  # model, id, finish reasons (whole)
    trace: dict[str, str] | None = None  # the attempt span's ids, for its ai_call line


class ModelClient:
    """Owns one SDK client (its own retries off) and the service's retry policy."""

    def __init__(self, client: openai.AsyncOpenAI, *, provider: str, model: str,
                 policy: RetryPolicy, metrics: Metrics, temperature: float,
                 breaker: CircuitBreaker, budget: Budget | None = None) -> None:
        self._client = client
        self.provider, self.model = provider, model
        self.policy, self.metrics, self.temperature = policy, metrics, temperature
        self.breaker, self.budget = breaker, budget

    def __repr__(self) -> str:
        return f"ModelClient(provider={self.provider!r}, model={self.model!r})"

    @property
    def circuit(self) -> str:
        """The breaker's state: closed, open or half_open."""
        return self.breaker.state

    async def close(self) -> None:
        await self._client.close()

    async def generate(self, call: ChatCall, parse: Callable[[object], T],
                       deadline: Deadline, admit: Admit | None = None) -> T:
        """`parse` of the first answer it accepts (it raises InvalidOutput to retry);
        `admit` runs before each attempt that would reach the model and may refuse it."""

        async def send(record: _Attempt, timeout: float) -> T:
            completion = await self._client.post(
                "/chat/completions", body=chat_body(call, self.model, self.temperature),
                cast_to=ChatCompletion, options=self._options(timeout))
            if completion.usage is not None:
                record.prompt_tokens = completion.usage.prompt_tokens
                record.completion_tokens = completion.usage.completion_tokens
            record.response = (completion.model, completion.id,
                               [str(c.finish_reason) for c in completion.choices])
            return parse(payload_of(completion))

        return await self._retried(call, deadline, send, admit)

    async def stream(self, call: ChatCall, accept: Callable[[list[Any]], list[T]],
                     deliver: Callable[[list[T]], Awaitable[None]], deadline: Deadline,
                     admit: Admit | None = None) -> int:
        """Stream the answer and `deliver` each batch of items `accept` keeps, as soon as
        they are complete; return how many were delivered. An attempt that delivered
        nothing is retried like any failed attempt; one that broke after delivering some
        counts as failed and ends the call with what it delivered."""

        async def send(record: _Attempt, timeout: float) -> int:
            stream = await self._client.post(
                "/chat/completions",
                body=chat_body(call, self.model, self.temperature, stream=True),
                cast_to=ChatCompletion, options=self._options(timeout), stream=True,
                stream_cls=AsyncStream[ChatCompletionChunk])
            record.stream = StreamRecord()
            try:
                return await read_items(stream, accept, deliver, record.stream)
            finally:
                record.prompt_tokens = record.stream.prompt_tokens
                record.completion_tokens = record.stream.completion_tokens

        return await self._retried(call, deadline, send, admit)

    async def _retried(self, call: ChatCall, deadline: Deadline,
                       send: Callable[[_Attempt, float], Awaitable[T]],
                       admit: Admit | None) -> T:
        """Attempts of `send` under the retry policy, each logged and counted."""
        attempts: list[_Attempt] = []

        def before_sleep(retry_state: RetryCallState) -> None:
            self.metrics.ai_retries.labels(attempts[-1].outcome).inc()
            self._log(call, attempts[-1], retry_reason=attempts[-1].outcome,
                      wait=retry_state.upcoming_sleep or 0.0)

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
                    result = await self._attempt(call, deadline, record, send, admit)
                    self._log(call, record)
                    return result
        except BaseException as exc:
            if attempts and attempts[-1].outcome not in ("success", "skipped"):  # logged once
                self._log(call, attempts[-1])
            raise self._unavailable(exc, deadline) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _options(self, timeout: float) -> RequestOptions:
        return {"timeout": min(self.policy.attempt_timeout, timeout),
                "headers": _request_id_header()}

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
            return ModelUnavailable(outcome_of(exc), math.ceil(hint) if hint else None,
                                    detail=str(exc))
        return exc

    async def _attempt(self, call: ChatCall, deadline: Deadline, record: _Attempt,
                       send: Callable[[_Attempt, float], Awaitable[T]],
                       admit: Admit | None) -> T:
        """One attempt: breaker, the caller's admission, budget and deadline first, then
        `send`, then its outcome (logged by the caller, counted here, told to the breaker)."""
        record.outcome = "skipped"  # until a call is made: nothing to log or count
        if not self.breaker.ready():  # before anything is spent on a call it would refuse
            raise CircuitOpen(self.breaker.retry_after())
        if admit is not None:
            await admit()
        if self.budget is not None:
            await self.budget.take(call.token_estimate(), deadline)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise DeadlineExceeded()
        if not self.breaker.allow():  # another request took the half-open probe meanwhile
            raise CircuitOpen(self.breaker.retry_after())
        full_time = remaining >= self.policy.attempt_timeout
        broken_body = False
        started = time.monotonic()
        error: BaseException | None = None
        url = self._client.base_url
        with tracing.span(f"chat {self.model}", tracing.genai_request(
                self.provider, self.model, call.part, call.prompt_version, attempt=record.number,
                temperature=self.temperature if call.temperature is None else call.temperature,
                max_tokens=call.max_tokens, server=(url.host, url.port)), kind="client") as span:
            try:
                # The SDK's documented raw `post` sends the same request as
                # `chat.completions.create` (Azure's deployment path included) without
                # re-walking our already-plain body through its typed transforms, which cost
                # more CPU than the rest of a cold request.
                async with asyncio.timeout(remaining):
                    return await send(record, remaining)
            except PartialStream as exc:  # items went out: keep them, count the rest as failed
                error = exc.cause
                return cast(T, exc.delivered)
            except json.JSONDecodeError:
                # The SDK raises this bare when a 200 carries a truncated or broken body.
                broken_body = True
                error = InvalidOutput("response body is not JSON")
                raise error from None
            except TimeoutError:
                error = TimeoutError()
                if record.stream is not None and record.stream.delivered:
                    return cast(T, record.stream.delivered)  # the deadline cut a stream short
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
                self._record_health(breaker_verdict(record.outcome, full_time=full_time,
                                                    broken_body=broken_body))
                record.latency_ms = round((time.monotonic() - started) * 1000, 1)
                record.status_code = getattr(error, "status_code", None)
                self._count(call.part, record)
                record.trace = tracing.attempt_done(
                    span, record.outcome, tokens=(record.prompt_tokens, record.completion_tokens),
                    response=record.stream.response if record.stream else record.response,
                    first_item_ms=record.stream.first_item_ms if record.stream else None)

    def _record_health(self, success: bool | None) -> None:
        before = self.breaker.state
        self.breaker.record(success)
        if (after := self.breaker.state) != before:
            log.warning("circuit_" + ("closed" if after == "closed" else "opened"),
                        provider=self.provider, model=self.model, state=after)

    def _count(self, part: int, record: _Attempt) -> None:
        labels = (self.provider, self.model, str(part), record.outcome)
        self.metrics.ai_requests.labels(*labels).inc()
        self.metrics.observe_ai_duration(labels, record.latency_ms / 1000,
                                         trace_id=tracing.sampled_trace_id())
        for kind, tokens in (("prompt", record.prompt_tokens),
                             ("completion", record.completion_tokens)):
            if tokens:
                self.metrics.ai_tokens.labels(self.model, kind).inc(tokens)

    def _log(self, call: ChatCall, record: _Attempt, *, retry_reason: str | None = None,
             wait: float | None = None) -> None:
        """One `ai_call` line per attempt; a retried one says why and how long it waits."""
        log.info(
            "ai_call",
            provider=self.provider,
            model=self.model,
            prompt=f"part{call.part}",
            prompt_version=call.prompt_version,
            part=call.part,
            attempt=record.number,
            outcome=record.outcome,
            latency_ms=record.latency_ms,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            status_code=record.status_code,
            retry_reason=retry_reason,
            retry_wait_ms=None if wait is None else round(wait * 1000, 1),
            streamed=record.stream is not None,
            first_item_ms=record.stream.first_item_ms if record.stream is not None else None,
            **(record.trace or {}),
        )


def _request_id_header() -> dict[str, str]:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"X-Request-ID": request_id} if request_id else {}
