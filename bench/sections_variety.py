"""Summary rows and section of figure (m) (see bench/figures_variety.py)."""

from __future__ import annotations

from typing import Any

from bench.figures_variety import (
    CALLS_PER_PERIOD,
    CLASS,
    CONCURRENCY,
    DEFAULT_SOFT_TTL_S,
    MAX_ASKS,
    MODEL_SECONDS,
    POOL_MAX_ITEMS,
    POOL_SIZE,
    RATE,
    REFILL_TIMEOUT_S,
    SERVES_PER_ITEM,
    SOFT_TTL_S,
    TOPIC,
)
from bench.report import fmt_counter
from bench.sections import Row, _context, _failed


def section_m(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(m) model calls per served item, one popular topic, steady state"
    if "failed" in r:
        return _failed(name, r)
    c, s, d = r["class"], r["steady"], r["derived"]
    ttls = s["window_s"] / SOFT_TTL_S
    covered = (f", which made {s['window_s'] / s['period_s']:.1f} periods from refill to "
               "refill" if s["period_s"] else "")
    errors = c["non_200"] + s["non_200"]
    rows: list[Row] = [
        (f"(m) a class of {CLASS} on one Part 2 topic, one after another: distinct cards / "
         "model calls", f"{c['distinct']} / {c['calls']}",
         f"≥ 25 for ≤ {CALLS_PER_PERIOD}", c["distinct"] >= 25 and c["calls"] <= CALLS_PER_PERIOD),
        (f"(m) steady state, soft TTL {SOFT_TTL_S} s: model calls per served item",
         f"{s['calls_per_served']:.4f} ({s['calls']} calls / {s['served']} served in "
         f"{s['window_s']:.0f} s, {s['refills']} refills)", "none set (informational)", None),
        ("(m) repeats within a session / non-200 answers",
         f"{s['max_repeats']} (most in one session) / {errors}", "0 / 0",
         s["max_repeats"] == 0 and errors == 0),
        (f"(m) derived, not measured: calls per served item at the default soft TTL "
         f"({DEFAULT_SOFT_TTL_S // 3600} h), at the measured {s['rate']:.0f} req/s",
         f"{d['calls_per_served']:.1e} ({CALLS_PER_PERIOD} calls per "
         f"{d['served_per_period']:,.0f} served)", "none set (derived)", None),
    ]
    cycle = (f"one every {s['period_s']:.1f} s, {s['calls_per_period']:.1f} model calls "
             "from one refill to the next" if s["period_s"] is not None
             else "too few to time a period")
    text = [
        f"## {name}", "",
        f"One Part 2 topic (`{TOPIC}`), a service with 2 workers and Redis, the fake model "
        f"answering every call after {MODEL_SECONDS:g} s (streamed), POOL_SIZE={POOL_SIZE}, "
        f"POOL_MAX_ITEMS={POOL_MAX_ITEMS}, VARIETY_SERVES_PER_ITEM={SERVES_PER_ITEM}, "
        "GENERATIONS_PER_CLIENT_PER_HOUR=0 and AI_CALLS_PER_DAY=1000000 (every student "
        "here comes from the bench's one address). Every request carries a `session_id`. "
        "Model calls are the fake model's received requests, counted before and after; what "
        "started each is from the service's `ai_call` lines (`refill` or `widen` in the "
        "background, `request`: a cold pool's first call or a widening requests waited for).",
        "",
        f"**The first class.** {CLASS} sessions ask once each, one after another, on the "
        f"topic nobody asked yet: {c['served']} answered, {c['distinct']} distinct cards, "
        f"{c['calls']} model calls (counted {MODEL_SECONDS + 0.5:g} s after the last answer, "
        f"so that a widening it started is in; {fmt_counter(c['kinds'])}); answers "
        f"{fmt_counter(c['sources'])}; latency p50 {c['p50_ms']:.1f} ms, max "
        f"{c['max_ms']:.0f} ms (a student who waited for a widening); {c['wall_s']:.1f} s in "
        "all.", "",
        f"**Steady state.** Then sessions (1 to {MAX_ASKS} questions each, one after another) "
        f"over {CONCURRENCY} keep-alive connections, paced to {RATE:g} requests a second, for "
        f"{s['window_s']:.1f} s, with POOL_SOFT_TTL_SECONDS={SOFT_TTL_S}: the window covers "
        f"{ttls:.1f} soft-TTL periods of {SOFT_TTL_S} s{covered}. A pool past its soft TTL is "
        "served while one background call replaces it with new items; the pool then grows "
        f"back to {POOL_MAX_ITEMS} by widenings. Each widening stores the pool anew and so "
        "restarts its soft TTL: a refill comes a soft TTL after the last widening. The window "
        f"saw {s['refills']} refills ({cycle}). REFILL_TIMEOUT_SECONDS={REFILL_TIMEOUT_S} "
        "(default 60): it is also how long a widening from one pool size is remembered as "
        "done, so it must be shorter than the soft TTL for a refilled pool to grow again "
        "(with the default soft TTL of 6 h it is).", "",
        f"- requests {s['requests']} from {s['sessions']} sessions; served (200) "
        f"{s['served']} at {s['rate']:.1f} req/s; non-200 {s['non_200']}"
        + (f" ({fmt_counter(s['statuses'])})" if s["statuses"] else ""),
        f"- model calls in the window: {s['calls']} ({fmt_counter(s['kinds'])}); **calls per "
        f"served item {s['calls_per_served']:.4f}**",
        f"- distinct items served: {s['distinct']}; answers {fmt_counter(s['sources'])}",
        f"- repeats within a session: {s['repeats']} in all, at most {s['max_repeats']} in "
        f"one session; latency p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, max "
        f"{s['max_ms']:.0f} ms (the slowest: requests that waited for a widening, answered "
        "`ai`)", "",
        f"**Derived, not measured: the default soft TTL ({DEFAULT_SOFT_TTL_S // 3600} h).** A "
        f"popular topic's pool costs about {CALLS_PER_PERIOD} calls per soft-TTL period (one "
        f"refill, {CALLS_PER_PERIOD - 1} widenings from {POOL_SIZE} to {POOL_MAX_ITEMS} "
        f"items). At the measured {s['rate']:.1f} served a second, {DEFAULT_SOFT_TTL_S // 3600}"
        f" h serve {d['served_per_period']:,.0f} items: {CALLS_PER_PERIOD} / "
        f"{d['served_per_period']:,.0f} = **{d['calls_per_served']:.1e} calls per served "
        f"item** (at r served a second: {CALLS_PER_PERIOD} / (r × {DEFAULT_SOFT_TTL_S})). "
        f"That is at most {CALLS_PER_PERIOD * 24 // (DEFAULT_SOFT_TTL_S // 3600)} calls a "
        "day per topic and part however many students are served: the cost per served item "
        "falls as the topic gets more popular. It assumes the window's pattern holds at 6 h "
        "(each period one refill and widenings back to the maximum), and the soft TTL "
        "restarted by the last widening adds only seconds to a 6 h period.", "",
        f"unhandled_exception lines: {r['unhandled']}.", "", _context(r), ""]
    return rows, text
