"""The processes under test: `ielts-service serve` and the bare app, both under Hypercorn.

Unlike tests/support/process.py, output goes to a file: under load the service logs one
JSON line per request, and an unread pipe would fill and stall it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from tests.support.process import base_env, free_port

ROOT = Path(__file__).resolve().parent.parent
HYPERCORN_TOML = ROOT / "hypercorn.toml"
WORKERS = 2
AZURE_KEY = "bench-azure-key-5d1e7b"


def azure_env(fake_url: str, **extra: str) -> dict[str, str]:
    """tests/conftest.py's azure_env, but with the service's own backoff defaults."""
    env = {
        "AZURE_OPENAI_ENDPOINT": fake_url,
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-bench",
        "AZURE_OPENAI_API_VERSION": "2024-10-21",
        "PROMPTS_DIR": str(ROOT / "prompts"),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }
    env.update(extra)
    return env


@dataclass
class Process:
    name: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL past 25 s (Hypercorn's graceful timeout is 20 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                for pid in descendants(self.process.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()


def _start(name: str, cmd: list[str], env: dict[str, str], cwd: Path, log_dir: Path,
           probe: str) -> Process:
    port = free_port()
    log_path = log_dir / f"{name}-{port}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen([*cmd, "--bind", f"127.0.0.1:{port}"], cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    proc = Process(name, f"http://127.0.0.1:{port}", port, process, log_path, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            proc.stop()
            tail = "\n".join(proc.log_lines()[-20:])
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        # Up means every worker has logged Hypercorn's "Running on" line and one answers.
        if proc.log_path.read_bytes().count(b"Running on") >= WORKERS:
            try:
                httpx.get(proc.url + probe, timeout=0.5)
                return proc
            except httpx.TransportError:
                pass
        time.sleep(0.05)  # polling a condition with a deadline
    proc.stop()
    raise RuntimeError(f"{name} did not come up within 30 s")


def start_service(env: dict[str, str], log_dir: Path) -> Process:
    """`ielts-service serve` with 2 workers and the repo's hypercorn.toml; cwd has no .env."""
    cmd = [sys.executable, "-m", "ielts_service", "serve", "--config", str(HYPERCORN_TOML),
           "--workers", str(WORKERS)]
    return _start("service", cmd, base_env(**env), log_dir, log_dir, "/health/live")


def start_watched_service(env: dict[str, str], log_dir: Path, lag_dir: Path) -> Process:
    """`start_service`, but each worker also runs bench.loop_lag's lag monitor."""
    cmd = [sys.executable, "-m", "bench.loop_lag", "--config", str(HYPERCORN_TOML),
           "--workers", str(WORKERS)]
    env = base_env(**env, PYTHONPATH=str(ROOT), BENCH_LOOP_LAG_DIR=str(lag_dir))
    return _start("service-watched", cmd, env, log_dir, log_dir, "/health/live")


def start_bare(log_dir: Path) -> Process:
    """bench.bare_app with hypercorn.toml and 2 workers, under the service's own master."""
    cmd = [sys.executable, "-m", "bench.bare_app", "--config", str(HYPERCORN_TOML),
           "--workers", str(WORKERS)]
    return _start("bare", cmd, base_env(PYTHONPATH=str(ROOT)), ROOT, log_dir,
                  "/generate-question")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of all its threads, recursively)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                text = Path(f"/proc/{parent}/task/{task}/children").read_text()
            except OSError:
                continue
            for child in map(int, text.split()):
                if child not in found:
                    found.append(child)
                    stack.append(child)
    return found


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_memory(pid: int) -> list[tuple[int, str, int]]:
    """(pid, command, VmHWM in kB) for `pid` and every descendant."""
    rows = []
    for p in [pid, *descendants(pid)]:
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            rows.append((p, cmd, _status_kb(p, "VmHWM")))
        except OSError:
            continue
    return rows


def _cpu(pid: int) -> float:
    """User + system CPU seconds of one live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class CpuMeter:
    """CPU seconds a server's processes spend between `start()` and `stop()`, per worker."""

    def __init__(self, proc: Process) -> None:
        self.pids = [proc.process.pid, *descendants(proc.process.pid)]
        self.workers = [p for p in self.pids if b"spawn_main" in _cmdline(p)]
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {p: _cpu(p) for p in self.pids}

    def stop(self) -> tuple[float, list[float]]:
        """(CPU seconds of every process, each worker's CPU seconds, busiest first)."""
        spent = {p: _cpu(p) - self._start[p] for p in self.pids}
        return sum(spent.values()), sorted((spent[p] for p in self.workers), reverse=True)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def busiest_share(workers: list[float]) -> float:
    """The busiest worker's share of the workers' CPU (0.5: even, 1.0: one did it all)."""
    total = sum(workers)
    return workers[0] / total if total > 0 else float("nan")
