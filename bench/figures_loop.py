"""Figure (f): how long a worker's event loop goes without running during a burst."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import httpx

from bench.client import percentile
from bench.figures import PATH, RATE_LIMIT, REPS, Bench, measured_storm, sources, unhandled
from bench.servers import azure_env, start_watched_service
from tests.support.fake_model import ok, slow

PARTS = (1, 2, 3)


def _worker_files(lag_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(lag_dir.glob("*.json"))]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _gc_within(worker: dict[str, Any], start: float, end: float) -> float:
    """Seconds the garbage collector ran inside [start, end]."""
    return sum(_overlap(g0, g1, start, end) for g0, g1, _, _ in worker["gc"])


def _window(workers: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """What the lag monitors of all workers saw between `start` and `end`."""
    ticks = []  # (lag, tick start, wake, CPU, worker)
    for w in workers:
        for woke, lag, cpu in zip(w["woke"], w["lag"], w["cpu"], strict=True):
            if start <= woke <= end:
                ticks.append((lag, woke - lag - w["tick"], woke, cpu, w))
    if not ticks:
        raise RuntimeError("the lag monitors recorded nothing during the burst")
    lag, t0, t1, cpu, worker = max(ticks, key=lambda t: t[0])
    # The callback that held the loop longest by its own CPU time; a callback long in wall
    # time but not in CPU time was waiting for a core (other processes), not blocking.
    steps = [(s, w) for w in workers for s in w["steps"] if start <= s[0] <= end]
    (s0, s_wall, s_cpu, s_what), s_worker = max(
        steps, key=lambda sw: sw[0][2], default=((0.0, 0.0, 0.0, "-"), workers[0]))
    gen2 = [(g1 - g0, cpu) for w in workers for g0, g1, cpu, gen in w["gc"]
            if gen == 2 and start <= g0 <= end]
    return {
        "ticks": len(ticks), "max_ms": lag * 1000, "max_cpu_ms": min(cpu, t1 - t0) * 1000,
        "max_gc_ms": _gc_within(worker, t0, t1) * 1000,
        "p50_ms": percentile([t[0] for t in ticks], 50) * 1000,
        "p99_ms": percentile([t[0] for t in ticks], 99) * 1000,
        "step_cpu_ms": s_cpu * 1000, "step_ms": s_wall * 1000, "step_what": s_what,
        "step_gc_ms": _gc_within(s_worker, s0, s0 + s_wall) * 1000,
        "gen2_count": len(gen2), "gen2_max_ms": max((g for g, _ in gen2), default=0.0) * 1000,
        "gen2_max_cpu_ms": max((c for _, c in gen2), default=0.0) * 1000,
    }


def loop_stall(b: Bench, n: int = 200, model_seconds: float = 0.5) -> dict[str, Any]:
    """Bursts of `n` requests at once, half on topics already pooled (cached), half on
    distinct cold topics (one model call each), at a service whose workers run a lag
    monitor (bench/loop_lag.py)."""
    lag_dir = b.log_dir / "loop-lag"
    lag_dir.mkdir(exist_ok=True)
    b.redis.flush()
    env = azure_env(b.fake.url, REDIS_URL=b.redis.url, RATE_LIMIT_PER_MINUTE=RATE_LIMIT,
                    AI_BUDGET_RPM="0")
    svc = start_watched_service(env, b.log_dir, lag_dir)
    bursts = []
    try:
        b.warm(svc)
        b.model(ok())
        cached = [{"topic": f"pooled topic {b.nonce}", "part": part} for part in PARTS]
        for payload in cached:
            httpx.post(svc.url + PATH, json=payload, timeout=30).raise_for_status()
        for rep in range(REPS):
            b.model(slow(model_seconds))
            reqs = [(f"f{rep}-{i}", cached[i % 3] if i % 2 == 0 else
                     {"topic": f"hobby number {i} {b.nonce}f{rep}", "part": PARTS[i % 3]})
                    for i in range(n)]
            fired, results, cpu = measured_storm(svc, reqs)
            bursts.append({**cpu, "fired": fired, "done": max(r.done_at for r in results),
                           "non_200": sum(r.status != 200 for r in results),
                           "sources": sources(results)})
        crashes = unhandled(svc)
    finally:
        svc.stop()
    workers = _worker_files(lag_dir)
    if len(workers) < 2:
        raise RuntimeError(f"{len(workers)} worker(s) wrote lag samples to {lag_dir} (want 2)")
    reps = [{**x, **_window(workers, x["fired"], x["done"]),
             "wall_s": x["done"] - x["fired"]} for x in bursts]
    med = statistics.median
    return {"reps": reps, "n": n, "model_seconds": model_seconds, "unhandled": crashes,
            "tick_ms": workers[0]["tick"] * 1000,
            "max_ms": med(r["max_ms"] for r in reps), "worst_ms": max(r["max_ms"] for r in reps),
            "p99_ms": med(r["p99_ms"] for r in reps),
            "step_cpu_ms": med(r["step_cpu_ms"] for r in reps),
            "worst_step_cpu_ms": max(r["step_cpu_ms"] for r in reps)}
