"""`python -m bench.redis_capacity` (`make bench-redis`): how much Redis one request costs,
what one Redis node sustains for the service's commands, and so how many instances one
node, and a cluster of 3 or 6 masters, carries. Writes bench/redis-capacity-latest.md.

1. Commands per request, counted with MONITOR (bench/redis_ops.py), per kind of request,
   each EVALSHA by its script (told apart by SHA); the cached ones at a popular topic's
   steady state (its pool at POOL_MAX_ITEMS, every item served and counted).
2. What one redis-server sustains for each of those commands, with their real arguments
   and scripts: redis-benchmark, 50 connections, no pipelining (the service pipelines
   nothing on the request path), random keys where the service's keys differ per client
   or pool. Combined per kind of request: 1 / sum(commands_i / rate_i).
3. Instances: that rate over one instance's throughput (bench/report-latest.md, (a) for
   cached requests and (c) for cold ones). A cluster multiplies it by its masters, as
   its keys spread over the slots by client and by pool (see the README's Scaling out).
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import time
from pathlib import Path

from bench import activity, report
from bench.redis_ops import count
from ielts_service.llm.budget import _COUNT_CALL, _TAKE
from ielts_service.observability.logging import configure_logging
from ielts_service.state.flight import _RELEASE
from ielts_service.state.pools import CLAIM as _CLAIM
from ielts_service.state.pools import MARK_SEEN as _MARK_SEEN
from ielts_service.state.pools import PRINTS_MAX
from ielts_service.state.pools import SERVE as _SERVE
from ielts_service.state.quota import _ALLOW
from ielts_service.state.rate_store import _GCRA
from tests.support.redis_server import RedisServer, ensure_redis_server_binary

OUT = Path(__file__).resolve().parent / "redis-capacity-latest.md"
BENCH_REPORT = Path(__file__).resolve().parent / "report-latest.md"
POOL = "x" * 3000  # a Part 2 pool of five cards is ~3 KB of JSON
POOL_FULL = "x" * 18000  # ... and of 30 (POOL_MAX_ITEMS), a popular topic's, ~18 KB
ITEM = '{"items": [' + "x" * 680 + "]}"  # one streamed card
RAND = "__rand_int__"  # redis-benchmark puts a random number here (-r)


def serve(items: int) -> list[str]:
    """SERVE over a pool of `items` item ids (as `item_id` makes them), every one a
    candidate: its served counts, TTL 1 day, target 1, not strict (a full pool's pick)."""
    ids = [f"p2-{n:016x}" for n in range(items)]
    return ["EVALSHA", "SERVE", "1", f"ielts:v1:served:{{{RAND}}}:m:v:p2", "86400", "1", "0",
            str(items), *ids]


# One line per command the service sends: (what, its arguments as the service sends them).
# Scripts are named by their text and replaced by their SHA once loaded.
COMMANDS: dict[str, list[str]] = {
    "rate limit (GCRA script)": ["EVALSHA", "GCRA", "1", f"ielts:v1:rl:{{{RAND}}}:k",
                                 "1000", "60000"],
    "generation quota (script)": ["EVALSHA", "ALLOW", "1", f"ielts:v1:{{c:{RAND}}}:gen",
                                  "12000", "3600000", "1"],
    "model calls today (EVAL)": ["EVAL", _COUNT_CALL, "1", "ielts:v1:{budget}:calls:day",
                                 "1000000000", "172800"],
    "served counts (script, pool of 30)": serve(30),
    "pool read (GET, 30 cards, 18 KB)": ["GET", "ielts:v1:pool:{hot}:m:v:p2"],
    "pool miss (GET)": ["GET", f"ielts:v1:pool:{{{RAND}}}:cold"],
    "lease (SET NX PX)": ["SET", f"ielts:v1:flight:lock:{{{RAND}}}", "token", "NX", "PX",
                          "5000"],
    "served counts (script, pool of 5)": serve(5),
    "fingerprint (script, 1 member)": ["EVALSHA", "CLAIM", "1", f"ielts:v1:fp:{{{RAND}}}",
                                       "1790000000.5", str(PRINTS_MAX), "86400", f"p-{RAND}"],
    "streamed item (PUBLISH, 700 B)": ["PUBLISH", f"ielts:v1:flight:ready:{{{RAND}}}",
                                       ITEM],
    "fingerprints (script, 5 members)": ["EVALSHA", "CLAIM", "1", f"ielts:v1:fp:{{{RAND}}}",
                                         "1790000000.5", str(PRINTS_MAX), "86400",
                                         *(f"print-{n}-{RAND}" for n in range(5))],
    "pool write (SET EX, 3 KB)": ["SET", f"ielts:v1:pool:{{{RAND}}}:w", POOL, "EX", "86400"],
    "wake-up (PUBLISH)": ["PUBLISH", f"ielts:v1:flight:ready:{{{RAND}}}", "1"],
    "lease release (EVAL)": ["EVAL", _RELEASE, "1", f"ielts:v1:flight:lock:{{{RAND}}}", "t"],
    "seen read (SMEMBERS)": ["SMEMBERS", "ielts:v1:seen:{s}:pool"],
    "seen write (script, 1 member)": ["EVALSHA", "MARK", "1", f"ielts:v1:seen:{{{RAND}}}:p",
                                      "item", "86400"],
    "model budget (script)": ["EVALSHA", "TAKE", "2", "ielts:v1:{budget}:requests",
                              "ielts:v1:{budget}:tokens", "600", "100000", "1", "1600"],
}
# Each kind of request as commands from COMMANDS; checked, command by command (an EVALSHA
# by its script), against what MONITOR counted.
MIXES: dict[str, dict[str, float]] = {
    "cached (the worker's 2 s copy of the pool)": {"rate limit (GCRA script)": 1,
                                                   "served counts (script, pool of 30)": 1},
    "cached, copy expired (a pool read from Redis)": {
        "rate limit (GCRA script)": 1, "pool read (GET, 30 cards, 18 KB)": 1,
        "served counts (script, pool of 30)": 1},
    "cached, with a session_id (seen items)": {"rate limit (GCRA script)": 1,
                                               "seen read (SMEMBERS)": 1,
                                               "served counts (script, pool of 30)": 1,
                                               "seen write (script, 1 member)": 1},
    "cold, streamed (one model call; AI_STREAM, the default)": {
        "rate limit (GCRA script)": 1, "generation quota (script)": 2, "pool miss (GET)": 1,
        "lease (SET NX PX)": 1, "model calls today (EVAL)": 1,
        "fingerprint (script, 1 member)": 5, "streamed item (PUBLISH, 700 B)": 5,
        "served counts (script, pool of 5)": 1,
        "pool write (SET EX, 3 KB)": 1, "wake-up (PUBLISH)": 1, "lease release (EVAL)": 1},
    "cold, whole answer (one model call; AI_STREAM=false)": {
        "rate limit (GCRA script)": 1, "generation quota (script)": 2, "pool miss (GET)": 1,
        "lease (SET NX PX)": 1, "model calls today (EVAL)": 1,
        "fingerprints (script, 5 members)": 1, "served counts (script, pool of 5)": 1,
        "pool write (SET EX, 3 KB)": 1, "wake-up (PUBLISH)": 1, "lease release (EVAL)": 1},
}
SCRIPTS = {"GCRA": _GCRA, "CLAIM": _CLAIM, "MARK": _MARK_SEEN, "TAKE": _TAKE, "ALLOW": _ALLOW,
           "SERVE": _SERVE}


def monitored(what: str) -> str:
    """How MONITOR (bench/redis_ops.py) names a command of COMMANDS: `EVALSHA CLAIM`, `GET`."""
    args = COMMANDS[what]
    return f"EVALSHA {args[1]}" if args[0] == "EVALSHA" else args[0]


def check(kind: str, measured: dict[str, float], mix: dict[str, float]) -> None:
    """What MONITOR counted is the mix, command by command (reconnects' HELLO aside)."""
    expected: dict[str, float] = {}
    for what, n in mix.items():
        expected[monitored(what)] = expected.get(monitored(what), 0) + n
    for name in sorted(set(expected) | (set(measured) - {"HELLO"})):
        got, want = measured.get(name, 0), expected.get(name, 0)
        assert abs(got - want) < 0.1, (f"{kind}: {name} counted {got:g}, expected {want:g} "
                                       f"(counted {measured}, expected {expected})")


def benchmark(port: int, requests: int = 100_000, clients: int = 50) -> dict[str, float]:
    """Commands per second one redis-server answers, per command of COMMANDS."""
    shas = {name: subprocess.run(["redis-cli", "-p", str(port), "SCRIPT", "LOAD", text],
                                 capture_output=True, text=True, check=True).stdout.strip()
            for name, text in SCRIPTS.items()}
    subprocess.run(["redis-cli", "-p", str(port), "SET", "ielts:v1:pool:{hot}:m:v:p2",
                    POOL_FULL], check=True, capture_output=True)
    subprocess.run(["redis-cli", "-p", str(port), "SADD", "ielts:v1:seen:{s}:pool", "a", "b"],
                   check=True, capture_output=True)
    rates = {}
    for what, args in COMMANDS.items():
        args = [shas.get(a, a) if i == 1 else a for i, a in enumerate(args)]
        out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(clients), "-n",
                              str(requests), "-r", "1000000", "--csv", *args],
                             capture_output=True, text=True, check=True, timeout=300).stdout
        row = list(csv.DictReader(io.StringIO(out)))[-1]
        rates[what] = float(row["rps"])
    return rates


