"""A local OTLP/HTTP trace receiver: what a collector (Jaeger, Tempo, an OpenTelemetry
Collector) would be sent, decoded with the OpenTelemetry protobuf definitions.

`OtlpReceiver().start()` listens on a free loopback port; point OTEL_EXPORTER_OTLP_ENDPOINT
at `receiver.url`. `spans()` is every span received so far, flattened; `posts` keeps each
export's headers, so tests can check what the exporter sent along.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


@dataclass
class Span:
    """One received span, with ids as lower-case hex."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    links: list[tuple[str, str]]  # (trace id, span id)
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str

    def text(self) -> str:
        """Everything a span carries, as one string: for "does X appear anywhere" checks."""
        return repr((self.name, self.attributes, self.status_message, self.events,
                     self.resource))


@dataclass
class Export:
    headers: dict[str, str]
    spans: list[Span] = field(default_factory=list)


def decode(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(Span(
                    trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                    parent_id=s.parent_span_id.hex(), name=s.name,
                    kind=KINDS.get(s.kind, str(s.kind)),
                    attributes={kv.key: _value(kv.value) for kv in s.attributes},
                    status_code=s.status.code, status_message=s.status.message,
                    links=[(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                    events=[(e.name, {kv.key: _value(kv.value) for kv in e.attributes})
                            for e in s.events],
                    resource=resource, scope=scope_spans.scope.name,
                ))
    return spans


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        export = Export({k.lower(): v for k, v in self.headers.items()}, decode(body))
        with self.server.lock:
            self.server.received += len(export.spans)
            if self.server.keep:
                self.server.exports.append(export)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, keep: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.keep = keep
        self.exports: list[Export] = []
        self.received = 0


class OtlpReceiver:
    """`keep=False` only counts spans (`received`), for long runs such as the benchmark's."""

    def __init__(self, keep: bool = True) -> None:
        self._server = _Server(keep)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def received(self) -> int:
        with self._server.lock:
            return self._server.received

    @property
    def posts(self) -> list[Export]:
        with self._server.lock:
            return list(self._server.exports)

    def spans(self, trace_id: str | None = None) -> list[Span]:
        """Every span received, or those of one trace."""
        found = [s for export in self.posts for s in export.spans]
        return [s for s in found if trace_id is None or s.trace_id == trace_id]

    def clear(self) -> None:
        with self._server.lock:
            self._server.exports.clear()
