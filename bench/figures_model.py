"""Figures on the model path: (d) a 429 storm and (e) the latency the service adds."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from bench.client import percentile
from bench.figures import REPS, Bench, measured_storm, sources, unhandled
from tests.support.fake_model import ok, slow, status

MAX_ATTEMPTS = 4  # the service's AI_MAX_ATTEMPTS default, set explicitly below


# ------------------------------------------------------------------ (d) 429 storm
def rate_limit_storm(b: Bench, n: int = 200, every: int = 4) -> dict[str, Any]:
    """The model answers 429 (retry-after-ms: 50) except every `every`-th call."""
    svc = b.service(AI_MAX_ATTEMPTS=str(MAX_ATTEMPTS))
    try:
        b.warm(svc)
        throttled = status(429, headers={"retry-after-ms": "50"})
        b.model(throttled)
        b.fake.enqueue(*([throttled] * (every - 1) + [ok()]) * n)
        reqs = [(f"d-{i}", {"topic": f"hobby number {i} {b.nonce}d", "part": 2})
                for i in range(n)]
        fired, results, cpu = measured_storm(svc, reqs)
        calls = b.fake.calls()
        crashes = unhandled(svc)
    finally:
        svc.stop()
    kinds = sources(results)
    per_request = Counter(c.request_id for c in calls)
    by_answer: Counter[str] = Counter()
    for r in results:
        kind = next(iter(sources([r])))
        by_answer[f"{kind} after {per_request.get(r.request_id, 0)} calls"] += 1
    answered = kinds["ai"]
    unavailable = [r for r in results if r.status == 503]
    return {
        "n": n, "every": every, "sources": kinds, "model_calls": len(calls),
        "successes": answered,
        "calls_per_success": len(calls) / answered if answered else float("inf"),
        "max_calls_per_request": max(per_request.values(), default=0),
        "attempts_histogram": Counter(per_request.values()), "by_answer": by_answer,
        "calls_without_request_id": per_request.get(None, 0),
        "unavailable": len(unavailable),
        "unavailable_with_retry_after": sum("retry-after" in r.headers for r in unavailable),
        "errors": sum(500 <= r.status < 600 and r.status != 503 for r in results),
        "transport_errors": kinds["transport_error"],
        "wall_s": max(r.done_at for r in results) - fired,
        "p99_s": percentile([r.latency for r in results], 99),
        "unhandled": crashes, **cpu,
    }


# ------------------------------------------------------------------ (e) added latency
def added_latency(b: Bench, n: int = 100, model_seconds: float = 0.2) -> dict[str, Any]:
    """Client latency minus the model's fixed latency, with where the rest went."""
    svc = b.service()
    reps = []
    try:
        b.warm(svc)
        for rep in range(REPS):
            b.model(slow(model_seconds))
            reqs = [(f"e{rep}-{i}", {"topic": f"hobby number {i} {b.nonce}e{rep}", "part": 2})
                    for i in range(n)]
            fired, results, cpu = measured_storm(svc, reqs)
            arrival = {c.request_id: c.received_at for c in b.fake.calls()}
            added = [r.latency - model_seconds for r in results if r.status == 200]
            before = [arrival[r.request_id] - r.sent_at for r in results
                      if r.request_id in arrival]
            after = [r.done_at - arrival[r.request_id] - model_seconds for r in results
                     if r.request_id in arrival]
            reps.append({**cpu,
                "p50_ms": percentile(added, 50) * 1000, "p99_ms": percentile(added, 99) * 1000,
                "before_p50_ms": percentile(before, 50) * 1000,
                "before_p99_ms": percentile(before, 99) * 1000,
                "after_p50_ms": percentile(after, 50) * 1000,
                "after_p99_ms": percentile(after, 99) * 1000,
                "non_200": sum(r.status != 200 for r in results),
                "model_calls": len(arrival), "sources": sources(results),
            })
        alone = []  # the same path with no queue in front of it: one request at a time
        for i in range(20):
            b.model(slow(model_seconds))
            _, (one,), _ = measured_storm(
                svc, [(f"alone-{i}", {"topic": f"hobby number {i} {b.nonce}alone", "part": 2})])
            if one.status == 200:
                alone.append(one.latency - model_seconds)
        crashes = unhandled(svc)
    finally:
        svc.stop()
    med = statistics.median
    return {"alone_p50_ms": percentile(alone, 50) * 1000, "alone_max_ms": max(alone) * 1000,
            "alone_n": len(alone), "reps": reps, "n": n, "model_seconds": model_seconds,
            "p50_ms": med(r["p50_ms"] for r in reps), "p99_ms": med(r["p99_ms"] for r in reps),
            "unhandled": crashes, **{k: med(r[k] for r in reps) for k in (
                "before_p50_ms", "before_p99_ms", "after_p50_ms", "after_p99_ms",
                "cpu_ms_per_request", "busiest_share")}}
