"""Traffic against running `serve` instances for the topology tests: a cold storm, one
client against its limit, and steady load while readiness is watched (for failovers)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

URL = "/generate-question"
TOPICS = ["volcanoes", "glaciers", "rivers", "deserts", "forests", "islands", "bridges",
          "markets", "museums", "gardens"]
AFTER = "lighthouses after the failover"  # the storm that shows shared state is back


async def storm(urls: list[str], n: int, topic: str) -> list[httpx.Response]:
    """`n` requests for one cold topic at once, spread over `urls`, each from its own
    client address (X-Forwarded-For, believed from a trusted proxy): no limit applies."""
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return list(await asyncio.gather(*(
            client.post(urls[i % len(urls)] + URL, json={"topic": topic},
                        headers={"X-Forwarded-For": f"10.{i // 250}.{i % 250}.9"})
            for i in range(n))))


def calls_about(fake_model: object, topic: str) -> int:
    """The model calls the fake model received whose prompt names `topic` (background
    refills that steady load started may call it too, about their own topics)."""
    return sum(topic in json.dumps(r.body) for r in fake_model.requests)


async def one_client(urls: list[str], n: int) -> tuple[list[int], float]:
    """`n` requests at once from one client address over `urls`: (statuses, seconds)."""
    started = time.monotonic()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=n), timeout=60) as client:
        replies = await asyncio.gather(*(
            client.post(urls[i % len(urls)] + URL, json={"topic": TOPICS[i % len(TOPICS)]},
                        headers={"X-Forwarded-For": "198.51.100.7"})
            for i in range(n)))
    return [r.status_code for r in replies], time.monotonic() - started


@dataclass
class Watch:
    """What steady load and readiness probes saw around an event (a master's death)."""

    statuses: list[int] = field(default_factory=list)
    probes: list[tuple[float, int, int]] = field(default_factory=list)  # (sent, server, status)
    event_at: float = 0.0

    def first_probe_after_event(self) -> int:
        return next(status for when, _, status in self.probes if when >= self.event_at)

    def ready_again_after(self, servers: int) -> float:
        """Seconds from the event to the start of the last run of probes in which every
        server answered 200 (and kept answering 200 until the watch ended)."""
        after = [p for p in self.probes if p[0] >= self.event_at]
        last_bad = max((when for when, _, status in after if status != 200), default=None)
        good = [p for p in after if last_bad is None or p[0] > last_bad]
        assert {server for _, server, _ in good} == set(range(servers)), "never ready again"
        return min(when for when, _, _ in good) - self.event_at


async def watch_through(urls: list[str], event: Callable[[], object], settle: float = 3.0,
                        deadline: float = 60.0) -> Watch:
    """Steady load over `urls` (cached and cold topics, sessions; the servers must trust
    127.0.0.1 as a proxy) and readiness probes of each, while `event()` happens; until every server answered 200 to readiness for
    `settle` seconds (or `deadline` passed)."""
    seen = Watch()
    stop = asyncio.Event()
    counter = itertools.count()

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64), timeout=60) as client:

        async def load() -> None:
            while not stop.is_set():
                i = next(counter)
                topic = TOPICS[i % len(TOPICS)] if i % 5 else f"cold topic {i}"
                # Many students (a trusted proxy's X-Forwarded-For): no one client's quota
                # of model calls runs out and turns cold requests into 429s.
                reply = await client.post(urls[i % len(urls)] + URL,
                                          json={"topic": topic, "session_id": f"s{i % 13}"},
                                          headers={"X-Forwarded-For": f"10.9.{i % 200}.{i // 200 % 200}"})
                seen.statuses.append(reply.status_code)

        async def probe() -> None:
            while not stop.is_set():
                for n, url in enumerate(urls):
                    sent = time.monotonic()  # a probe counts from when it was asked
                    reply = await client.get(url + "/health/ready")
                    seen.probes.append((sent, n, reply.status_code))
                await asyncio.sleep(0.2)

        tasks = [asyncio.create_task(load()) for _ in range(16)] + [asyncio.create_task(probe())]
        await asyncio.sleep(2.0)  # load before the event
        await asyncio.to_thread(event)
        seen.event_at = time.monotonic()  # the event has happened (a process is dead)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            recent = [p for p in seen.probes if p[0] >= time.monotonic() - settle]
            if (time.monotonic() - seen.event_at > settle and recent
                    and {s for _, s, st in recent if st == 200} == set(range(len(urls)))
                    and all(st == 200 for _, _, st in recent)):
                break
        stop.set()
        await asyncio.gather(*tasks)
    return seen
