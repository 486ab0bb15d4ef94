"""A real `ielts-service serve` process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell leaks into the server."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    env.update(extra)
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    output: list[str] | None = None
    _lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        # Drain stdout as the server writes: a full pipe would stall its log writer.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    def lines(self) -> list[str]:
        """What the server printed so far (it keeps running)."""
        return list(self._lines)

    def stop(self) -> list[str]:
        """SIGTERM, wait for a clean exit, and return what the server printed."""
        if self.output is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self._reader is not None:
                self._reader.join(timeout=5)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.output = list(self._lines)
        return self.output


def start_server(cwd: Path, *args: str, **env: str) -> Server:
    """Start `ielts-service serve` on a free port; return once /health/live answers.

    The wait is generous: on a loaded machine starting workers takes seconds."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ielts_service", "serve", "--bind", f"127.0.0.1:{port}", *args],
        cwd=cwd, env=base_env(**{"PROMPTS_DIR": str(ROOT / "prompts"), **env}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    if wait_live(server.url, process):
        return server
    if process.poll() is not None:
        raise AssertionError("server exited: " + "\n".join(server.stop()))
    server.stop()
    raise AssertionError(f"server did not come up within {START_TIMEOUT} s")


def wait_live(url: str, process: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> bool:
    """Poll `url`/health/live until it answers 200 (True), the process exits or `timeout`
    passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/health/live", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.05)  # polling a condition with a deadline
    return False
