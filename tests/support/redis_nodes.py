"""The parts of a real Redis topology: one `redis-server` process (a node or a sentinel) on a
free port of 127.0.0.1, TLS material that `openssl` makes at test time, and the base of a
topology (its nodes, started and stopped together). `redis_topologies.py` builds on them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import redis

from tests.support.redis_server import _free_port, ensure_redis_server_binary

START_TIMEOUT = 60.0  # a failing start's deadline: generous, a loaded machine is slow
BASE = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]



def _until(check: Callable[[], object], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout} s")
        time.sleep(0.05)


def _ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(_free_port())
    return sorted(ports)


class Tls:
    """A CA, and a server and a client certificate it signed (for 127.0.0.1), made with
    `openssl` in `root`; the server arguments that turn TLS on; the client's options."""

    def __init__(self, root: Path) -> None:
        self.root = root

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True,
                           timeout=START_TIMEOUT)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=ielts-test-ca")
        (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for name in ("server", "client"):
            openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                    "-subj", f"/CN={name}")
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                    "-extfile", "san.ext")
        for key in root.glob("*.key"):
            os.chmod(key, 0o600)

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    @property
    def cert_file(self) -> Path:
        return self.root / "client.crt"

    @property
    def key_file(self) -> Path:
        return self.root / "client.key"

    def server_args(self, port: int, client_certs: bool) -> list[str]:
        """Serve TLS only, on `port`; replicas and cluster buses speak TLS too."""
        return ["--port", "0", "--tls-port", str(port), "--tls-replication", "yes",
                "--tls-cert-file", str(self.root / "server.crt"),
                "--tls-key-file", str(self.root / "server.key"),
                "--tls-ca-cert-file", str(self.ca_file),
                "--tls-auth-clients", "yes" if client_certs else "no"]

    def client_options(self) -> dict[str, Any]:
        return {"ssl": True, "ssl_ca_certs": str(self.ca_file),
                "ssl_certfile": str(self.cert_file), "ssl_keyfile": str(self.key_file)}


class Node:
    """One redis-server process; `args` after the common ones, `conf` a config file."""

    def __init__(self, root: Path, port: int, args: list[str], conf: str | None = None,
                 client: dict[str, Any] | None = None) -> None:
        self.port, self.args, self.conf = port, args, conf
        self.dir = root / str(port)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.client_options = {"host": "127.0.0.1", "port": port, "socket_timeout": 5,
                               "decode_responses": True, **(client or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Node:
        conf = []
        if self.conf is not None:
            (self.dir / "node.conf").write_text(self.conf)
            conf = [str(self.dir / "node.conf")]
        self._log = open(self.dir / "log", "ab")
        self._proc = subprocess.Popen(
            [ensure_redis_server_binary(), *conf, *BASE, *self.args, "--dir", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(**self.client_options)

    def call(self, *args: Any) -> Any:
        with self.client() as r:
            return r.execute_command(*args)

    def ping(self) -> bool:
        try:
            return bool(self.call("PING"))
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL: the process dies as in a crash, without a goodbye to anyone."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 1500) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "<no log>"


class _Topology:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="redis-topology-"))
        self.nodes: list[Node] = []

    def _wait_all_answer(self) -> None:
        for node in self.nodes:
            _until(node.ping, f"redis on port {node.port} answering PING\n{node.log_tail()}")

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Any:
        return self.start()  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self.close()
