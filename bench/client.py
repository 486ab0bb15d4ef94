"""A raw-socket asyncio HTTP/1.1 client for the storms, and a keep-alive load loop.

Hand-written because httpx spends about a millisecond of CPU per request: with 1,000
requests on 2 cores the client would cost more than the service it measures.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

CONNECT_BATCH = 100  # below Hypercorn's listen backlog (100): no SYN is dropped


@dataclass
class Result:
    request_id: str
    status: int  # 0: transport error or timeout
    sent_at: float  # time.monotonic()
    done_at: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    @property
    def latency(self) -> float:
        return self.done_at - self.sent_at

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def post_bytes(host: str, port: int, path: str, payload: dict[str, Any], request_id: str) -> bytes:
    body = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-ID: {request_id}\r\n\r\n")
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        return status, headers, b"".join(c[:-2] for c in chunks)
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    return status, headers, await reader.read()


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_connections(host: str, port: int, n: int) -> list[Conn]:
    """`n` open connections, opened in batches that the listen backlog can take."""
    conns: list[Conn] = []
    for start in range(0, n, CONNECT_BATCH):
        batch = [asyncio.open_connection(host, port) for _ in range(min(CONNECT_BATCH, n - start))]
        conns += await asyncio.wait_for(asyncio.gather(*batch), timeout=10)
    return conns


async def _one(conn: Conn, request_id: str, raw: bytes, timeout: float) -> Result:
    reader, writer = conn
    sent = time.monotonic()
    try:
        writer.write(raw)
        status, headers, body = await asyncio.wait_for(read_response(reader), timeout)
        return Result(request_id, status, sent, time.monotonic(), headers, body)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return Result(request_id, 0, sent, time.monotonic(), error=type(exc).__name__)


async def _storm(host: str, port: int, path: str, requests: list[tuple[str, dict[str, Any]]],
                 timeout: float) -> tuple[float, list[Result]]:
    raws = [(rid, post_bytes(host, port, path, p, rid)) for rid, p in requests]
    conns = await open_connections(host, port, len(raws))
    try:
        fired = time.monotonic()
        results = await asyncio.gather(
            *(_one(conn, rid, raw, timeout) for conn, (rid, raw) in zip(conns, raws, strict=True)))
        return fired, list(results)
    finally:
        for _, writer in conns:
            writer.close()


def storm(url: str, path: str, requests: list[tuple[str, dict[str, Any]]],
          timeout: float = 40.0) -> tuple[float, list[Result]]:
    """Open one connection per request first, then fire them all at once.

    Returns the monotonic time of the first send and each request's result."""
    host, port = _host_port(url)
    return asyncio.run(_storm(host, port, path, requests, timeout))


def _host_port(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    return host, int(port)


async def _loop(host: str, port: int, raw: bytes, deadline: float, latencies: list[float],
                statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            sent = time.monotonic()
            writer.write(raw)
            try:
                status, _, _ = await asyncio.wait_for(read_response(reader), 10)
            except asyncio.IncompleteReadError:  # closed after Hypercorn's
                writer.close()  # keep_alive_max_requests (1000): reconnect, as wrk does
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(time.monotonic() - sent)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def keepalive_load(url: str, path: str, payload: dict[str, Any], connections: int,
                   seconds: float) -> dict[str, Any]:
    """The fallback when wrk is missing: closed-loop keep-alive connections for `seconds`."""
    host, port = _host_port(url)
    raw = post_bytes(host, port, path, payload, "bench-load")
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def run() -> float:
        start = time.monotonic()
        deadline = start + seconds
        await asyncio.gather(*(_loop(host, port, raw, deadline, latencies, statuses)
                               for _ in range(connections)))
        return time.monotonic() - start

    elapsed = asyncio.run(run())
    non_2xx = sum(n for s, n in statuses.items() if not 200 <= s < 400)
    return {"rps": len(latencies) / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "requests": len(latencies),
            "non_2xx": non_2xx, "socket_errors": 0}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]
