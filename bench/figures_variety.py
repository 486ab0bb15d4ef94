"""Figure (m): model calls per served item for a popular topic at steady state.

One Part 2 topic. A class of 30 asks once each, one after another: the pool grows from one
call's items to POOL_MAX_ITEMS. Then many students ask on the same topic for a fixed wall
time, paced, with a soft TTL short enough that the pool is refilled (replaced by one call)
and grown again several times inside the window. What the same steady state costs at the
default soft TTL (6 h) is derived from the measured rate, not measured.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.client import Conn, _host_port, percentile, post_bytes, read_response
from bench.figures import PATH, Bench, unhandled
from bench.servers import Process
from tests.support.fake_model import slow

TOPIC = "travel"  # one Part 2 topic, as a whole school's classes would share it
PART = 2
POOL_SIZE, POOL_MAX_ITEMS, SERVES_PER_ITEM = 5, 30, 1  # the defaults, set explicitly
CLASS = 30  # the first class: 30 sessions, one question each, one after another
MODEL_SECONDS = 1.0  # every model call answers after this long
SOFT_TTL_S = 15  # POOL_SOFT_TTL_SECONDS inside the window
# A refill's deadline is also how long a widening from a given pool size is remembered as
# done (`store.once`): under the soft TTL, so each refilled pool may grow again.
REFILL_TIMEOUT_S = 10
DEFAULT_SOFT_TTL_S = 21600  # POOL_SOFT_TTL_SECONDS's default: 6 h
WINDOW_S = 60.0  # the steady-state window: wall time
RATE = 45.0  # requests a second at most in the window (paced, ~2,700 requests)
CONCURRENCY = 20  # connections; each carries one session's questions at a time
SESSIONS = 1500  # more than the window reaches: it ends on time, not on running out
MAX_ASKS = 5  # each session asks 1 to 5 times, one after another
SEED = 20240607
CALLS_PER_PERIOD = 1 + -(-(POOL_MAX_ITEMS - POOL_SIZE) // POOL_SIZE)  # a refill + widenings


@dataclass
class Answer:
    session: str
    status: int  # 0: transport error or timeout
    latency: float
    item: str | None  # data.id
    source: str  # data.source ("ai", "cache", "bank"), or "" when not a 200


def _answer(session: str, status: int, latency: float, body: bytes) -> Answer:
    data: dict[str, Any] = {}
    if status == 200:
        try:
            data = json.loads(body).get("data") or {}
        except ValueError:
            pass
    return Answer(session, status, latency, data.get("id"), str(data.get("source", "")))


async def _ask(conn: Conn, host: str, port: int, session: str, n: int
               ) -> tuple[Conn, Answer]:
    """One question for `session` on `conn`; a connection Hypercorn closed after its
    keep_alive_max_requests is reopened and the question asked again on the new one."""
    payload = {"topic": TOPIC, "part": PART, "session_id": session}
    raw = post_bytes(host, port, PATH, payload, f"m-{session}-{n}")
    sent = time.monotonic()
    for attempt in range(2):
        sent = time.monotonic()
        try:
            if attempt:
                conn[1].close()
                conn = await asyncio.open_connection(host, port)
            conn[1].write(raw)
            status, _, body = await asyncio.wait_for(read_response(conn[0]), 30)
            return conn, _answer(session, status, time.monotonic() - sent, body)
        except asyncio.IncompleteReadError:
            continue  # closed: once more on a new connection
        except (TimeoutError, OSError, ValueError):
            break
    conn[1].close()  # a late answer must not be read as the next question's
    return await asyncio.open_connection(host, port), _answer(
        session, 0, time.monotonic() - sent, b"")


def students(url: str, sessions: list[tuple[str, int]], *, connections: int, rate: float,
             seconds: float) -> tuple[float, list[Answer]]:
    """Each of `connections` takes the next session and asks its questions one after
    another, then the next session; at most `rate` requests a second in all (0: no pacing),
    none sent `seconds` after the start. Returns the wall time and every answer."""
    host, port = _host_port(url)
    answers: list[Answer] = []

    async def run() -> float:
        queue, slots = iter(sessions), itertools.count()
        start = time.monotonic()
        deadline = start + seconds

        async def connection() -> None:
            conn = await asyncio.open_connection(host, port)
            try:
                for session, asks in queue:  # shared: each session goes to one connection
                    for n in range(asks):
                        at = start + next(slots) / rate if rate else time.monotonic()
                        if at >= deadline:
                            return
                        await asyncio.sleep(max(0.0, at - time.monotonic()))
                        conn, answer = await _ask(conn, host, port, session, n)
                        answers.append(answer)
            finally:
                conn[1].close()

        await asyncio.gather(*(connection() for _ in range(connections)))
        return time.monotonic() - start

    return asyncio.run(run()), answers


@dataclass(frozen=True)
class ModelCall:
    """One `ai_call` line of the service: when it ended and what started it."""
    at: float  # its timestamp, seconds since the epoch
    request_id: str  # the request that made it or started it in the background
    kind: str  # `refill` or `widen` in the background, `request` when a request waited on it


def _model_calls(lines: list[str]) -> list[ModelCall]:
    """The service's ai_call lines (read once it has stopped: its log is buffered)."""
    calls = []
    for line in lines:
        if '"ai_call"' not in line:
            continue
        try:
            event = json.loads(line)
            at = datetime.datetime.fromisoformat(event["timestamp"]).timestamp()
        except (ValueError, KeyError):
            continue
        if event.get("event") == "ai_call":
            calls.append(ModelCall(at, str(event.get("request_id")),
                                   event.get("background") or "request"))
    return calls


