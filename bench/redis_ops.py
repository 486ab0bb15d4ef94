"""The Redis commands one request sends, counted with MONITOR on a throw-away redis-server.

The app runs in this process (its Quart test client) against the fake model and a real
Redis; MONITOR sees every command a client sends, and the commands a script runs inside
Redis (type `lua`) are left out: they are part of the script's one round trip. An EVALSHA
is named by its script (`EVALSHA GCRA`), told apart by its SHA. A marker (`ECHO`) from
another connection closes each phase, so a phase's count is exact.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis

from ielts_service.app import create_app
from ielts_service.config import load_settings
from tests.support.fake_model import FakeModel

ROOT = Path(__file__).resolve().parent.parent
URL = "/generate-question"
REQUESTS = 200  # per phase
WARM_MAX = 300  # warm-up requests at most, while a popular pool grows to its largest


class Monitor:
    """Counts the commands clients send between two markers; `scripts` (name: text) name
    the EVALSHAs (an unknown one is `EVALSHA ?<its SHA's start>`)."""

    def __init__(self, port: int, scripts: dict[str, str] | None = None) -> None:
        self.port = port
        self.names = {hashlib.sha1(text.encode()).hexdigest(): name
                      for name, text in (scripts or {}).items()}
        self.counts: collections.Counter[str] = collections.Counter()
        self._marks: dict[str, threading.Event] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _run(self) -> None:
        client = redis.Redis(port=self.port, decode_responses=True)
        with client.monitor() as monitor:
            self._ready.set()
            for event in monitor.listen():
                words = str(event["command"]).split()
                if not words or event.get("client_type") == "lua":
                    continue
                name = words[0].upper()
                if name == "ECHO" and words[1:] and words[1] in self._marks:
                    self._marks[words[1]].set()
                    if words[1] == "stop":
                        return
                    continue
                if name == "EVALSHA" and words[1:]:
                    name += " " + self.names.get(words[1].lower(), "?" + words[1][:8])
                self.counts[name] += 1

    def phase(self, label: str) -> collections.Counter[str]:
        """Wait until MONITOR saw everything sent before now; return and reset the counts."""
        self._marks[label] = threading.Event()
        with redis.Redis(port=self.port) as r:
            r.echo(label)
        if not self._marks[label].wait(30):
            raise TimeoutError(f"MONITOR never saw the marker {label!r}")
        counts, self.counts = self.counts, collections.Counter()
        return counts

    def stop(self) -> None:
        self.phase("stop")


def largest_pool(port: int) -> int:
    """How many items the largest pool in Redis holds."""
    with redis.Redis(port=port) as r:
        pools = [r.get(key) for key in r.scan_iter(match="ielts:v1:pool:*", count=500)]
    return max((len(json.loads(raw)["items"]) for raw in pools if raw), default=0)


async def _phase(monitor: Monitor, label: str, env: dict[str, str],
                 send: Callable[[Any, int], Awaitable[None]], *,
                 full: bool = False) -> dict[str, float]:
    """Warm an app up (first connections, script loads), then count `REQUESTS` requests.
    `full`: warm up until the pool holds `POOL_MAX_ITEMS` items, a popular topic's steady
    state (it no longer widens, and every request serves one of its items, counted)."""
    settings = load_settings(env, env_file=None)
    app = create_app(settings)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        await send(client, -1)  # warm-up: connects and loads the scripts
        warm = 1
        while full and largest_pool(monitor.port) < settings.pool_max_items:
            if warm == WARM_MAX:
                raise RuntimeError(f"{label}: the pool never reached {settings.pool_max_items} "
                                   f"items in {WARM_MAX} requests")
            await asyncio.sleep(0.02)  # a widening in the background lands
            await send(client, -1)
            warm += 1
        await asyncio.sleep(2.5)  # the warm-up's pool leaves the worker's 2 s copy
        monitor.phase(f"{label}-start")
        for i in range(REQUESTS):
            await send(client, i)
        counts = monitor.phase(f"{label}-end")
    return {name: n / REQUESTS for name, n in sorted(counts.items())}


def count(redis_port: int, scripts: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Commands per request, by command (an EVALSHA by its script's name in `scripts`), for
    each kind of request. The cached ones serve a popular topic's pool at its largest."""
    fake = FakeModel().start()
    monitor = Monitor(redis_port, scripts)
    env = {"AZURE_OPENAI_ENDPOINT": fake.url, "AZURE_OPENAI_API_KEY": "bench-key-41c7",
           "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-bench", "PROMPTS_DIR": str(ROOT / "prompts"),
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "LOG_LEVEL": "error",
           "RATE_LIMIT_PER_MINUTE": "100000", "GENERATIONS_PER_CLIENT_PER_HOUR": "100000"}

    def ask(**payload: Any) -> Callable[[Any, int], Awaitable[None]]:
        async def send(client: Any, i: int) -> None:
            body = {k: (v.format(i=i) if isinstance(v, str) else v) for k, v in payload.items()}
            response = await client.post(URL, json=body)
            assert response.status_code == 200, await response.get_data(as_text=True)
        return send

    async def all_phases() -> dict[str, dict[str, float]]:
        return {
            "cached (the worker's 2 s copy of the pool)": await _phase(
                monitor, "cached", env, ask(topic="volcanoes"), full=True),
            "cached, copy expired (a pool read from Redis)": await _phase(
                monitor, "cached-redis", {**env, "LOCAL_POOL_TTL_SECONDS": "0"},
                ask(topic="volcanoes"), full=True),
            "cached, with a session_id (seen items)": await _phase(
                monitor, "session", env, ask(topic="volcanoes", session_id="s-{i}"),
                full=True),
            "cold, streamed (one model call; AI_STREAM, the default)": await _phase(
                monitor, "cold", env, ask(topic="cold topic number {i}")),
            "cold, whole answer (one model call; AI_STREAM=false)": await _phase(
                monitor, "cold-whole", {**env, "AI_STREAM": "false"},
                ask(topic="whole cold topic number {i}")),
        }

    try:
        return asyncio.run(all_phases())
    finally:
        monitor.stop()
        fake.stop()
