"""`python -m bench`: start everything on loopback, measure figures (a)-(e), write the report."""

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

from bench import activity, figures, figures_model, report, sections
from bench.fakehost import FakeModelProcess
from tests.support.redis_server import RedisServer, ensure_redis_server_binary

REPORT = Path(__file__).resolve().parent / "report-latest.md"
LOGS = Path(tempfile.gettempdir()) / "ielts-bench-logs"  # the last run's server logs
TIME_LIMIT = 600  # seconds for the whole run; every loop inside is bounded far below


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


def main() -> int:
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
        results = {
            "a": _measure("(a) cached throughput vs bare Quart", figures.throughput, b),
            "b": _measure("(b) cold storm", figures.cold_storm, b),
            "c": _measure("(c) 1,000 students", figures.many_students, b),
            "d": _measure("(d) 429 storm", figures_model.rate_limit_storm, b),
            "e": _measure("(e) added latency", figures_model.added_latency, b),
        }
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
    REPORT.write_text(text)
    print(text)
    print(f"[bench] written to {REPORT}", file=sys.stderr)
    return 1 if any("failed" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
