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
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ielts_service.deadline import Deadline
from ielts_service.generation.items import Item, response_format
from ielts_service.generation.prompts import PromptSet
from ielts_service.generation.retry import (
    ContentFiltered,
    InvalidOutput,
    RetryPolicy,
    advertised_wait,
    is_retryable,
    outcome_of,
    stop_policy,
    wait_advertised_or_backoff,
)
from ielts_service.generation.validators import accept_items

log = structlog.get_logger("ielts_service.model")


class ModelUnavailable(Exception):
    """No valid answer could be had; `retry_after` is the provider's hint, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The request's deadline passed while waiting for the model."""


@dataclass(frozen=True)
class Generation:
    items: list[Item]
    attempts: int


class ModelClient:
    """Owns one SDK client (its own retries off) and the service's retry policy."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        provider: str,
        model: str,
        policy: RetryPolicy,
        temperature: float = 0.9,
    ) -> None:
        self._client = client
        self.provider = provider
        self.model = model
        self.policy = policy
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"ModelClient(provider={self.provider!r}, model={self.model!r})"

    async def close(self) -> None:
        await self._client.close()

    async def generate(
        self, prompt: PromptSet, topic: str, count: int, deadline: Deadline
    ) -> Generation:
        """Valid items for `topic` from the first successful attempt."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_policy(self.policy, deadline),
            wait=wait_advertised_or_backoff(self.policy),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    items = await self._attempt(prompt, topic, count, deadline, number)
                    return Generation(items, number)
        except (ContentFiltered, DeadlineExceeded):
            raise
        except openai.APIError as exc:
            if deadline.expired:
                raise DeadlineExceeded() from None
            hint = advertised_wait(exc)
            raise ModelUnavailable(outcome_of(exc), hint and math.ceil(hint)) from None
        except InvalidOutput:
            if deadline.expired:
                raise DeadlineExceeded() from None
            raise ModelUnavailable("invalid_output") from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(
        self, prompt: PromptSet, topic: str, count: int, deadline: Deadline, number: int
    ) -> list[Item]:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise DeadlineExceeded()
        started = time.monotonic()
        usage = None
        error: BaseException | None = None
        try:
            async with asyncio.timeout(remaining):
                completion = await self._client.chat.completions.create(
                    model=self.model,
                    messages=prompt.messages(topic, count),  # type: ignore[arg-type]
                    response_format=response_format(prompt.part),  # type: ignore[arg-type]
                    temperature=self.temperature,
                    timeout=min(self.policy.attempt_timeout, remaining),
                    extra_headers=_request_id_header(),
                )
            usage = completion.usage
            return self._items(prompt.part, completion)
        except json.JSONDecodeError:
            # The SDK raises this bare when a 200 carries a truncated or broken body.
            error = InvalidOutput("response body is not JSON")
            raise error from None
        except TimeoutError:
            error = TimeoutError()
            raise DeadlineExceeded() from None
        except Exception as exc:
            error = exc
            if is_content_filter_error(exc):
                error = ContentFiltered()
                raise error from None
            raise
        finally:
            log.info(
                "ai_call",
                provider=self.provider,
                model=self.model,
                prompt=f"part{prompt.part}",
                prompt_version=prompt.version,
                part=prompt.part,
                attempt=number,
                outcome=outcome_of(error),
                latency_ms=round((time.monotonic() - started) * 1000, 1),
                prompt_tokens=getattr(usage, "prompt_tokens", None),
                completion_tokens=getattr(usage, "completion_tokens", None),
                status_code=getattr(error, "status_code", None),
            )

    def _items(self, part: int, completion: openai.types.chat.ChatCompletion) -> list[Item]:
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
        if rejected:
            log.warning("ai_items_rejected", part=part, rejected=len(rejected),
                        accepted=len(items), reasons=rejected[:5])
        if not items:
            raise InvalidOutput("no valid item")
        return items

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        log.info(
            "ai_retry",
            attempt=retry_state.attempt_number,
            reason=outcome_of(outcome.exception() if outcome else None),
            wait_ms=round((retry_state.upcoming_sleep or 0) * 1000, 1),
        )


def is_content_filter_error(exc: BaseException) -> bool:
    """Azure's first signal of a blocked prompt: HTTP 400 with code `content_filter`."""
    return isinstance(exc, openai.BadRequestError) and exc.code == "content_filter"


def _request_id_header() -> dict[str, str]:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"X-Request-ID": request_id} if request_id else {}
