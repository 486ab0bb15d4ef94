"""A throw-away real redis-server for tests (stdlib only)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from typing import IO

__all__ = ["RedisServer", "ensure_redis_server_binary"]

_DEFAULT_BINARY = "/usr/bin/redis-server"


def ensure_redis_server_binary() -> str:
    """Path of redis-server, or RuntimeError telling how to get it."""
    for candidate in (shutil.which("redis-server"), _DEFAULT_BINARY):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("redis-server not found: run `make test`, which installs it")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(port: int, *args: str, timeout: float = 5.0) -> bytes:
    """Send one RESP command and return the first reply line."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.strip()


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RedisServer:
    """A redis-server subprocess on 127.0.0.1 with no persistence."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("redis-server") or _DEFAULT_BINARY
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="redis-test-")
        self._log_path = os.path.join(self._dir, "redis.log")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)

    @property
    def port(self) -> int:
        """The port (fixed at first start, reused by restarts)."""
        if self._port is None:
            raise RuntimeError("RedisServer has not been started")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the subprocess is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> RedisServer:
        """Start (or restart on the same port) and wait until it answers PING."""
        if self.running:
            return self
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            self.binary = ensure_redis_server_binary()
        if self._port is None:
            self._port = _free_port()
        self._log = open(self._log_path, "ab")
        self._proc = subprocess.Popen(
            [self.binary, "--port", str(self._port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self._dir],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=self._dir)
        weakref.finalize(self, _stop_process, self._proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self.ping():
                return self
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING on port {self._port} within "
                           f"{timeout}s; log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate (kill after 5 s); safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process(proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        self._finalizer()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        """True if the server answers PING now."""
        if self._port is None:
            return False
        try:
            return _command(self._port, "PING", timeout=0.5) == b"+PONG"
        except OSError:
            return False

    def flush(self) -> None:
        """FLUSHALL."""
        reply = _command(self.port, "FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")

    def keys_without_ttl(self) -> list[str]:
        """Every key that would live for ever (the service must give each one a TTL)."""
        import redis  # the real client; this module otherwise needs nothing but the stdlib

        client = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)
        try:
            return sorted(k for k in client.scan_iter(count=1000) if client.ttl(k) == -1)
        finally:
            client.close()

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log file."""
        try:
            with open(self._log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - chars))
                return f.read().decode(errors="replace")
        except OSError:
            return "<no log>"