def per_instance() -> tuple[float, float, str]:
    """(cached, cold) requests per second of one 2-worker instance, from the bench report."""
    text = BENCH_REPORT.read_text()
    cached = re.search(r"\(a\) throughput ratio[^|]*\| [0-9.]+ \((\d+) / \d+ req/s\)", text)
    cold = re.search(r"\(c\) wall time, 1,000 distinct cold topics[^|]*\| ([0-9.]+) s", text)
    date = re.search(r"\| date \(UTC\) \| ([^|]+) \|", text)
    if not (cached and cold):
        raise RuntimeError(f"{BENCH_REPORT} lacks figures (a) and (c): run `make bench`")
    return float(cached.group(1)), 1000 / float(cold.group(1)), date.group(1).strip() if date else "?"


def main() -> int:
    configure_logging("error", "json", background=False)
    started, load_before = time.monotonic(), activity.loadavg()
    with RedisServer(ensure_redis_server_binary()) as server:
        counted = count(server.port, SCRIPTS)
        server.flush()
        rates = benchmark(server.port)
    instance_cached, instance_cold, bench_date = per_instance()
    rows = []
    for kind, mix in MIXES.items():
        measured = counted[kind]
        check(kind, measured, mix)
        node = 1 / sum(n / rates[what] for what, n in mix.items())
        per = instance_cold if kind.startswith("cold") else instance_cached
        rows.append((kind, measured, node, per, node / per))
    text = render(rows, rates, instance_cached, instance_cold, bench_date,
                  time.monotonic() - started, load_before, activity.loadavg())
    OUT.write_text(text)
    print(text)
    return 0


