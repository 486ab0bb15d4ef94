"""`python -m bench`: start everything on loopback, measure figures (a)-(m), write the report."""

from __future__ import annotations

import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    activity,
    figures,
    figures_loop,
    figures_model,
    figures_peer,
    figures_tracing,
    figures_variety,
    report,
    sections,
)
from bench.fakehost import FakeModelProcess
from tests.support.redis_server import RedisServer, ensure_redis_server_binary

REPORT = Path(__file__).resolve().parent / "report-latest.md"
LOGS = Path(tempfile.gettempdir()) / "ielts-bench-logs"  # the last run's server logs
TIME_LIMIT = 1200  # seconds for the whole run; every loop inside is bounded far below


def _timeout(signum: int, frame: Any) -> None:
    raise TimeoutError(f"the benchmark passed its {TIME_LIMIT} s limit")


def _measure(name: str, func: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    waited, share = activity.wait_quiet()
    print(f"[bench] {name} ... (waited {waited:.0f} s for a quieter machine: other processes "
          f"at {share:.0%})", file=sys.stderr, flush=True)
    start, before = time.monotonic(), activity.Snapshot.take()
    try:
        result = func(*args)
    except TimeoutError:
        raise
    except Exception as exc:  # one broken figure must not hide the others
        traceback.print_exc()
        result = {"failed": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = time.monotonic() - start
    result["waited_s"], result["share_at_start"] = waited, share
    foreign = activity.Snapshot.take().foreign_since(before)
    result["foreign_cpu_s"], result["foreign_share"] = foreign
    print(f"[bench] {name} done in {result['seconds']:.1f} s", file=sys.stderr, flush=True)
    return result


FIGURES: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
    "a": ("(a) cached throughput vs bare Quart", figures.throughput),
    "b": ("(b) cold storm", figures.cold_storm),
    "c": ("(c) 1,000 students", figures.many_students),
    "d": ("(d) 429 storm", figures_model.rate_limit_storm),
    "e": ("(e) added latency", figures_model.added_latency),
    "f": ("(f) event-loop longest stall under a burst", figures_loop.loop_stall),
    "g": ("(g) first question on a cold topic, streaming model", figures_peer.streamed_cold),
    "h": ("(h) added latency at 1 connection", figures_peer.one_connection),
    "i": ("(i) most req/s with p99 under 10 ms", figures_peer.bounded_rate),
    "j": ("(j) CPU per hit and per miss", figures_peer.cpu_per_request),
    "k": ("(k) memory idle and steady", figures_peer.memory),
    "l": ("(l) tracing overhead", figures_tracing.tracing_overhead),
    "m": ("(m) model calls per served item, popular topic", figures_variety.popular_topic),
}
ALIASES = {"loop_stall": "f", "tracing": "l", "variety": "m"}


def main(argv: list[str]) -> int:
    """`python -m bench` measures every figure; `python -m bench f` (or `loop_stall`, or
    `l` / `tracing`, or `m` / `variety`) only those named, and then writes its report to the
    logs directory, not report-latest.md."""
    keys = [ALIASES.get(a, a) for a in argv]
    unknown = [a for a, k in zip(argv, keys, strict=True) if k not in FIGURES]
    if unknown:
        print(f"usage: python -m bench [{' '.join(FIGURES)} | loop_stall | tracing | variety "
              f"...]; unknown: {' '.join(unknown)}", file=sys.stderr)
        return 2
    chosen = {k: FIGURES[k] for k in FIGURES if not keys or k in keys}
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TIME_LIMIT)
    started = time.monotonic()
    machine = report.machine()
    load_before, digest = activity.loadavg(), report.code_digest()
    redis = RedisServer(ensure_redis_server_binary())
    fake = FakeModelProcess()
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    try:
        redis.start()
        fake.start()
        b = figures.Bench(redis, fake, LOGS, secrets.token_hex(3))
        results = {key: _measure(title, func, b) for key, (title, func) in chosen.items()}
    finally:
        signal.alarm(0)
        fake.stop()
        redis.close()
    machine.append(("load average (1/5/15 min)", f"{load_before} at start, "
                    f"{activity.loadavg()} at end"))
    rows, parts, notes = sections.build(results)
    if report.code_digest() != digest:
        notes.append("The service's code changed on disk during this run (other engineers "
                     "are editing it): figures measured after the change may run other code.")
    notes.append(f"The servers' logs of this run are in {LOGS}.")
    text = report.render(rows, parts, machine, notes, time.monotonic() - started)
    out = REPORT if len(chosen) == len(FIGURES) else LOGS / "report.md"
    out.write_text(text)
    print(text)
    print(f"[bench] written to {out}", file=sys.stderr)
    return 1 if any("failed" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