def _periods(calls: list[ModelCall]) -> dict[str, Any]:
    """What started the calls, and, between the first refill and the last, the seconds from
    one refill to the next and the calls per period."""
    out: dict[str, Any] = {"kinds": Counter(c.kind for c in calls),
                           "refills": sum(c.kind == "refill" for c in calls),
                           "period_s": None, "calls_per_period": None}
    refills = [i for i, c in enumerate(calls) if c.kind == "refill"]
    if len(refills) >= 2:
        periods = len(refills) - 1
        out["period_s"] = (calls[refills[-1]].at - calls[refills[0]].at) / periods
        out["calls_per_period"] = (refills[-1] - refills[0]) / periods
    return out


def _summary(answers: list[Answer]) -> dict[str, Any]:
    by_session: dict[str, list[str]] = {}
    for a in answers:
        if a.item is not None:
            by_session.setdefault(a.session, []).append(a.item)
    repeats = [len(items) - len(set(items)) for items in by_session.values()]
    lat = [a.latency for a in answers]
    return {
        "served": sum(a.status == 200 for a in answers), "requests": len(answers),
        "non_200": sum(a.status != 200 for a in answers),
        "statuses": Counter(str(a.status) for a in answers if a.status != 200),
        "sources": Counter(a.source for a in answers if a.status == 200),
        "distinct": len({a.item for a in answers if a.item is not None}),
        "sessions": len({a.session for a in answers}),
        "max_repeats": max(repeats, default=0), "repeats": sum(repeats),
        "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat, default=0.0) * 1000,
    }


def _settle(b: Bench) -> int:
    """The fake's call count once a call started in the background has had time to land."""
    time.sleep(MODEL_SECONDS + 0.5)  # a widening started by the last answer, if any
    return len(b.fake.calls())


def popular_topic(b: Bench) -> dict[str, Any]:
    svc: Process = b.service(
        POOL_SIZE=str(POOL_SIZE), POOL_MAX_ITEMS=str(POOL_MAX_ITEMS),
        VARIETY_SERVES_PER_ITEM=str(SERVES_PER_ITEM), POOL_SOFT_TTL_SECONDS=str(SOFT_TTL_S),
        REFILL_TIMEOUT_SECONDS=str(REFILL_TIMEOUT_S),
        # All of the bench's students come from one address: no per-client quota.
        GENERATIONS_PER_CLIENT_PER_HOUR="0", AI_CALLS_PER_DAY="1000000")
    rng = random.Random(SEED)
    try:
        b.warm(svc)
        b.model(slow(MODEL_SECONDS))
        # 1. The first class: the pool grows while it is handed out.
        class_s, first = students(svc.url, [(f"class-{n}", 1) for n in range(CLASS)],
                                  connections=1, rate=0, seconds=120)
        class_calls = _settle(b)
        # 2. Steady state: many sessions, paced, for a fixed wall time.
        sessions = [(f"s{n}", rng.randint(1, MAX_ASKS)) for n in range(SESSIONS)]
        before = len(b.fake.calls())
        window_s, steady = students(svc.url, sessions, connections=CONCURRENCY, rate=RATE,
                                    seconds=WINDOW_S)
        window_calls = len(b.fake.calls()) - before
    finally:
        svc.stop()
    logged = _model_calls(svc.log_lines())
    s = _summary(steady)
    rate = s["served"] / window_s
    return {
        "class": {**_summary(first), "calls": class_calls, "wall_s": class_s,
                  "kinds": Counter(c.kind for c in logged if c.request_id.startswith("m-class-"))},
        "steady": {**s, "calls": window_calls, "window_s": window_s, "rate": rate,
                   "calls_per_served": window_calls / max(s["served"], 1),
                   **_periods([c for c in logged if c.request_id.startswith("m-s")])},
        "derived": {"calls_per_period": CALLS_PER_PERIOD,
                    "served_per_period": rate * DEFAULT_SOFT_TTL_S,
                    "calls_per_served": CALLS_PER_PERIOD / (rate * DEFAULT_SOFT_TTL_S)
                    if rate else None},
        "unhandled": unhandled(svc),
    }