def render(rows: list[tuple[str, dict[str, float], float, float, float]],
           rates: dict[str, float], instance_cached: float, instance_cold: float,
           bench_date: str, seconds: float, load_before: str, load_after: str) -> str:
    machine = dict(report.machine())
    out = ["# Redis capacity", "",
           f"Written by `make bench-redis` (`python -m bench.redis_capacity`) in {seconds:.0f} s "
           f"on {machine['date (UTC)']} UTC, {machine['nproc']} cores ({machine['CPU model']}), "
           f"{machine['redis-server']}, {machine['code measured']}. Load average "
           f"{load_before} before, {load_after} after (other people's work shares the cores, "
           "and redis-benchmark shares them with redis-server: the rates are a floor).", "",
           "## Per request", "",
           "| request | Redis commands (MONITOR, per request) | one node, requests/s | "
           "one instance, requests/s | instances per node | cluster of 3 masters | "
           "cluster of 6 masters |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind, measured, node, per, instances in rows:
        counted = ", ".join(f"{name} {n:g}" for name, n in measured.items())
        out.append(f"| {kind} | {sum(measured.values()):.2f}: {counted} | {node:,.0f} | "
                   f"{per:,.0f} | {instances:,.1f} | {3 * instances:,.0f} | "
                   f"{6 * instances:,.0f} |")
    out += ["", f"One instance (2 Hypercorn workers): {instance_cached:,.0f} cached requests/s "
            f"(figure (a)) and {instance_cold:,.0f} cold requests/s (figure (c): 1,000 cold "
            f"topics over its wall time), from bench/report-latest.md of {bench_date}.", "",
            "## One node, per command (redis-benchmark, 50 connections, no pipelining)", "",
            "| command | commands/s |", "| --- | --- |"]
    out += [f"| {what} | {rate:,.0f} |" for what, rate in rates.items()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
