"""`serve --workers N`: connections opened at once are spread over the workers, and an
address another instance holds stops start-up with one line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import ROOT, base_env
from tests.support.waiting import eventually
from tests.support.worker_metrics import per_worker

pytestmark = pytest.mark.e2e
CONNECTIONS = 32


def _workers(master: int) -> list[int]:
    """The master's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


async def _one_request_per_connection(port: int, workers: list[int]) -> list[int]:
    """Open every connection while the workers are busy (stopped here), as a client's
    keep-alive pool does at start-up under load, then let the workers go one after the
    other and send one request on each connection: which worker answers each was decided
    when the connection was accepted."""
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                       for _ in range(CONNECTIONS)))
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    raw = (f"GET /generate-question?part=2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode()
    for _, writer in conns:
        writer.write(raw)
    statuses = []
    for reader, writer in conns:
        head = await reader.readuntil(b"\r\n\r\n")
        statuses.append(int(head.split()[1]))
        writer.close()
    return statuses


def test_connections_opened_at_once_are_spread_over_the_workers(serve, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = serve("--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                   RATE_LIMIT_PER_MINUTE="0")
    asyncio.run(eventually(lambda: sum("Running on" in line for line in server._lines) >= 2))
    port = int(server.url.rsplit(":", 1)[1])
    workers = _workers(server.process.pid)
    assert len(workers) == 2
    assert asyncio.run(_one_request_per_connection(port, workers)) == [200] * CONNECTIONS
    by_worker = per_worker(metrics_dir, "ielts_http_requests_total", route="/generate-question")
    # With one socket shared by both workers, the first to wake accepts every waiting
    # connection; with one socket each, the kernel has split them (all on one: 1 in 2**31).
    assert len(by_worker) == 2 and min(by_worker.values()) >= 1, by_worker
    assert sum(by_worker.values()) == CONNECTIONS
    # Each line says which worker wrote it: the access lines name both, and only them.
    lines = [json.loads(line) for line in server.stop() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "ielts_service.access"
              and line.get("route") == "/generate-question"]
    assert len(access) == CONNECTIONS and {line["pid"] for line in access} == set(workers)
    assert all("pid" in line for line in lines)


def test_an_address_in_use_stops_start_up_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ielts_service", "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "2"], cwd=tmp_path, env=base_env(PROMPTS_DIR=str(ROOT / "prompts")),
            capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"ielts-service: cannot bind 127.0.0.1:{port}: Address already in use"]
