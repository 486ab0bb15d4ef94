"""A real `ielts-service serve` process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


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

    def stop(self) -> list[str]:
        """SIGTERM, wait for a clean exit, and return what the server printed."""
        if self.output is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                out, _ = self.process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, _ = self.process.communicate()
            self.output = out.decode().splitlines()
        return self.output


def start_server(cwd: Path, *args: str, **env: str) -> Server:
    """Start `ielts-service serve` on a free port; return once /health/live answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ielts_service", "serve", "--bind", f"127.0.0.1:{port}", *args],
        cwd=cwd, env=base_env(**{"PROMPTS_DIR": str(ROOT / "prompts"), **env}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("server exited: " + "\n".join(server.stop()))
        try:
            if httpx.get(server.url + "/health/live", timeout=0.5).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)  # polling a condition with a deadline
    server.stop()
    raise AssertionError("server did not come up within 20 s")
