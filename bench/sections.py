"""Turn the figures' results into summary rows (measured, target, PASS/MISS) and sections."""

from __future__ import annotations

from typing import Any

from bench.figures import RATE_LIMIT, REPS
from bench.figures_model import MAX_ATTEMPTS
from bench.figures_tracing import section_l
from bench.report import fmt_counter
from bench.wrk import CONNECTIONS, THREADS

Row = tuple[str, str, str, "bool | None"]


def _context(r: dict[str, Any]) -> str:
    return (f"Took {r['seconds']:.1f} s, after waiting {r['waited_s']:.0f} s for the machine "
            f"to quiet down (other processes at {r['share_at_start']:.0%} of the 2 cores when "
            f"it started). Other processes on the machine (not this benchmark) used "
            f"{r['foreign_cpu_s']:.1f} CPU-seconds during the figure, "
            f"{r['foreign_share']:.0%} of the 2 cores.")


def _failed(name: str, r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    return [(name, f"not measured: {r['failed']}", "-", False)], [
        f"## {name}", "", f"Not measured: `{r['failed']}`", ""]


def section_a(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(a) cached POST /generate-question throughput vs bare Quart"
    if "failed" in r:
        return _failed(name, r)
    rows: list[Row] = [
        ("(a) throughput ratio service / bare Quart", f"{r['ratio']:.3f} "
         f"({r['service_rps']:.0f} / {r['bare_rps']:.0f} req/s)", "≥ 0.5",
         r["ratio"] >= 0.5),
        ("(a) service latency p50 / p99", f"{r['service_p50_ms']:.2f} ms / "
         f"{r['service_p99_ms']:.2f} ms (bare: {r['bare_p50_ms']:.2f} / "
         f"{r['bare_p99_ms']:.2f} ms)", "none set (informational)", None),
    ]
    runs = "\n".join(
        f"| {i + 1} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['requests']} "
        f"| {s['non_2xx'] + s['socket_errors']} | {s['busiest_share']:.2f} | {x['rps']:.0f} "
        f"| {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['requests']} "
        f"| {x['non_2xx'] + x['socket_errors']} | {x['busiest_share']:.2f} |"
        for i, (s, x) in enumerate(r["runs"]))
    text = [
        f"## {name}", "",
        f"Load: {r['tool']}, {THREADS} thread, {CONNECTIONS} keep-alive connections, "
        f"{REPS} interleaved runs of each server after a warm-up; medians reported. Body "
        '`{"topic": "travel", "part": 2}`. Both servers: Hypercorn with the repo\'s '
        "hypercorn.toml and `--workers 2`. The service runs with everything on: validation, "
        f"rate limits (RATE_LIMIT_PER_MINUTE={RATE_LIMIT}; answers carried "
        f"`RateLimit-Limit: {r['ratelimit_limit']}`), JSON access logs to a file, Prometheus "
        "metrics, Redis pools (REDIS_URL), the fake model for the first fill.", "",
        f"- first request: source `{r['fill_source']}` after {r['fill_calls']} model call(s); "
        f"model calls after all runs: {r['calls_after']} (all later requests were hits; last "
        f"one answered source `{r['hit_source']}`)",
        f"- CPU per request (master + workers, from /proc): service "
        f"{r['service_cpu_ms_per_request']:.2f} ms, bare {r['bare_cpu_ms_per_request']:.2f} ms",
        f"- busiest worker's share of the workers' CPU (0.50 = even): service "
        f"{r['service_busiest_share']:.2f}, bare {r['bare_busiest_share']:.2f}",
        f"- non-2xx or socket errors: service {r['service_non_2xx']}, bare {r['bare_non_2xx']}; "
        f"unhandled_exception lines in the service log: {r['unhandled']}", "",
        "| run | service req/s | p50 ms | p99 ms | requests | non-2xx | busiest worker share "
        "| bare req/s | p50 ms | p99 ms | requests | non-2xx | busiest worker share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", runs, "",
        _context(r), ""]
    return rows, text


def section_b(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(b) cold storm: 500 concurrent requests, one cold topic"
    if "failed" in r:
        return _failed(name, r)
    rows: list[Row] = [
        ("(b) model calls for one cold topic", f"{r['model_calls']:g}", "exactly 1",
         r["model_calls"] == 1),
        ("(b) p99 latency / model latency", f"{r['ratio']:.2f} (p99 {r['p99_s']:.3f} s)",
         "≤ 1.5", r["ratio"] <= 1.5),
    ]
    reps = "\n".join(
        f"| {i + 1} | {x['model_calls']} | {x['p50_s']:.3f} | {x['p99_s']:.3f} | "
        f"{x['wall_s']:.3f} | {x['non_200']} | {fmt_counter(x['sources'])} | "
        f"{x['cpu_ms_per_request']:.2f} | {x['busiest_share']:.2f} |"
        for i, x in enumerate(r["reps"]))
    text = [
        f"## {name}", "",
        f"{r['n']} requests for one cold topic (a new one per repetition), all fired at once "
        f"over {r['n']} connections opened beforehand, at a service with 2 workers and Redis; "
        f"the fake model answers after {r['model_seconds']:g} s, VARIETY_SERVES_PER_ITEM=0 "
        f"(the single flight alone; with variety on, the storm widens the pool: figure (m)). "
        f"Median of {REPS} repetitions. "
        f"unhandled_exception lines: {r['unhandled']}.", "",
        "| rep | model calls | p50 s | p99 s | wall s | non-200 | answers | service CPU ms/req "
        "| busiest worker share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", reps, "", _context(r), ""]
    return rows, text


def section_c(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(c) 1,000 concurrent students on distinct topics"
    if "failed" in r:
        return _failed(name, r)
    rows: list[Row] = [
        ("(c) wall time, 1,000 distinct cold topics, 1 s model", f"{r['wall_s']:.3f} s",
         "≤ 1.5 s", r["wall_s"] <= 1.5),
        ("(c) errors (non-200)", f"{r['errors']} of {r['n'] * len(r['reps'])}", "0",
         r["errors"] == 0),
        ("(c) peak service memory (sum of VmHWM)", f"{r['memory_mb']:.0f} MB", "≤ 300 MB",
         r["memory_mb"] <= 300),
    ]
    reps = "\n".join(
        f"| {i + 1} | {x['wall_s']:.3f} | {x['p50_s']:.3f} | {x['p99_s']:.3f} | {x['errors']} | "
        f"{x['model_calls']} | {fmt_counter(x['sources'])} | {x['cpu_ms_per_request']:.2f} | "
        f"{x['busiest_share']:.2f} |" for i, x in enumerate(r["reps"]))
    mem = "\n".join(f"| {pid} | `{cmd[:90]}` | {r['idle_memory'].get(pid, 0) / 1024:.1f} | "
                    f"{kb / 1024:.1f} |" for pid, cmd, kb in r["memory"])
    text = [
        f"## {name}", "",
        f"{r['n']} requests, each on its own topic (`hobby number i <run id>`), fired at once "
        f"over connections opened beforehand; model latency {r['model_seconds']:g} s, "
        f"AI_BUDGET_RPM=0. Median wall time of {REPS} repetitions; errors summed over them. "
        f"unhandled_exception lines: {r['unhandled']}.", "",
        "| rep | wall s | p50 s | p99 s | non-200 | model calls | answers | service CPU ms/req "
        "| busiest worker share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", reps, "",
        "Peak resident memory (VmHWM) per process of the instance, once it was up and after "
        "the repetitions:", "",
        "| pid | command | VmHWM MB at start | VmHWM MB after |", "| --- | --- | --- | --- |",
        mem, "", _context(r), ""]
    return rows, text


def section_d(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(d) 429 storm"
    if "failed" in r:
        return _failed(name, r)
    errors = r["errors"] + r["transport_errors"]
    rows: list[Row] = [
        ("(d) client-visible errors (5xx other than 503, transport)", str(errors), "0",
         errors == 0),
        ("(d) model calls per request", f"max {r['max_calls_per_request']}",
         f"≤ AI_MAX_ATTEMPTS ({MAX_ATTEMPTS})", r["max_calls_per_request"] <= MAX_ATTEMPTS),
        ("(d) model calls per successful answer", f"{r['calls_per_success']:.2f} "
         f"({r['model_calls']} calls / {r['successes']} `ai` answers)",
         "none set (informational)", None),
    ]
    text = [
        f"## {name}", "",
        f"{r['n']} requests on distinct cold topics fired at once; the fake model answers "
        f"429 with `retry-after-ms: 50` except every {r['every']}th call it receives, which "
        f"succeeds. AI_MAX_ATTEMPTS={MAX_ATTEMPTS}.", "",
        f"- answers: {fmt_counter(r['sources'])}",
        f"- unavailable (503): {r['unavailable']}, of which with Retry-After: "
        f"{r['unavailable_with_retry_after']}",
        f"- answers by model calls made for the request: {fmt_counter(r['by_answer'])} (a "
        f"fallback after fewer than {MAX_ATTEMPTS} calls was cut short by the service, "
        "e.g. by its circuit breaker or the request's deadline)",
        f"- model calls per request (calls: requests): {fmt_counter(r['attempts_histogram'])}"
        + (f"; calls with no X-Request-ID: {r['calls_without_request_id']}"
           if r["calls_without_request_id"] else ""),
        f"- wall time {r['wall_s']:.3f} s, client p99 {r['p99_s']:.3f} s; service CPU "
        f"{r['cpu_ms_per_request']:.2f} ms per request; unhandled_exception lines: "
        f"{r['unhandled']}", "", _context(r), ""]
    return rows, text


def section_e(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(e) latency added on the model path"
    if "failed" in r:
        return _failed(name, r)
    rows: list[Row] = [
        ("(e) added latency p50 (100 concurrent, 0.2 s model)", f"{r['p50_ms']:.2f} ms",
         "≤ 3 ms", r["p50_ms"] <= 3),
        ("(e) added latency p99", f"{r['p99_ms']:.2f} ms", "≤ 15 ms", r["p99_ms"] <= 15),
        ("(e) for comparison: added latency p50, one request at a time",
         f"{r['alone_p50_ms']:.2f} ms", "none set (diagnostic)", None),
    ]
    reps = "\n".join(
        f"| {i + 1} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['before_p50_ms']:.2f} | "
        f"{x['before_p99_ms']:.2f} | {x['after_p50_ms']:.2f} | {x['after_p99_ms']:.2f} | "
        f"{x['non_200']} | {x['model_calls']} | {x['cpu_ms_per_request']:.2f} | "
        f"{x['busiest_share']:.2f} |" for i, x in enumerate(r["reps"]))
    text = [
        f"## {name}", "",
        f"{r['n']} requests on distinct cold topics fired at once; the fake model answers "
        f"each after a fixed {r['model_seconds']:g} s. Added = client latency − "
        f"{r['model_seconds']:g} s; medians of {REPS} repetitions. Where it goes, from the "
        "fake model's arrival time of each request (matched by X-Request-ID, same host clock): "
        "*before* = client send → model receives; *after* = model receives + "
        f"{r['model_seconds']:g} s → client has the answer (includes the fake's own reply "
        f"work). unhandled_exception lines: {r['unhandled']}.", "",
        "| rep | added p50 ms | added p99 ms | before p50 | before p99 | after p50 | "
        "after p99 | non-200 | model calls | service CPU ms/req | busiest worker share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", reps, "",
        f"For comparison, the same path with no queue in front of it ({r['alone_n']} requests "
        f"one at a time): added p50 {r['alone_p50_ms']:.2f} ms, max {r['alone_max_ms']:.2f} ms.",
        "", _context(r), ""]
    return rows, text


def section_f(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(f) event-loop longest stall under a burst"
    if "failed" in r:
        return _failed(name, r)
    worst = max(r["reps"], key=lambda x: x["max_ms"])
    rows: list[Row] = [
        (f"(f) event-loop longest stall, {r['n']} requests at once (half cached, half cold)",
         f"{r['max_ms']:.1f} ms (worst burst {worst['max_ms']:.1f} ms, the worker on a core "
         f"for {worst['max_cpu_ms']:.1f} ms of it)", "< 50 ms", r["max_ms"] < 50),
        ("(f) event-loop lag p99 during the burst", f"{r['p99_ms']:.1f} ms", "< 10 ms",
         r["p99_ms"] < 10),
        ("(f) longest callback in the worker's own CPU time",
         f"{r['step_cpu_ms']:.1f} ms (worst burst {r['worst_step_cpu_ms']:.1f} ms)",
         "none set (diagnostic)", None),
    ]
    reps = "\n".join(
        f"| {i + 1} | {x['max_ms']:.1f} | {x['max_cpu_ms']:.1f} | {x['max_gc_ms']:.1f} | "
        f"{x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['step_cpu_ms']:.1f} | {x['step_ms']:.1f} | "
        f"{x['step_gc_ms']:.1f} | `{x['step_what'][:100]}` | {x['gen2_count']} | "
        f"{x['gen2_max_ms']:.1f} ({x['gen2_max_cpu_ms']:.1f}) | {x['wall_s']:.2f} | "
        f"{x['non_200']} | {fmt_counter(x['sources'])} |" for i, x in enumerate(r["reps"]))
    text = [
        f"## {name}", "",
        f"{r['n']} requests fired at once, every other one on a topic whose pools were filled "
        f"beforehand (source `cache`), the rest on distinct cold topics (one model call each, "
        f"model latency {r['model_seconds']:g} s), at a service with 2 workers and Redis. "
        "The workers run bench/loop_lag.py: the service's own app, plus a task that sleeps "
        f"{r['tick_ms']:g} ms at a time and records how late it wakes (the lag: how long the "
        "loop did not get back to it), the garbage collector's passes, and every callback "
        "that ran 10 ms or more, with its CPU time. The stall of a burst is the longest lag "
        "of either worker from the first request sent to the last answer; medians of "
        f"{REPS} bursts. unhandled_exception lines: {r['unhandled']}.", "",
        "A lag is made of (1) one callback that does not yield (the longest callback by "
        "CPU time, and the GC inside it), (2) many short callbacks queued in one turn of the "
        "loop (each request gets its turn), and (3) time the worker waits for one of the 2 "
        "cores it shares with the other worker, the load client, Redis and the fake model: "
        "CPU in the longest lag well below the lag itself is (3).", "",
        "| burst | longest lag ms | worker CPU in it ms | GC in it ms | lag p50 ms | "
        "lag p99 ms | longest callback CPU ms | its wall ms | GC in it ms | that callback "
        "(task's coroutines) | gen-2 GCs | longest gen-2 GC ms (CPU) | wall s | non-200 | "
        "answers |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- |", reps, "", _context(r), ""]
    return rows, text


def build(results: dict[str, dict[str, Any]]) -> tuple[list[Row], list[str], list[str]]:
    """Rows and sections of the figures in `results` (all of them, or those chosen)."""
    from bench.sections_peer import SECTIONS as PEER
    from bench.sections_variety import section_m

    rows: list[Row] = []
    text: list[str] = []
    for key, func in (("a", section_a), ("b", section_b), ("c", section_c), ("d", section_d),
                      ("e", section_e), ("f", section_f), *PEER.items(), ("l", section_l),
                      ("m", section_m)):
        if key not in results:
            continue
        r, t = func(results[key])
        rows += r
        text += t
    return rows, text, list(NOTES)


NOTES = (
    f"RATE_LIMIT_PER_MINUTE={RATE_LIMIT}: the largest value Settings accepts (le=100000); "
    "a larger one stops start-up with exit status 2. The limiter runs on every question "
    "request and, per worker and client address, never reached its limit here (no 429 "
    "in any figure).",
    "The fake Azure OpenAI server (tests/support/fake_model.py) runs in a process of its "
    "own, with two socket settings changed there so that its artefacts are not charged to "
    "the service: its listen backlog raised from socketserver's 5 to 4096 (with 5, a storm's "
    "connections from the service wait on 1 s SYN retransmits), and TCP_NODELAY on (it "
    "writes headers and body separately, so with Nagle on every reply on a reused "
    "connection waited ~40 ms for a delayed ACK).",
    "Storm clients (b-f) are raw asyncio sockets: one connection per request, opened before "
    "the clock starts in batches of 100 (Hypercorn's listen backlog), then every request "
    "written at once. Connecting is not measured; latency runs from a request's write to "
    "the last byte of its answer. Each storm figure first sends unmeasured cold requests "
    "with a fast model (waves of 10 until both workers have served some), so one-time "
    "start-up costs of the workers are not counted.",
    "Each Hypercorn worker listens on its own socket (SO_REUSEPORT, ielts_service/workers.py; "
    "the bare app runs under the same master): the kernel spreads connections over the "
    "workers. 'Busiest worker share' is CPU, so a worker that other processes kept off a "
    "core shows as uneven even when its connections were not.",
    "Everything shares the machine's 2 cores: the service, the load generator, Redis and "
    "the fake model, plus whatever else runs there (the 'other processes' lines).",
)
