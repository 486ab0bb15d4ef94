"""A feed: the items of one streamed generation as they arrive, for every request in this
process that waits on the same cold pool.

A waiter asks for the first item it wants (one its session has not seen) and gets it the
moment it arrives, or None once the feed closes without one; `error` then says why, if
the generation failed. When the last waiter leaves before anything arrived, the
generation is cancelled: nobody is left to want it, and the pool is not worth the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ielts_service.deadline import Deadline, DeadlineExceeded


class Feed:
    """Items in arrival order; `closed` once the generation ended (`error` if it failed)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.closed = False
        self.error: BaseException | None = None
        self.produced_here = False  # this process's call wrote it (not another instance's)
        self.task: asyncio.Future[Any] | None = None
        self._changed = asyncio.Event()
        self._waiters = 0
        self._handed: dict[int, int] = {}  # item index -> times handed out

    def __repr__(self) -> str:
        return f"Feed(items={len(self.items)}, closed={self.closed}, waiters={self._waiters})"

    def put(self, items: list[Any]) -> None:
        if not self.closed and items:
            self.items.extend(items)
            self._wake()

    def close(self, error: BaseException | None = None) -> None:
        if not self.closed:
            self.closed, self.error = True, error
            self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def pick(self, wanted: Callable[[Any], bool], limit: int | None = None) -> Any | None:
        """An item `wanted` accepts that is here already (and handed out fewer than `limit`
        times), handed out least so far; None."""
        choices = [i for i, item in enumerate(self.items)
                   if wanted(item) and (limit is None or self._handed.get(i, 0) < limit)]
        if not choices:
            return None
        pick = min(choices, key=lambda i: self._handed.get(i, 0))
        self._handed[pick] = self._handed.get(pick, 0) + 1
        return self.items[pick]

    def handed(self, item: Any) -> int:
        """How often this feed handed `item` out so far."""
        return self._handed.get(self.items.index(item), 0) if item in self.items else 0

    async def first(self, wanted: Callable[[Any], bool], deadline: Deadline, *,
                    limit: int | None = None) -> Any | None:
        """An item `wanted` accepts as soon as there is one, the one handed out least so
        far (a class asking at once is spread over the items); None when the feed closed
        without one; DeadlineExceeded at the deadline. With `limit`, one handed out fewer
        than `limit` times as soon as one is written, else, once the generation ended,
        the least handed out: a class asking at once gets every item the call writes."""
        self._waiters += 1
        try:
            while True:
                if (item := self.pick(wanted, limit)) is not None:
                    return item
                if self.closed:
                    return self.pick(wanted)
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), deadline.remaining())
                except TimeoutError:
                    raise DeadlineExceeded() from None
        except asyncio.CancelledError:
            if self._waiters == 1 and not self.items and self.task is not None:
                self.task.cancel()  # the last client left before anything came
            raise
        finally:
            self._waiters -= 1
