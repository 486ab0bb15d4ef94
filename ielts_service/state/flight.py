"""Single-flight: concurrent misses of one pool cost one model call across every worker.

In a process, requests for the same key share one task. Across processes, the task first
takes a Redis lease (`SET NX PX` with an owner token, renewed while it works, released
by compare-and-delete); the others wait for the pool to land: woken by a message on the
pool's ready channel (see `wakeup`), with a bounded poll as a fallback, never past their
own deadline. A holder that dies stops renewing, its lease runs out and a waiter takes
over. Without Redis, or while Redis is down, only the in-process sharing applies. The
lease and the channel carry the pool key's hash tag, so on a cluster they live on the
pool's node.

Written here rather than with redis-py's `Lock`: that lock waits by sleeping and polling,
and a waiter here must wake the moment the pool lands (pub/sub) and never past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from ielts_service.deadline import Deadline, DeadlineExceeded
from ielts_service.observability import tracing
from ielts_service.state.feed import Feed
from ielts_service.state.redis import Client, SharedRedis, StoreError, tag_of
from ielts_service.state.wakeup import PREFIX, Wakeups, ready_channel

T = TypeVar("T")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
          "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0")


def lock_name(key: str) -> str:
    """The Redis key of the lease that guards the generation of pool `key`."""
    return f"{PREFIX}:lock:{tag_of(key)}"


class SingleFlight:
    """`run(key, load, produce, deadline)` -> (value, produced_by_this_call)."""

    def __init__(self, redis: SharedRedis | None, lease: float, poll: float = 0.5) -> None:
        self._redis = redis
        self._lease_ms = int(lease * 1000)
        self._poll = poll
        self._local: dict[str, asyncio.Future[tuple[Any, bool]]] = {}
        self._waiters: dict[str, int] = {}
        self._wakeups = Wakeups(redis) if redis is not None else None
        self._held: dict[str, str] = {}  # lease key -> our token, while we generate
        self._renewer: asyncio.Task[None] | None = None
        self._feeds: dict[str, Feed] = {}  # pool key -> its streamed generation here
        self._following: dict[str, Feed] = {}  # channel -> feed fed by pub/sub

    def __repr__(self) -> str:
        return f"SingleFlight(redis={self._redis is not None}, in_flight={self.in_flight})"

    @property
    def in_flight(self) -> int:
        """Generations running in this process (whole or streamed); 0 once every pool landed."""
        return len(self._local) + len(self._feeds)

    def waiting(self, key: str) -> int:
        """Requests of this process waiting on the generation under `key` now."""
        return self._waiters.get(key, 0)

    async def run(
        self, key: str, load: Callable[[], Awaitable[T | None]],
        produce: Callable[[], Awaitable[T]], deadline: Deadline,
    ) -> tuple[T, bool]:
        shared = self._local.get(key)
        produced = shared is None
        with tracing.span("single-flight", {"ielts.flight.joined": not produced}) as span:
            if shared is None:  # started inside the span: the model call is its child
                shared = asyncio.ensure_future(self._distributed(key, load, produce, deadline))
                self._local[key] = shared
                self._waiters[key] = 0
                shared.add_done_callback(functools.partial(self._done, key))
            value, by_us = await self._wait(key, shared, deadline)
            span.set({"ielts.flight.produced": by_us and produced})
        # Values under one key are all of the caller's type T: the dict cannot say so.
        return cast(T, value), by_us and produced

    def _done(self, key: str, task: asyncio.Future[tuple[Any, bool]]) -> None:
        self._local.pop(key, None)
        self._waiters.pop(key, None)
        # Every waiter may have left (its own deadline) before the task failed. Retrieve
        # the failure here, or the garbage collector reports it later, at any allocation:
        # CPython 3.11 formats that report with ast.parse, and one inside another
        # ast.parse failed the latter with "AST constructor recursion depth mismatch".
        if not task.cancelled():
            task.exception()

    def stream(self, key: str, load: Callable[[], Awaitable[list[Any] | None]],
               start: Callable[[Callable[[list[Any]], Awaitable[None]]], Awaitable[None]],
               deadline: Deadline) -> tuple[Feed, bool]:
        """The feed of pool `key`'s streamed generation, and whether this call started it.

        One process, across every instance, runs `start(deliver)` (it calls `deliver` with
        each batch of items, then stores the pool); each batch goes to this process's
        waiters at once and, published on the pool's channel, to every other process's.
        A process that does not hold the lease follows: items by pub/sub, then the pool
        when it lands, or it takes over if the holder dies. `deadline` bounds the whole."""
        if (feed := self._feeds.get(key)) is not None:
            return feed, False
        feed = self._feeds[key] = Feed()
        channel = ready_channel(tag_of(key))
        self._following[channel] = feed
        if self._wakeups is not None:
            self._wakeups.follow(channel, functools.partial(self._heard, channel))

        async def deliver(items: list[Any]) -> None:
            feed.put(items)
            if self._wakeups is not None:
                message = json.dumps({"items": items}, ensure_ascii=False)
                with contextlib.suppress(StoreError):
                    await self._wakeups.publish(channel, message)

        async def produce() -> None:
            feed.produced_here = True
            await start(deliver)

        def ended(task: asyncio.Future[tuple[Any, bool]]) -> None:
            if self._feeds.get(key) is feed:
                del self._feeds[key]
            self._following.pop(channel, None)
            if self._wakeups is not None:
                self._wakeups.unfollow(channel)
            error = None if task.cancelled() else task.exception()
            if error is None and not task.cancelled() and not feed.produced_here:
                value, _ = task.result()  # another process's pool, landed whole
                feed.put([item for item in value if item not in feed.items])
            feed.close(error or (DeadlineExceeded() if task.cancelled() else None))

        feed.task = asyncio.ensure_future(tracing.in_span(  # the model call is its child
            "single-flight", self._distributed(key, load, produce, deadline),
            {"ielts.flight.streamed": True}))
        feed.task.add_done_callback(ended)
        return feed, True

    async def _wait(self, key: str, task: asyncio.Future[tuple[Any, bool]],
                    deadline: Deadline) -> tuple[Any, bool]:
        """Await the shared task; when the last waiter's client goes away, cancel it."""
        self._waiters[key] = self._waiters.get(key, 0) + 1
        cancelled = False
        try:
            return await self._bounded(asyncio.shield(task), deadline)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if key in self._waiters:  # gone once the task is done
                self._waiters[key] -= 1
                if cancelled and self._waiters[key] <= 0 and not task.done():
                    task.cancel()

    @staticmethod
    async def _bounded(awaitable: Awaitable[T], deadline: Deadline) -> T:
        try:
            return await asyncio.wait_for(awaitable, deadline.remaining())
        except TimeoutError:
            raise DeadlineExceeded() from None

    async def _distributed(
        self, key: str, load: Callable[[], Awaitable[T | None]],
        produce: Callable[[], Awaitable[T]], deadline: Deadline,
    ) -> tuple[T, bool]:
        if self._redis is None or self._wakeups is None:
            return await produce(), True
        lock, channel, token = lock_name(key), ready_channel(tag_of(key)), uuid.uuid4().hex
        while True:
            try:
                acquired = await self._redis.run(
                    lambda r: r.set(lock, token, nx=True, px=self._lease_ms),
                    event="flight_store_error", op="lease")
            except StoreError:
                # Redis is down or skipped: share within this process only. (Never retry
                # at once: a failure that returns without awaiting would spin the loop.)
                return await produce(), True
            if acquired:
                return await self._hold(lock, channel, token, produce), True
            ready = self._wakeups.wait(channel)
            try:
                if (value := await load()) is not None:
                    return value, False
                if deadline.expired:
                    raise DeadlineExceeded()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(ready),
                                           min(self._poll, deadline.remaining()))
                if (value := await load()) is not None:
                    return value, False
            finally:
                self._wakeups.forget(channel, ready)

    async def _hold(self, lock: str, channel: str, token: str,
                    produce: Callable[[], Awaitable[T]]) -> T:
        assert self._redis is not None and self._wakeups is not None
        self._held[lock] = token
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), context=tracing.detached())
        try:
            value = await produce()
            with contextlib.suppress(StoreError):
                await self._wakeups.publish(channel)
            return value
        finally:
            self._held.pop(lock, None)
            with contextlib.suppress(StoreError, asyncio.CancelledError):
                await self._redis.run(lambda r: r.eval(_RELEASE, 1, lock, token),
                                      event="flight_store_error", op="release", gated=False)

    async def _renew(self) -> None:
        """One loop per process renews every lease it holds, in one pipeline per round."""
        assert self._redis is not None
        held = self._held

        async def renew_all(r: Client) -> None:
            pipe = r.pipeline(transaction=False)
            for lock, token in list(held.items()):
                pipe.eval(_RENEW, 1, lock, token, self._lease_ms)
            await pipe.execute()

        while self._held:
            await asyncio.sleep(self._lease_ms / 3000)
            with contextlib.suppress(StoreError):
                await self._redis.run(renew_all, event="flight_store_error", op="renew",
                                      gated=False)

    def _heard(self, channel: str, data: str) -> None:
        """A followed pool's channel carried items of its streamed generation."""
        feed = self._following.get(channel)
        if feed is not None and not feed.produced_here:  # our own items are in already
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                feed.put(list(json.loads(data)["items"]))

    async def close(self) -> None:
        """Stop every generation and the listener, and wait for them: a cancelled holder
        still releases its lease, which must happen before the client is closed."""
        running = [feed.task for feed in self._feeds.values() if feed.task is not None]
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # each feed has it
                await task
        if self._wakeups is not None:
            await self._wakeups.close()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
