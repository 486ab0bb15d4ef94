"""What each worker of a `serve --workers N` instance did, read from its own metric files.

Under `ielts-service serve`, prometheus_client's multiprocess mode keeps every worker's
values in files of its own (`counter_<pid>.db`, `histogram_<pid>.db`, `gauge_livesum_<pid>.db`)
in PROMETHEUS_MULTIPROC_DIR. Collecting one worker's file alone gives that worker's numbers:
which worker answered what, without any test-only code in the service.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector


def worker_pid(path: Path) -> int:
    """The process id in a multiprocess file name such as `counter_4711.db`."""
    return int(path.stem.rsplit("_", 1)[1])


def sample_sum(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(sample.value for family in registry.collect() for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def per_worker(directory: Path, name: str, kind: str = "counter", **labels: str
               ) -> dict[int, float]:
    """`name` (labels filtered by `labels`) for each worker that wrote a `kind` file."""
    values = {}
    for path in sorted(directory.glob(f"{kind}_*.db")):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)  # a consistent snapshot of a file still being written
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            values[worker_pid(path)] = sample_sum(registry, name, **labels)
    return values


async def _burst(method: str, url: str, n: int, headers: dict[str, str]
                 ) -> list[httpx.Response]:
    # No keep-alive: every request is a new connection, which any worker may accept.
    limits = httpx.Limits(max_keepalive_connections=0)
    body = {"json": {}} if method == "POST" else {}
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        return list(await asyncio.gather(*(client.request(method, url, headers=headers, **body)
                                           for _ in range(n))))


def spread(url: str, directory: Path, *, workers: int = 2, each: int = 5, method: str = "POST",
           headers: dict[str, str] | None = None, burst: int | None = None,
           timeout: float = 60.0) -> list[httpx.Response]:
    """GET `url`, or POST `{}` to it, in bursts of concurrent new connections until each of `workers`
    workers has answered at least `each` of them; every response, in no particular order.

    Which worker accepts a connection is up to the kernel and the workers' event loops, so
    the test asks until it sees the spread it needs rather than hoping for it. `burst`
    requests go at once (default `2 * workers * each`; 1: one after the other)."""
    path = urlsplit(url).path
    responses: list[httpx.Response] = []
    deadline = time.monotonic() + timeout
    while True:
        answered = per_worker(directory, "ielts_http_requests_total", route=path, method=method)
        if len(answered) >= workers and all(n >= each for n in answered.values()):
            return responses
        assert time.monotonic() < deadline and len(responses) < 100 * workers * each, (
            f"after {len(responses)} requests, answered by worker: {answered}")
        size = burst or 2 * workers * each
        responses += asyncio.run(_burst(method, url, size, headers or {}))
