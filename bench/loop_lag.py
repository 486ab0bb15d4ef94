"""`ielts-service serve` with a loop-lag monitor in each worker, for figure (f).

`python -m bench.loop_lag [serve options]` runs the service's own `serve` command (same
settings check, logging, metrics directory and hypercorn.toml) but has each worker load
`serve_app()` below: the service's app factory plus a task that sleeps TICK seconds at a
time and records how late it wakes, the garbage collector's passes, and each callback
that held the loop STEP_NOTED or longer. The service itself has no bench-only code path.
Each worker writes what it recorded, as JSON, to `$BENCH_LOOP_LAG_DIR/<pid>.json` after
serving (on SIGTERM).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from quart import Quart

TICK = 0.002  # seconds between wake-ups: a stall shows up as lag within TICK of its length
STEP_NOTED = 0.010  # callbacks that ran at least this long are recorded with what they ran
ENV_DIR = "BENCH_LOOP_LAG_DIR"


def describe(handle: asyncio.Handle) -> str:
    """What a callback ran: for a task's step, its coroutine and where it is suspended now."""
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return getattr(callback, "__qualname__", type(callback).__name__)
    coro: Any = task.get_coro()
    names = []
    while coro is not None and hasattr(coro, "cr_code"):
        names.append(coro.cr_code.co_qualname)
        coro = coro.cr_await
    return " > ".join(names) if names else repr(task)[:200]


class LagMonitor:
    """Samples the running loop: per tick, when it woke, how late, and the thread's CPU.

    Plain arrays, not lists of tuples: the monitor must not add objects for the garbage
    collector to walk, or it would lengthen the pauses it measures."""

    def __init__(self) -> None:
        self.woke, self.lag, self.cpu = array("d"), array("d"), array("d")
        self.gc_start, self.gc_end, self.gc_cpu = array("d"), array("d"), array("d")
        self.gc_gen = array("b")
        self._gc_started = self._gc_cpu = 0.0
        self.steps: list[tuple[float, float, float, str]] = []  # start, wall, CPU, what

    def time_steps(self) -> None:
        """Time every callback the loop runs (asyncio's debug mode does the same, plus a
        stack capture per callback that is far too costly to measure with). Costs about
        1.5 us per callback, mostly the two CPU-clock reads."""
        original = asyncio.events.Handle._run
        steps = self.steps

        def _run(handle: asyncio.Handle) -> None:
            start, cpu = time.monotonic(), time.thread_time()
            try:
                original(handle)
            finally:
                took = time.monotonic() - start
                if took >= STEP_NOTED:
                    steps.append((start, took, time.thread_time() - cpu, describe(handle)))

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started, self._gc_cpu = time.monotonic(), time.thread_time()
        else:
            self.gc_start.append(self._gc_started)
            self.gc_end.append(time.monotonic())
            self.gc_cpu.append(time.thread_time() - self._gc_cpu)
            self.gc_gen.append(info["generation"])

    async def run(self) -> None:
        loop = asyncio.get_running_loop()  # loop.time() is time.monotonic(): host-wide
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                start, cpu = loop.time(), time.thread_time()
                await asyncio.sleep(TICK)
                now = loop.time()
                self.woke.append(now)
                self.lag.append(now - start - TICK)
                self.cpu.append(time.thread_time() - cpu)
        finally:
            gc.callbacks.remove(self._on_gc)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({
            "pid": os.getpid(), "tick": TICK, "woke": self.woke.tolist(),
            "lag": self.lag.tolist(), "cpu": self.cpu.tolist(), "steps": self.steps,
            "gc": list(zip(self.gc_start.tolist(), self.gc_end.tolist(), self.gc_cpu.tolist(),
                           self.gc_gen.tolist(), strict=True))}))


def serve_app() -> Quart:
    """Hypercorn's entry point in each worker: the service's app, watched."""
    from ielts_service.app import serve_app as service_app

    app = service_app()
    out = Path(os.environ[ENV_DIR])
    monitor = LagMonitor()
    monitor.time_steps()

    @app.while_serving
    async def _monitor() -> AsyncIterator[None]:
        task = asyncio.create_task(monitor.run())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        monitor.dump(out / f"{os.getpid()}.json")

    return app


def main(argv: list[str]) -> int:
    from ielts_service import cli, workers

    real_run = workers.run

    def run(config: Any) -> int:  # `serve` sets the service's path; load ours instead
        config.application_path = "bench.loop_lag:serve_app()"
        return real_run(config)

    workers.run = run  # `cli.serve` looks it up at call time
    return cli.main(["serve", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
