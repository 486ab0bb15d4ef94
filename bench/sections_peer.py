"""Summary rows and sections of figures (g)-(k) (see bench/figures_peer.py)."""

from __future__ import annotations

from typing import Any

from bench.figures_peer import MISS_CONCURRENCY, MISS_WAVES, P99_BOUND_MS, SWEEP
from bench.report import fmt_counter
from bench.sections import Row, _context, _failed


def section_g(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(g) time to the first question on a cold topic, streaming model"
    if "failed" in r:
        return _failed(name, r)
    pace = r["pace"]
    rows: list[Row] = [
        ("(g) first cold answer / whole generation (streamed, realistic pace)",
         f"{r['ratio']:.2f} ({r['first_s']:.2f} s of {r['generation_s']:.2f} s)", "≤ 0.4",
         r["ratio"] <= 0.4),
        ("(g) model calls for the topic's first 5 requests", f"{r['model_calls']}", "1",
         r["model_calls"] == 1),
    ]
    reps = "\n".join(
        f"| {i + 1} | {x['first_s']:.3f} | {x['first_item_s']:.3f} | {x['generation_s']:.3f} | "
        f"{x['ratio']:.2f} | {fmt_counter(x['first_source'])} | {fmt_counter(x['rest'])} | "
        f"{x['model_calls']} |" for i, x in enumerate(r["reps"]))
    text = [
        f"## {name}", "",
        f"The fake model streams like Azure (`data:` chat.completion.chunk events, usage in a "
        f"last chunk, `data: [DONE]`) at a deployment's pace: {pace.first_token:g} s to the "
        f"first token, then {pace.per_second:g} chunks a second of {pace.chunk_chars} "
        "characters, a pool of five Part 2 cards. The service streams (AI_STREAM's default). "
        "One request on a new topic, alone; the whole generation is the latency of its model "
        "call from the service's `ai_call` line (the stream's end); then four more requests "
        f"on the same topic. Median of the repetitions. unhandled_exception lines: "
        f"{r['unhandled']}.", "",
        "| rep | first answer s | first item in the stream s | whole generation s | ratio "
        "| first answered | next four | model calls |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |", reps, "", _context(r), ""]
    return rows, text


def section_h(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(h) added latency at 1 connection, cached path"
    if "failed" in r:
        return _failed(name, r)
    rows: list[Row] = [
        ("(h) added latency at 1 connection vs bare Quart, p50 / p99",
         f"{r['added_p50_ms']:.2f} / {r['added_p99_ms']:.2f} ms (service "
         f"{r['service_p50']:.2f} / {r['service_p99']:.2f}, bare {r['bare_p50']:.2f} / "
         f"{r['bare_p99']:.2f})", "none set (peers' figure)", None)]
    text = [f"## {name}", "",
            "One keep-alive connection (wrk -c1), the cached `POST /generate-question` with "
            "everything on, against the bare Quart app under the same master and "
            "hypercorn.toml: with minus without, as LLM gateways publish it. Medians of the "
            "interleaved runs.", "", _context(r), ""]
    return rows, text


def section_i(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = f"(i) most requests a second with p99 under {P99_BOUND_MS:g} ms, cached path"
    if "failed" in r:
        return _failed(name, r)

    def show(best: dict[str, Any] | None) -> str:
        return (f"{best['rps']:.0f} req/s at {best['connections']} connection(s), p99 "
                f"{best['p99_ms']:.2f} ms" if best else "none held")

    s, x = r["service_best"], r["bare_best"]
    rows: list[Row] = [(f"(i) most req/s held with p99 < {P99_BOUND_MS:g} ms (cached path)",
                        f"service {show(s)}; bare {show(x)}"
                        + (f"; ratio {s['rps'] / x['rps']:.2f}" if s and x else ""),
                        "none set (peers' figure)", None)]
    table = "\n".join(
        f"| {c} | {a['rps']:.0f} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {z['rps']:.0f} | "
        f"{z['p50_ms']:.2f} | {z['p99_ms']:.2f} |"
        for c, a, z in zip(SWEEP, r["sweep"]["service"], r["sweep"]["bare"], strict=True))
    text = [f"## {name}", "",
            "wrk is a closed loop: it cannot hold a set rate, so the sweep raises the number "
            "of keep-alive connections and keeps the busiest step whose p99 stayed under the "
            "bound.", "",
            "| connections | service req/s | p50 ms | p99 ms | bare req/s | p50 ms | p99 ms |",
            "| --- | --- | --- | --- | --- | --- | --- |", table, "", _context(r), ""]
    return rows, text


def section_j(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(j) CPU per hit and per miss"
    if "failed" in r:
        return _failed(name, r)
    rows: list[Row] = [
        ("(j) CPU per cached hit (32 connections)", f"{r['hit_us']:.0f} µs", "none set", None),
        (f"(j) CPU per miss, {MISS_CONCURRENCY} at a time, instant model, whole answers "
         "(AI_STREAM=false)", f"{r['miss_whole_us']:.0f} µs", "≤ 1,500 µs",
         r["miss_whole_us"] <= 1500),
        (f"(j) CPU per miss, {MISS_CONCURRENCY} at a time, instant model, streamed (default)",
         f"{r['miss_streamed_us']:.0f} µs", "≤ 1,500 µs", r["miss_streamed_us"] <= 1500),
    ]
    text = [f"## {name}", "",
            "The service's CPU (master and workers, from /proc) divided by the requests "
            f"answered. Hits: wrk on the cached path (runs: "
            f"{', '.join(f'{x:.0f}' for x in r['hit_runs_us'])} µs). Misses: {MISS_WAVES} "
            f"waves of {MISS_CONCURRENCY} distinct cold topics at once against a model that "
            "answers at once (streamed at socket speed, 24-character chunks, when asked to "
            "stream); each miss is one model call, one pool written, the single-flight "
            "lease taken and released.", "",
            f"- streamed: {fmt_counter(r['miss_streamed_sources'])}; model calls "
            f"{r['miss_streamed_calls']}",
            f"- whole: {fmt_counter(r['miss_whole_sources'])}; model calls "
            f"{r['miss_whole_calls']}", "", _context(r), ""]
    return rows, text


def section_k(r: dict[str, Any]) -> tuple[list[Row], list[str]]:
    name = "(k) memory, idle and steady state"
    if "failed" in r:
        return _failed(name, r)
    rows: list[Row] = [("(k) resident memory, master + 2 workers: idle / steady state",
                        f"{r['idle_mb']:.0f} MB / {r['steady_mb']:.0f} MB", "none set", None)]
    text = [f"## {name}", "",
            "VmRSS summed over the master, its workers and multiprocessing's helper: once "
            f"the instance is up and idle, and after {MISS_WAVES} rounds of {MISS_CONCURRENCY} "
            "misses each followed by a second of cached load.", "", _context(r), ""]
    return rows, text


SECTIONS = {"g": section_g, "h": section_h, "i": section_i, "j": section_j, "k": section_k}
