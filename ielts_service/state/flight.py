"""Single-flight: concurrent misses of one pool cost one model call across every worker.

In a process, requests for the same key share one task. Across processes, the task first
takes a Redis lease (`SET NX PX` with an owner token, renewed while it works, released
by compare-and-delete); the others wait for the pool to land: woken by a pub/sub message
on one subscriber per process, with a bounded poll as a fallback, never past their own
deadline. A holder that dies stops renewing, its lease runs out and a waiter takes over.
Without Redis, or while Redis is down, only the in-process sharing applies.

Written here rather than with redis-py's `Lock`: that lock waits by sleeping and polling,
and a waiter here must wake the moment the pool lands (pub/sub) and never past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ielts_service.deadline import Deadline, DeadlineExceeded
from ielts_service.state.feed import Feed
from ielts_service.state.redis import SharedRedis, StoreError

log = structlog.get_logger("ielts_service.flight")
T = TypeVar("T")
PREFIX = "ielts:v1:flight"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
          "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0")


def _name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def lock_name(key: str) -> str:
    """The Redis key of the lease that guards the generation of pool `key`."""
    return f"{PREFIX}:lock:{hashlib.sha256(key.encode()).hexdigest()[:24]}"


class SingleFlight:
    """`run(key, load, produce, deadline)` -> (value, produced_by_this_call)."""

    def __init__(self, redis: SharedRedis | None, lease: float, poll: float = 0.5) -> None:
        self._redis = redis
        self._lease_ms = int(lease * 1000)
        self._poll = poll
        self._local: dict[str, asyncio.Future[tuple[Any, bool]]] = {}
        self._waiters: dict[str, int] = {}
        self._ready: dict[str, list[asyncio.Future[None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._held: dict[str, str] = {}  # lease key -> our token, while we generate
        self._renewer: asyncio.Task[None] | None = None
        self._feeds: dict[str, Feed] = {}  # pool key -> its streamed generation here
        self._following: dict[str, Feed] = {}  # channel name -> feed fed by pub/sub

    def __repr__(self) -> str:
        return f"SingleFlight(redis={self._redis is not None}, in_flight={self.in_flight})"

    @property
    def in_flight(self) -> int:
        """Generations running in this process (whole or streamed); 0 once every pool landed."""
        return len(self._local) + len(self._feeds)

    async def run(
        self, key: str, load: Callable[[], Awaitable[T | None]],
        produce: Callable[[], Awaitable[T]], deadline: Deadline,
    ) -> tuple[T, bool]:
        shared = self._local.get(key)
        produced = shared is None
        if shared is None:
            shared = asyncio.ensure_future(self._distributed(key, load, produce, deadline))
            self._local[key] = shared
            self._waiters[key] = 0
            shared.add_done_callback(lambda _: (self._local.pop(key, None),
                                                self._waiters.pop(key, None)))
        value, by_us = await self._wait(key, shared, deadline)
        # Values under one key are all of the caller's type T: the dict cannot say so.
        return cast(T, value), by_us and produced

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
        name = _name(key)
        self._following[name] = feed
        channel = f"{PREFIX}:ready:{name}"

        async def deliver(items: list[Any]) -> None:
            feed.put(items)
            if self._redis is not None:
                message = json.dumps({"items": items}, ensure_ascii=False)
                with contextlib.suppress(StoreError):
                    await self._redis.run(lambda r: r.publish(channel, message),
                                          event="flight_store_error", op="publish")

        async def produce() -> None:
            feed.produced_here = True
            await start(deliver)

        def ended(task: asyncio.Future[tuple[Any, bool]]) -> None:
            if self._feeds.get(key) is feed:
                del self._feeds[key]
            self._following.pop(name, None)
            error = None if task.cancelled() else task.exception()
            if error is None and not task.cancelled() and not feed.produced_here:
                value, _ = task.result()  # another process's pool, landed whole
                feed.put([item for item in value if item not in feed.items])
            feed.close(error or (DeadlineExceeded() if task.cancelled() else None))

        feed.task = asyncio.ensure_future(self._distributed(key, load, produce, deadline))
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
        if self._redis is None:
            return await produce(), True
        name = _name(key)
        lock, channel, token = lock_name(key), f"{PREFIX}:ready:{name}", uuid.uuid4().hex
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
            ready = self._wait_ready(name)
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
                self._forget(name, ready)

    async def _hold(self, lock: str, channel: str, token: str,
                    produce: Callable[[], Awaitable[T]]) -> T:
        assert self._redis is not None
        self._held[lock] = token
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew())
        try:
            value = await produce()
            with contextlib.suppress(StoreError):
                await self._redis.run(lambda r: r.publish(channel, "1"),
                                      event="flight_store_error", op="publish")
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

        async def renew_all(r: Redis) -> None:
            pipe = r.pipeline(transaction=False)
            for lock, token in list(held.items()):
                pipe.eval(_RENEW, 1, lock, token, self._lease_ms)
            await pipe.execute()

        while self._held:
            await asyncio.sleep(self._lease_ms / 3000)
            with contextlib.suppress(StoreError):
                await self._redis.run(renew_all, event="flight_store_error", op="renew",
                                      gated=False)

    def _wait_ready(self, name: str) -> asyncio.Future[None]:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready.setdefault(name, []).append(future)
        return future

    def _forget(self, name: str, future: asyncio.Future[None]) -> None:
        waiters = self._ready.get(name, [])
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            self._ready.pop(name, None)

    async def _listen(self) -> None:
        """One subscriber per process wakes every local waiter of a pool that landed."""
        assert self._redis is not None
        while True:
            try:
                async with self._redis.client.pubsub() as pubsub:
                    await pubsub.psubscribe(f"{PREFIX}:ready:*")
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                           timeout=1.0)
                        if message is not None:
                            self._heard(str(message["channel"]).rsplit(":", 1)[-1],
                                        str(message["data"]))
            except (RedisError, OSError) as exc:
                log.warning("flight_listener_error", error=type(exc).__name__)
                await asyncio.sleep(1.0)  # waiters poll meanwhile

    def _heard(self, name: str, data: str) -> None:
        """A pool's channel spoke: items of a streamed generation, or "1" when it landed."""
        if data != "1":
            feed = self._following.get(name)
            if feed is not None and not feed.produced_here:  # our own items are in already
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    feed.put(list(json.loads(data)["items"]))
            return
        for future in self._ready.pop(name, []):
            if not future.done():
                future.set_result(None)

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
        for task in (self._listener, self._renewer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
