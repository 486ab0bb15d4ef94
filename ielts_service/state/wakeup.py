"""Wake-ups for single-flight waiters: the pool they wait for has landed ("1" on its ready
channel), or, for a streamed generation, a batch of its items (any other message, handed
to whoever follows the channel).

One subscriber per process wakes every local waiter of a channel. On one node (standalone,
sentinel) it holds a single pattern subscription to every ready channel (PSUBSCRIBE) and
the holder PUBLISHes. On a cluster, a plain PUBLISH is copied to every node over the
cluster bus; sharded pub/sub (Redis 7) keeps a message on the node that owns its channel's
slot (the pool's, by its hash tag), so there the subscriber SSUBSCRIBEs to exactly the
channels its waiters wait on, and the holder SPUBLISHes. A cluster older than Redis 7
(asked once, `INFO server`) has no sharded pub/sub: there the pattern subscription and
PUBLISH serve, broadcast. Whenever no message can come (Redis down, a node failing over)
the waiters' own bounded poll finds the pool instead: a message only makes them faster.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from ielts_service.observability import tracing
from ielts_service.state.redis import SharedRedis, StoreError

log = structlog.get_logger("ielts_service.flight")
PREFIX = "ielts:v1:flight"
LANDED = "1"  # the message that says a pool landed; any other carries streamed items
READ_WAIT = 0.05  # cluster: seconds one node's subscription is read before the next one's


def ready_channel(tag: str) -> str:
    """The channel a pool's holder announces its pool on (the pool's hash tag in it)."""
    return f"{PREFIX}:ready:{tag}"


class Wakeups:
    """`wait(channel)` -> a future that completes when `publish(channel)` is seen;
    `follow(channel, handler)` hands every other message on it to `handler`."""

    def __init__(self, redis: SharedRedis) -> None:
        self._redis = redis
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()  # sharded: a channel to subscribe to was added
        self.sharded_supported: bool | None = None  # cluster: known once a node has said

    def wait(self, channel: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(channel, []).append(future)
        self._listening()
        return future

    def follow(self, channel: str, handler: Callable[[str], None]) -> None:
        """Hand `channel`'s item messages to `handler` while anyone here also waits on it
        (a follower always does; the holder, which needs none, opens no subscription)."""
        self._handlers[channel] = handler
        self._wanted.set()

    def unfollow(self, channel: str) -> None:
        self._handlers.pop(channel, None)

    def _listening(self) -> None:
        if self._listener is None or self._listener.done():
            # Detached: the listener outlives the request whose wait started it.
            self._listener = asyncio.create_task(self._listen(), context=tracing.detached())
        self._wanted.set()

    def forget(self, channel: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiting.get(channel, [])
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            self._waiting.pop(channel, None)

    async def publish(self, channel: str, data: str = LANDED) -> None:
        """Announce that the pool behind `channel` landed, or a batch of its items
        (StoreError when Redis fails)."""
        if await self._sharded():
            await self._redis.run(lambda r: r.spublish(channel, data),
                                  event="flight_store_error", op="publish")
        else:
            await self._redis.run(lambda r: r.publish(channel, data),
                                  event="flight_store_error", op="publish")

    async def _sharded(self) -> bool:
        """Whether to use sharded pub/sub: on a cluster whose servers have it (Redis 7 and
        later, asked once; StoreError while no node answers)."""
        if not self._redis.cluster:
            return False
        if self.sharded_supported is None:
            info = await self._redis.run(lambda r: r.info("server"),
                                         event="flight_store_error", op="version")
            major = str(info.get("redis_version", "0")).split(".")[0]
            self.sharded_supported = major.isdigit() and int(major) >= 7
            if not self.sharded_supported:
                log.info("flight_wakeups_broadcast", reason="no sharded pub/sub before Redis 7")
        return self.sharded_supported

    def _heard(self, channel: str, data: str) -> None:
        if data != LANDED:
            if (handler := self._handlers.get(channel)) is not None:
                handler(data)
            return
        for future in self._waiting.pop(channel, []):
            if not future.done():
                future.set_result(None)

    async def _listen(self) -> None:
        while True:
            try:
                sharded = await self._sharded()
                async with self._redis.client.pubsub() as pubsub:
                    if sharded:
                        await self._sharded_messages(pubsub)
                    else:
                        await self._pattern_messages(pubsub)
            except StoreError:
                await asyncio.sleep(1.0)  # logged by SharedRedis; waiters poll meanwhile
            except self._redis.failures as exc:
                log.warning("flight_listener_error", error=type(exc).__name__)
                await asyncio.sleep(1.0)  # waiters poll meanwhile

    async def _pattern_messages(self, pubsub: Any) -> None:
        await pubsub.psubscribe(ready_channel("*"))
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                self._heard(str(message["channel"]), str(message["data"]))

    async def _sharded_messages(self, pubsub: Any) -> None:
        """Keep the subscriptions equal to the channels waited on, and read them."""
        subscribed: set[str] = set()
        while True:
            wanted = {*self._waiting, *self._handlers}
            if added := wanted - subscribed:
                await pubsub.ssubscribe(*added)
            if gone := subscribed - wanted:
                await pubsub.sunsubscribe(*gone)
            subscribed = wanted
            if not subscribed and not pubsub.subscribed:  # every unsubscribe confirmed
                self._wanted.clear()
                if not (self._waiting or self._handlers):  # none came while we awaited
                    await self._wanted.wait()
                continue
            message = await pubsub.get_sharded_message(ignore_subscribe_messages=True,
                                                       timeout=READ_WAIT)
            if message is not None and message["type"] == "smessage":
                self._heard(str(message["channel"]), str(message["data"]))
            elif message is None and not pubsub.node_pubsub_mapping:
                await asyncio.sleep(READ_WAIT)  # nothing to read yet: do not spin

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
