"""`ielts-service serve`: a real Hypercorn process, as `make run` starts it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import httpx
import pytest

from tests.conftest import AZURE_KEY, azure_env
from tests.support import fake_model as fm
from tests.support.process import base_env

pytestmark = pytest.mark.e2e


def test_make_run_defaults_serve_a_cue_card_from_the_bank(serve):
    url = serve().url
    response = httpx.post(url + "/generate-question",
                          json={"topic": "a memorable trip", "part": 2}, timeout=5)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success"
    assert body["data"]["source"] == "bank"
    assert body["data"]["cue_card"]["title"].startswith("Describe")
    assert response.headers["X-Request-ID"]


def test_azure_first_ai_then_cache_with_one_model_call(serve, fake_model, redis):
    url = serve(**azure_env(fake_model, REDIS_URL=redis.url)).url
    sources = [httpx.post(url + "/generate-question", json={"topic": "gardens"},
                          timeout=10).json()["data"]["source"] for _ in range(2)]
    assert sources == ["ai", "cache"] and len(fake_model.requests) == 1


def test_body_limit_is_enforced_before_the_body_is_read(serve):
    url = serve().url
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /generate-question HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{")
        reply = b""
        while b'"}' not in reply:  # the envelope's end; recv times out after 5 s
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    text = reply.decode("latin-1")
    assert text.startswith("HTTP/1.1 413")
    assert '"code":"payload_too_large"' in text


def test_a_bad_configuration_stops_start_up_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ielts_service", "serve", "--bind", "127.0.0.1:1"],
        cwd=tmp_path, capture_output=True, timeout=30, text=True,
        env=base_env(AZURE_OPENAI_ENDPOINT="https://x.example", AZURE_OPENAI_API_KEY=AZURE_KEY,
                     AZURE_OPENAI_DEPLOYMENT="d", REQUEST_TIMEOUT_SECONDS="forever"),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "REQUEST_TIMEOUT_SECONDS" in lines[0]
    assert AZURE_KEY not in result.stderr + result.stdout


def test_a_short_admin_token_stops_start_up_naming_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ielts_service", "serve", "--bind", "127.0.0.1:1"],
        cwd=tmp_path, capture_output=True, timeout=30, text=True,
        env=base_env(ADMIN_TOKEN="short-admin-token-1234"),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].count("ADMIN_TOKEN") == 1 and "32" in lines[0]
    assert "short-admin-token-1234" not in result.stderr + result.stdout


def test_a_request_outlasting_hypercorns_read_timeout_is_still_answered(serve, fake_model,
                                                                        tmp_path):
    # Hypercorn closes a connection that sends nothing for read_timeout seconds, also while
    # its request waits for the model: `serve` raises it past REQUEST_TIMEOUT_SECONDS.
    config = tmp_path / "short.toml"
    config.write_text("read_timeout = 1\n")
    server = serve("--config", str(config), **azure_env(fake_model))
    fake_model.set_default(fm.slow(3))
    response = httpx.post(server.url + "/generate-question", json={"topic": "volcanoes"},
                          timeout=60)
    assert response.status_code == 200 and response.json()["data"]["source"] == "ai"


def test_a_body_that_dribbles_in_is_refused_after_body_timeout(serve):
    url = serve(BODY_TIMEOUT_SECONDS="1").url
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /generate-question HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        reply = b""
        while b'"}' not in reply:  # the envelope's end; never sent if nobody times the body
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    text = reply.decode("latin-1")
    assert text.startswith("HTTP/1.1 408") and '"code":"request_timeout"' in text


def test_logs_are_json_lines_with_request_ids_and_a_clean_sigterm(serve):
    server = serve(LOG_FORMAT="json")
    rid = "trace-me-123"
    httpx.post(server.url + "/generate-question", json={"part": 7},
               headers={"X-Request-ID": rid}, timeout=5)
    output = server.stop()
    entries = [json.loads(line) for line in output if line.strip()]
    assert server.process.returncode == 0
    assert any(e["event"] == "request" and e["status"] == 422 and e["request_id"] == rid
               for e in entries)
