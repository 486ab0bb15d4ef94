"""Throughput runs with wrk (Debian's `wrk`), or the Python keep-alive client without it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.client import keepalive_load

THREADS = 1
CONNECTIONS = 32

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if not path:
        return "not installed"
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=5)
    first = (out.stdout + out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def _lua(payload: dict[str, Any]) -> str:
    body = json.dumps(json.dumps(payload))  # a Lua string literal is a JSON string here
    return (f'wrk.method = "POST"\nwrk.body = {body}\n'
            'wrk.headers["Content-Type"] = "application/json"\n')


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(output: str) -> dict[str, Any]:
    """Requests/sec, the latency distribution, non-2xx responses and socket errors."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rps:
        raise ValueError("no Requests/sec line in wrk's output:\n" + output)
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", output, re.MULTILINE))
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(dist["50"]), "p99_ms": _ms(dist["99"]),
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def load(url: str, payload: dict[str, Any], seconds: float,
         connections: int = CONNECTIONS) -> dict[str, Any]:
    """One closed-loop run of `seconds` with `connections` keep-alive connections."""
    path = wrk_path()
    if path is None:
        return keepalive_load(url, "/generate-question", payload, connections, seconds)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_lua(payload))
        cmd = [path, f"-t{THREADS}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
               "--timeout", "5s", "-s", str(script), url + "/generate-question"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return parse(out.stdout)
