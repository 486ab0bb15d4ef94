"""Figure (l): what tracing costs. The same service with tracing off and with every request
traced and exported over OTLP/HTTP to a local receiver, side by side in one run."""

from __future__ import annotations

import multiprocessing
import statistics
from multiprocessing.connection import Connection
from typing import Any

from bench import wrk
from bench.client import percentile
from bench.figures import PAYLOAD, REPS, Bench, measured_storm, unhandled
from bench.servers import CpuMeter, Process, busiest_share
from tests.support.fake_model import ok

Row = tuple[str, str, str, "bool | None"]
STORM = 100  # cold requests fired at once per repetition
ALONE = 20  # cold requests one at a time per repetition


def _sink(conn: Connection) -> None:
    from tests.support.otlp import OtlpReceiver

    receiver = OtlpReceiver(keep=False).start()
    conn.send(receiver.url)
    while conn.recv() != "stop":
        conn.send(receiver.received)
    receiver.stop()
    conn.send(None)


class SpanSink:
    """tests/support/otlp.py's receiver, counting spans, in a process of its own (like the
    fake model: decoding in the bench's process would compete with the load client)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_sink, args=(child,), name="bench-otlp", daemon=True)
        self.url = ""

    def start(self) -> SpanSink:
        self._process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the OTLP receiver did not start within 30 s")
        self.url = self._conn.recv()
        return self

    def received(self) -> int:
        self._conn.send("count")
        return int(self._conn.recv())

    def stop(self) -> None:
        if self._process.is_alive():
            self._conn.send("stop")
            self._conn.poll(10)
            self._process.join(5)
        if self._process.is_alive():
            self._process.kill()


def _cached(svc: Process, seconds: float) -> dict[str, Any]:
    meter = CpuMeter(svc)
    meter.start()
    result = wrk.load(svc.url, PAYLOAD, seconds)
    cpu, workers = meter.stop()
    return {**result, "cpu_ms_per_request": cpu * 1000 / max(result["requests"], 1),
            "busiest_share": busiest_share(workers)}


def _misses(svc: Process, tag: str) -> dict[str, Any]:
    reqs = [(f"{tag}-{i}", {"topic": f"hobby number {i} {tag}", "part": 2}) for i in range(STORM)]
    _, results, cpu = measured_storm(svc, reqs)
    alone = [measured_storm(svc, [(f"{tag}-a{i}", {"topic": f"pastime {i} {tag}", "part": 2})])
             [1][0] for i in range(ALONE)]
    return {**cpu, "p50_ms": percentile([r.latency for r in results], 50) * 1000,
            "p99_ms": percentile([r.latency for r in results], 99) * 1000,
            "alone_p50_ms": percentile([r.latency for r in alone], 50) * 1000,
            "non_200": sum(r.status != 200 for r in [*results, *alone])}


def tracing_overhead(b: Bench) -> dict[str, Any]:
    sink = SpanSink().start()
    # Every miss comes from this one address: no per-client quota, no daily ceiling here.
    limits = {"GENERATIONS_PER_CLIENT_PER_HOUR": "0", "AI_CALLS_PER_DAY": "1000000"}
    off = b.service(**limits)
    on = b.service(**limits, OTEL_EXPORTER_OTLP_ENDPOINT=sink.url, OTEL_SERVICE_NAME="ielts-bench")
    services = {"off": off, "on": on}
    cached: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    misses: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    try:
        b.model(ok())
        for svc in services.values():
            b.warm(svc)
            b.model(ok())
            wrk.load(svc.url, PAYLOAD, b.warm_seconds)  # fills the pool, warms the hit path
        spans_before = sink.received()
        for _ in range(REPS):  # interleaved, so drift hits both alike
            for mode, svc in services.items():
                cached[mode].append(_cached(svc, b.load_seconds))
        spans_cached = sink.received() - spans_before
        for rep in range(REPS):
            for mode, svc in services.items():
                misses[mode].append(_misses(svc, f"{b.nonce}g{mode}{rep}"))
        crashes = {mode: unhandled(svc) for mode, svc in services.items()}
    finally:
        for svc in services.values():
            svc.stop()  # the traced one exports what it still holds as it stops
        spans_total = sink.received()
        sink.stop()
    full_queue = sum("Queue is full" in line or "dropped" in line.lower()
                     for line in on.log_lines() if "span" in line.lower())
    med = statistics.median

    def summary(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, float]:
        return {k: med(r[k] for r in rows) for k in keys}

    hit_keys = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "busiest_share")
    miss_keys = ("cpu_ms_per_request", "p50_ms", "p99_ms", "alone_p50_ms")
    traced_requests = sum(r["requests"] for r in cached["on"])
    return {
        "cached": cached, "misses": misses, "unhandled": crashes,
        "hit": {m: summary(cached[m], hit_keys) for m in services},
        "miss": {m: summary(misses[m], miss_keys) for m in services},
        "spans_cached": spans_cached, "spans_total": spans_total,
        "spans_per_hit": spans_cached / traced_requests if traced_requests else 0.0,
        "non_2xx": sum(r["non_2xx"] + r["socket_errors"] for m in services for r in cached[m])
        + sum(r["non_200"] for m in services for r in misses[m]),
        "queue_full_lines": full_queue,
    }


def section_l(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(l) tracing overhead: every request traced and exported vs tracing off"
    if "failed" in r:
        return [(name, f"not measured: {r['failed']}", "-", False)], [
            f"## {name}", "", f"Not measured: `{r['failed']}`", ""]
    hit, miss = r["hit"], r["miss"]
    rows: list[Row] = [
        ("(l) cached path with tracing: throughput on / off",
         f"{hit['on']['rps'] / hit['off']['rps']:.2f} ({hit['on']['rps']:.0f} / "
         f"{hit['off']['rps']:.0f} req/s); CPU per request {hit['on']['cpu_ms_per_request']:.2f}"
         f" / {hit['off']['cpu_ms_per_request']:.2f} ms", "none set (informational)", None),
        ("(l) a miss with tracing: CPU per request on / off; one at a time p50",
         f"{miss['on']['cpu_ms_per_request']:.2f} / {miss['off']['cpu_ms_per_request']:.2f} ms; "
         f"{miss['on']['alone_p50_ms']:.2f} / {miss['off']['alone_p50_ms']:.2f} ms",
         "none set (informational)", None),
    ]
    lines = []
    for kind, data in (("cached (wrk)", r["cached"]), (f"miss ({STORM} at once)", r["misses"])):
        for mode in ("off", "on"):
            for i, x in enumerate(data[mode]):
                rps = f"{x['rps']:.0f}" if "rps" in x else "-"
                lines.append(f"| {kind} | {mode} | {i + 1} | {rps} | {x['p50_ms']:.2f} | "
                             f"{x['p99_ms']:.2f} | {x['cpu_ms_per_request']:.2f} | "
                             f"{x['busiest_share']:.2f} |")
    text = [
        f"## {name}", "",
        "Two instances of the service side by side, each with 2 workers, Redis and the fake "
        "model (answering at once): one with tracing off (the OpenTelemetry SDK not imported), "
        "one with OTEL_EXPORTER_OTLP_ENDPOINT set to a local OTLP/HTTP receiver in its own "
        "process (the default sampler: every request traced, spans exported in batches from "
        f"each worker's background thread). Runs interleaved, {REPS} of each; medians. "
        "GENERATIONS_PER_CLIENT_PER_HOUR=0 (every request comes from one address). Cached: "
        "wrk on the body of (a). Miss (streamed, AI_STREAM's default): "
        f"{STORM} distinct cold topics fired at once, then {ALONE} one at a time.", "",
        f"- spans received during the cached runs: {r['spans_cached']} "
        f"({r['spans_per_hit']:.2f} per traced request: the server span and its Redis calls); "
        f"in the whole figure: {r['spans_total']}",
        f"- log lines about a full span queue (spans dropped): {r['queue_full_lines']}; "
        f"non-2xx or socket errors: {r['non_2xx']}; unhandled_exception lines: "
        f"{r['unhandled']}", "",
        "| path | tracing | run | req/s | p50 ms | p99 ms | CPU ms/req | busiest worker share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |", *lines, ""]
    return rows, text
