"""The five figures. Each starts its own service instance so that none inherits another's
memory, pools or connections, and stops it before returning."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import wrk
from bench.client import Result, percentile, storm
from bench.fakehost import FakeModelProcess
from bench.servers import (
    CpuMeter,
    Process,
    azure_env,
    busiest_share,
    peak_memory,
    start_bare,
    start_service,
)
from tests.support.fake_model import ok, slow
from tests.support.redis_server import RedisServer

REPS = 3
RATE_LIMIT = "100000"  # the most Settings accepts (le=100000): the limiter runs, never rejects
PAYLOAD = {"topic": "travel", "part": 2}
PATH = "/generate-question"


@dataclass
class Bench:
    redis: RedisServer
    fake: FakeModelProcess
    log_dir: Path
    nonce: str
    load_seconds: float = 6.0
    warm_seconds: float = 3.0

    def service(self, **extra: str) -> Process:
        self.redis.flush()
        env = azure_env(self.fake.url, REDIS_URL=self.redis.url, RATE_LIMIT_PER_MINUTE=RATE_LIMIT,
                        AI_BUDGET_RPM="0", **extra)
        return start_service(env, self.log_dir)

    def model(self, reply: Any) -> None:
        self.fake.reset()
        self.fake.set_default(reply)

    def warm(self, svc: Process, waves: int = 10, size: int = 10) -> None:
        """Cold requests with a fast model, not measured: each worker's first model calls
        pay one-time costs (lazy imports, the SDK's connection pool) that a running
        service has long paid. Waves of new connections until both workers have worked
        (a wave lands on whichever worker accepts first)."""
        self.model(ok())
        meter = CpuMeter(svc)
        meter.start()
        for wave in range(waves):
            storm(svc.url, PATH, [(f"warm-{wave}-{i}", {"topic": f"warm up {wave} {i} "
                                   f"{self.nonce}", "part": 2}) for i in range(size)])
            if min(meter.stop()[1], default=0) >= 0.05:  # 50 ms: about ten cold requests
                break
        self.fake.reset()


def measured_storm(svc: Process, reqs: list[tuple[str, dict[str, Any]]]
                   ) -> tuple[float, list[Result], dict[str, float]]:
    """`storm` plus the service's CPU per request and how evenly its workers shared it."""
    meter = CpuMeter(svc)
    meter.start()
    fired, results = storm(svc.url, PATH, reqs)
    cpu, workers = meter.stop()
    return fired, results, {"cpu_ms_per_request": cpu * 1000 / len(reqs),
                            "busiest_share": busiest_share(workers)}


def unhandled(proc: Process) -> str:
    """How many `unhandled_exception` lines (500s) the service logged, and the first one."""
    lines = [line for line in proc.log_lines() if '"unhandled_exception"' in line]
    if not lines:
        return "0"
    try:
        first = json.loads(lines[0])
        detail = str(first.get("exception", "")).strip().splitlines()[-1:] or [""]
        what = f"{first.get('error_type', '?')}: {detail[0][:200]}"
    except ValueError:
        what = lines[0][:200]
    return f"{len(lines)} (first: `{what}`; log {proc.log_path})"


def sources(results: list[Result]) -> Counter[str]:
    """How each request was answered: ai, cache, bank, bank-degraded, 503, 5xx, other, error."""
    kinds: Counter[str] = Counter()
    for r in results:
        if r.status == 200:
            data = (r.json() or {}).get("data", {})
            kinds[data.get("source", "?") + ("-degraded" if data.get("degraded") else "")] += 1
        elif r.status == 0:
            kinds["transport_error"] += 1
        elif r.status == 503:
            kinds["503"] += 1
        elif r.status >= 500:
            kinds[str(r.status)] += 1
        else:
            kinds[f"http_{r.status}"] += 1
    return kinds


# ------------------------------------------------------------------ (a) cached throughput
def throughput(b: Bench) -> dict[str, Any]:
    b.model(ok())
    svc = b.service()
    bare = start_bare(b.log_dir)
    try:
        first = httpx.post(svc.url + PATH, json=PAYLOAD, timeout=30)
        fill_source = first.json().get("data", {}).get("source")
        fill_calls = len(b.fake.calls())
        second = httpx.post(svc.url + PATH, json=PAYLOAD, timeout=30)
        limiter = second.headers.get("ratelimit-limit")
        for proc in (svc, bare):
            wrk.load(proc.url, PAYLOAD, b.warm_seconds)
        runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        meters = CpuMeter(svc), CpuMeter(bare)
        for _ in range(REPS):  # interleaved, so drift hits both alike
            pair = []
            for proc, meter in zip((svc, bare), meters, strict=True):
                meter.start()
                result = wrk.load(proc.url, PAYLOAD, b.load_seconds)
                cpu, workers = meter.stop()
                result["cpu_ms_per_request"] = cpu * 1000 / max(result["requests"], 1)
                result["busiest_share"] = busiest_share(workers)
                pair.append(result)
            runs.append((pair[0], pair[1]))
        hit = httpx.post(svc.url + PATH, json=PAYLOAD, timeout=30).json()["data"]["source"]
        calls_after = len(b.fake.calls())
        crashes = unhandled(svc)
    finally:
        svc.stop()
        bare.stop()
    med = statistics.median
    svc_rps, bare_rps = med(s["rps"] for s, _ in runs), med(x["rps"] for _, x in runs)
    return {
        "runs": runs, "service_rps": svc_rps, "bare_rps": bare_rps, "ratio": svc_rps / bare_rps,
        "service_p50_ms": med(s["p50_ms"] for s, _ in runs),
        "service_p99_ms": med(s["p99_ms"] for s, _ in runs),
        "bare_p50_ms": med(x["p50_ms"] for _, x in runs),
        "bare_p99_ms": med(x["p99_ms"] for _, x in runs),
        "service_non_2xx": sum(s["non_2xx"] + s["socket_errors"] for s, _ in runs),
        "bare_non_2xx": sum(x["non_2xx"] + x["socket_errors"] for _, x in runs),
        "fill_source": fill_source, "fill_calls": fill_calls, "calls_after": calls_after,
        "hit_source": hit, "ratelimit_limit": limiter, "unhandled": crashes,
        "service_cpu_ms_per_request": med(s["cpu_ms_per_request"] for s, _ in runs),
        "bare_cpu_ms_per_request": med(x["cpu_ms_per_request"] for _, x in runs),
        "service_busiest_share": med(s["busiest_share"] for s, _ in runs),
        "bare_busiest_share": med(x["busiest_share"] for _, x in runs),
        "tool": wrk.wrk_version() if wrk.wrk_path() else "Python keep-alive client (no wrk)",
    }


# ------------------------------------------------------------------ (b) cold storm
def cold_storm(b: Bench, n: int = 500, model_seconds: float = 1.0) -> dict[str, Any]:
    # The single flight alone: 500 requests on five items would widen the pool (figure m).
    svc = b.service(VARIETY_SERVES_PER_ITEM="0")
    reps = []
    try:
        b.warm(svc)
        for rep in range(REPS):
            b.model(slow(model_seconds))
            topic = f"bench cold topic {b.nonce} r{rep}"
            reqs = [(f"b{rep}-{i}", {"topic": topic, "part": 2}) for i in range(n)]
            fired, results, cpu = measured_storm(svc, reqs)
            ok200 = [r for r in results if r.status == 200]
            reps.append({**cpu,
                "model_calls": len(b.fake.calls()),
                "p99_s": percentile([r.latency for r in results], 99),
                "p50_s": percentile([r.latency for r in results], 50),
                "wall_s": max(r.done_at for r in results) - fired,
                "non_200": len(results) - len(ok200), "sources": sources(results),
            })
        crashes = unhandled(svc)
    finally:
        svc.stop()
    med = statistics.median
    return {"reps": reps, "n": n, "model_seconds": model_seconds,
            "model_calls": med(r["model_calls"] for r in reps),
            "p99_s": med(r["p99_s"] for r in reps),
            "ratio": med(r["p99_s"] for r in reps) / model_seconds, "unhandled": crashes}


# ------------------------------------------------------------------ (c) many students
def many_students(b: Bench, n: int = 1000, model_seconds: float = 1.0) -> dict[str, Any]:
    svc = b.service()
    reps = []
    try:
        idle = peak_memory(svc.process.pid)
        b.warm(svc)
        for rep in range(REPS):
            b.model(slow(model_seconds))
            reqs = [(f"c{rep}-{i}", {"topic": f"hobby number {i} {b.nonce}r{rep}", "part": 2})
                    for i in range(n)]
            fired, results, cpu = measured_storm(svc, reqs)
            lat = [r.latency for r in results]
            reps.append({**cpu,
                "wall_s": max(r.done_at for r in results) - fired,
                "errors": sum(r.status != 200 for r in results),
                "p50_s": percentile(lat, 50), "p99_s": percentile(lat, 99),
                "model_calls": len(b.fake.calls()), "sources": sources(results),
            })
        memory = peak_memory(svc.process.pid)
        crashes = unhandled(svc)
    finally:
        svc.stop()
    return {"reps": reps, "n": n, "model_seconds": model_seconds,
            "wall_s": statistics.median(r["wall_s"] for r in reps),
            "errors": sum(r["errors"] for r in reps),
            "memory": memory, "memory_mb": sum(kb for *_, kb in memory) / 1024,
            "idle_memory": {pid: kb for pid, _, kb in idle},
            "unhandled": crashes}
