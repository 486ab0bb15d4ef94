"""Figures (g)-(k): a cold topic against a streaming model, and the figures LLM gateways
publish side by side (added latency at one connection, the most requests a second held
under a p99 bound, CPU per hit and per miss, memory idle and in steady state)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench import wrk
from bench.client import storm
from bench.figures import PATH, PAYLOAD, REPS, Bench, sources, unhandled
from bench.servers import CpuMeter, Process, descendants, start_bare
from tests.support.fake_model import ok
from tests.support.fake_stream import Paced

# A deployment like gpt-4o: ~0.5 s to the first token, then ~60 tokens (chunks) a second of
# ~4 characters each; five Part 2 cards are ~1,400 characters, so ~6 s for the whole pool.
REALISTIC = Paced(first_token=0.5, per_second=60, chunk_chars=4)
P99_BOUND_MS = 10.0
SWEEP = (1, 2, 4, 8, 16, 32)
MISS_WAVES, MISS_CONCURRENCY = 12, 32


def _ai_call(proc: Process, request_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The `ai_call` line of `request_id`'s model call, once the stream has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.log_lines():
            if '"ai_call"' in line and request_id in line:
                event: dict[str, Any] = json.loads(line)
                if event.get("request_id") == request_id:
                    return event
        time.sleep(0.1)  # polling the log with a deadline
    raise RuntimeError(f"no ai_call line for {request_id} within {timeout:g} s")


# ------------------------------------------------------------------ (g) streamed cold topic
def streamed_cold(b: Bench) -> dict[str, Any]:
    """The first request on a cold topic against a realistically paced streaming model,
    then four more on the same topic; the ratio is its latency to the whole generation."""
    svc = b.service()  # AI_STREAM's default: true
    reps = []
    try:
        b.warm(svc)
        for rep in range(REPS):
            b.model(ok(pace=REALISTIC))
            topic = {"topic": f"a streamed cold topic {b.nonce} r{rep}", "part": 2}
            _, (first,) = storm(svc.url, PATH, [(f"g{rep}-first", topic)])
            generation = _ai_call(svc, f"g{rep}-first")
            _, rest = storm(svc.url, PATH, [(f"g{rep}-{i}", topic) for i in range(4)])
            reps.append({
                "first_s": first.latency, "first_source": sources([first]),
                "generation_s": generation["latency_ms"] / 1000,
                "first_item_s": (generation.get("first_item_ms") or 0) / 1000,
                "ratio": first.latency / (generation["latency_ms"] / 1000),
                "rest": sources(rest), "model_calls": len(b.fake.calls()),
                "tokens": generation.get("completion_tokens"),
            })
        crashes = unhandled(svc)
    finally:
        svc.stop()
    med = statistics.median
    return {"reps": reps, "pace": REALISTIC, "unhandled": crashes,
            "ratio": med(r["ratio"] for r in reps), "first_s": med(r["first_s"] for r in reps),
            "generation_s": med(r["generation_s"] for r in reps),
            "model_calls": max(r["model_calls"] for r in reps)}


# ------------------------------------------------------------------ (h) one connection
def one_connection(b: Bench) -> dict[str, Any]:
    """Cached path at 1 keep-alive connection: service minus bare Quart, p50 and p99."""
    svc, bare = _pair(b)
    try:
        runs = []
        for _ in range(REPS):
            runs.append(tuple(wrk.load(p.url, PAYLOAD, b.load_seconds / 2, connections=1)
                              for p in (svc, bare)))
    finally:
        svc.stop()
        bare.stop()
    med = statistics.median
    out = {f"{who}_{q}": med(r[i][f"{q}_ms"] for r in runs)
           for i, who in enumerate(("service", "bare")) for q in ("p50", "p99")}
    return {**out, "runs": runs, "added_p50_ms": out["service_p50"] - out["bare_p50"],
            "added_p99_ms": out["service_p99"] - out["bare_p99"]}


# ------------------------------------------------------------------ (i) p99-bounded rate
def bounded_rate(b: Bench) -> dict[str, Any]:
    """Cached path, 1 to 32 connections: the most req/s whose p99 stayed under the bound."""
    svc, bare = _pair(b)
    sweep: dict[str, list[dict[str, Any]]] = {"service": [], "bare": []}
    try:
        for conns in SWEEP:
            for who, proc in (("service", svc), ("bare", bare)):
                r = wrk.load(proc.url, PAYLOAD, b.load_seconds / 2, connections=conns)
                sweep[who].append({**r, "connections": conns})
    finally:
        svc.stop()
        bare.stop()

    def best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        held = [r for r in rows if r["p99_ms"] < P99_BOUND_MS and not r["non_2xx"]]
        return max(held, key=lambda r: r["rps"]) if held else None

    return {"sweep": sweep, "service_best": best(sweep["service"]),
            "bare_best": best(sweep["bare"]), "bound_ms": P99_BOUND_MS}


# ------------------------------------------------------------------ (j) CPU per hit, miss
def cpu_per_request(b: Bench) -> dict[str, Any]:
    """Service CPU (master and workers, /proc) per cached hit under wrk, and per miss with
    32 cold requests at a time on a model that answers at once, streamed and whole."""
    out: dict[str, Any] = {}
    for label, extra in (("streamed", {}), ("whole", {"AI_STREAM": "false"})):
        b.model(ok())
        svc = b.service(**extra)
        try:
            b.warm(svc)
            if label == "streamed":
                httpx.post(svc.url + PATH, json=PAYLOAD, timeout=30).raise_for_status()
                hits = []
                for _ in range(REPS):
                    meter = CpuMeter(svc)
                    meter.start()
                    r = wrk.load(svc.url, PAYLOAD, b.load_seconds / 2)
                    hits.append(meter.stop()[0] * 1e6 / max(r["requests"], 1))
                out["hit_us"], out["hit_runs_us"] = statistics.median(hits), hits
            b.model(ok())
            meter = CpuMeter(svc)
            meter.start()
            answered = []
            for wave in range(MISS_WAVES):
                reqs = [(f"j{label}{wave}-{i}", {"topic": f"miss {wave} {i} {b.nonce}{label}",
                                                 "part": 2}) for i in range(MISS_CONCURRENCY)]
                answered += storm(svc.url, PATH, reqs)[1]
            out[f"miss_{label}_us"] = meter.stop()[0] * 1e6 / len(answered)
            out[f"miss_{label}_sources"] = sources(answered)
            out[f"miss_{label}_calls"] = len(b.fake.calls())
        finally:
            svc.stop()
    return out


# ------------------------------------------------------------------ (k) memory
def memory(b: Bench) -> dict[str, Any]:
    """Resident memory (VmRSS, master and workers) once up and idle, then after a minute's
    worth of mixed work: cached load, and 12 waves of 32 misses."""
    b.model(ok())
    svc = b.service()
    try:
        idle = _rss_mb(svc)
        httpx.post(svc.url + PATH, json=PAYLOAD, timeout=30).raise_for_status()
        for wave in range(MISS_WAVES):
            storm(svc.url, PATH, [(f"k{wave}-{i}", {"topic": f"memory {wave} {i} {b.nonce}",
                                                    "part": 2}) for i in range(MISS_CONCURRENCY)])
            wrk.load(svc.url, PAYLOAD, 1)
        steady = _rss_mb(svc)
    finally:
        svc.stop()
    return {"idle_mb": idle, "steady_mb": steady}


def _rss_mb(proc: Process) -> float:
    total = 0
    for pid in [proc.process.pid, *descendants(proc.process.pid)]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # gone since it was listed
            continue
        total += next((int(line.split()[1]) for line in status.splitlines()
                       if line.startswith("VmRSS:")), 0)
    return total / 1024


def _pair(b: Bench) -> tuple[Process, Process]:
    """A service with the cached pool filled, and the bare app, both warmed up."""
    b.model(ok())
    svc = b.service()
    httpx.post(svc.url + PATH, json=PAYLOAD, timeout=30).raise_for_status()
    bare = start_bare(b.log_dir)
    for proc in (svc, bare):
        wrk.load(proc.url, PAYLOAD, b.warm_seconds)
    return svc, bare
