"""Optional error tracking: with SENTRY_DSN, a 500 reaches Sentry with its request id and no
secret; without it, nothing is started. A local HTTP server stands in for Sentry's ingest."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sentry_sdk

from ielts_service.app import create_app
from tests.conftest import AZURE_KEY, azure_env

ADMIN_TOKEN = "admin-token-for-sentry-test-8d1e"


class FakeIngest(ThreadingHTTPServer):
    """Sentry's envelope endpoint (`/api/<project>/envelope/`): keeps what it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), IngestHandler)
        self.bodies: list[bytes] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        """The `event` items of every envelope received (each item is a header line, then
        `length` bytes of payload or one line)."""
        found = []
        for body in self.bodies:
            rest = body.split(b"\n", 1)[1]  # after the envelope header
            while rest.strip():
                header_line, rest = rest.split(b"\n", 1)
                header = json.loads(header_line)
                length = header.get("length")
                if length is None:
                    payload, _, rest = rest.partition(b"\n")
                else:
                    payload, rest = rest[:length], rest[length:].lstrip(b"\n")
                if header.get("type") == "event":
                    found.append(json.loads(payload))
        return found


class IngestHandler(BaseHTTPRequestHandler):
    server: FakeIngest

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "identity")
        assert encoding in ("gzip", "identity"), encoding
        self.server.bodies.append(gzip.decompress(body) if encoding == "gzip" else body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@pytest.fixture
def ingest() -> Iterator[FakeIngest]:
    server = FakeIngest()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def sentry_cleanup() -> Iterator[None]:
    """Whatever a test starts, the next test finds no Sentry client."""
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    assert not sentry_sdk.get_client().is_active()


@pytest.mark.internal_error_expected
async def test_an_unhandled_exception_reaches_sentry_with_its_request_id_and_no_secret(
        ingest, fake_model, make_settings, sentry_cleanup):
    settings = make_settings(azure_env(fake_model, SENTRY_DSN=ingest.dsn, ADMIN_TOKEN=ADMIN_TOKEN))
    app = create_app(settings)

    @app.get("/test-only/boom")
    async def boom() -> None:
        key = settings.azure_openai_api_key.get_secret_value()  # a local Sentry may record
        raise RuntimeError(f"failed with key {key} and token {ADMIN_TOKEN}")

    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.get("/test-only/boom", headers={"X-Request-ID": "req-boom-1"})
        assert (await client.get("/health/live")).status_code == 200
    assert response.status_code == 500
    assert (await response.get_json())["code"] == "internal_error"
    sentry_sdk.flush(timeout=30)  # returns as soon as the event is sent

    [event] = ingest.events()
    assert event["tags"]["request_id"] == "req-boom-1"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "[REDACTED]" in event["exception"]["values"][-1]["value"]
    sent = b"".join(ingest.bodies).decode()
    assert {AZURE_KEY, ADMIN_TOKEN, ingest.dsn} <= set(settings.secret_values())
    for secret in settings.secret_values():
        assert secret not in sent


async def test_without_a_dsn_error_tracking_stays_off(make_settings, sentry_cleanup):
    create_app(make_settings())
    assert not sentry_sdk.get_client().is_active()


def test_a_malformed_dsn_is_refused_without_printing_it(make_settings):
    from ielts_service.config import ConfigError

    with pytest.raises(ConfigError, match="^SENTRY_DSN: must look like") as refused:
        make_settings(SENTRY_DSN="sentry.example/no-key-here")
    assert "no-key-here" not in str(refused.value)
