"""A streamed answer, item by item: `{"items": [ITEM, ...]}` arrives in chunks, and each
ITEM is handed on the moment it is complete, while the rest is still being written.

The growing text is parsed with jiter's partial mode (it comes with the openai SDK): every
element of `items` but the last is complete once a later one has started, and the last
is complete when the whole answer has arrived.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import jiter
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk

from ielts_service.llm.errors import ContentFiltered, InvalidOutput

T = TypeVar("T")


class PartialStream(Exception):
    """The stream broke after `delivered` items were handed on: keep them, retry nothing."""

    def __init__(self, delivered: int, cause: BaseException) -> None:
        super().__init__(f"stream broke after {delivered} items: {cause!r}")
        self.delivered, self.cause = delivered, cause


class ItemSplitter:
    """Feed it the answer's text as it arrives; it returns the items completed so far."""

    def __init__(self) -> None:
        self._text = bytearray()
        self._handed = 0

    def feed(self, text: str) -> list[Any]:
        chunk = text.encode()
        self._text += chunk
        # An item is known complete once the next one starts or the list ends.
        if b"{" not in chunk and b"]" not in chunk:
            return []
        parsed = jiter.from_json(bytes(self._text), partial_mode="on")
        items = parsed.get("items") if isinstance(parsed, dict) else None
        if not isinstance(items, list) or len(items) - 1 <= self._handed:
            return []
        complete = items[self._handed:-1]  # the last one may still be growing
        self._handed += len(complete)
        return complete

    def finish(self) -> list[Any]:
        """The items not handed yet, from the whole answer; InvalidOutput if it is not JSON."""
        try:
            parsed = json.loads(bytes(self._text) or b"null")
        except ValueError:
            raise InvalidOutput("streamed answer is not JSON") from None
        items = parsed.get("items") if isinstance(parsed, dict) else None
        if not isinstance(items, list):
            raise InvalidOutput("streamed answer has no items list")
        rest = items[self._handed:]
        self._handed = len(items)
        return rest


class StreamRecord:
    """What a stream leaves for its attempt's log line and metrics."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first_item_ms: float | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.delivered = 0  # items handed on so far
        self.model: str | None = None  # the answering model and the response id, as chunks say
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []

    @property
    def response(self) -> tuple[str, str, list[str]] | None:
        """(model, id, finish reasons) for the attempt's trace, once a chunk has come."""
        if self.model is None or self.response_id is None:
            return None
        return self.model, self.response_id, self.finish_reasons


async def read_items(stream: AsyncStream[ChatCompletionChunk],
                     accept: Callable[[list[Any]], list[T]],
                     deliver: Callable[[list[T]], Awaitable[None]],
                     record: StreamRecord) -> int:
    """Hand on each accepted item as soon as it is complete; return how many were handed.

    Raises ContentFiltered when the provider's filter stops the answer, InvalidOutput when
    no item was acceptable, PartialStream when it broke after some were handed on."""
    splitter = ItemSplitter()

    async def hand_on(raw: list[Any]) -> None:
        if raw and (fresh := accept(raw)):
            if record.first_item_ms is None:
                record.first_item_ms = round((time.monotonic() - record.started) * 1000, 1)
            record.delivered += len(fresh)
            await deliver(fresh)

    try:
        async for chunk in stream:
            record.model, record.response_id = chunk.model, chunk.id
            if chunk.usage is not None:
                record.prompt_tokens = chunk.usage.prompt_tokens
                record.completion_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.finish_reason:
                    record.finish_reasons.append(choice.finish_reason)
                if choice.finish_reason == "content_filter" or choice.delta.refusal:
                    raise ContentFiltered()
                if choice.delta.content:
                    await hand_on(splitter.feed(choice.delta.content))
        await hand_on(splitter.finish())
    except Exception as exc:  # a broken connection, a filter, a bad ending: keep what came
        if record.delivered:
            raise PartialStream(record.delivered, exc) from None
        raise
    finally:
        await stream.close()
    if not record.delivered:
        raise InvalidOutput("no valid item in the streamed answer")
    return record.delivered
