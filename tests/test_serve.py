"""`ielts-service serve`: a real Hypercorn process, as `make run` starts it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from tests.conftest import AZURE_KEY, azure_env
from tests.support import fake_model as fm
from tests.support.process import ROOT, base_env

pytestmark = pytest.mark.e2e


# Runs where the server runs (its own network namespace when it has one): brings up `lo`,
# starts the command in the repository root, asks it what a student and an operator would,
# and prints one JSON line with what it saw.
AS_MAKE_RUN = r"""
import fcntl, json, os, signal, socket, struct, subprocess, sys, time
import httpx

command, cwd, env, up_loopback = json.loads(sys.argv[1])
if up_loopback:  # SIOCGIFFLAGS / SIOCSIFFLAGS | IFF_UP on lo: no iproute2 needed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))
server = subprocess.Popen("exec " + command, shell=True, cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
url, seen = "http://127.0.0.1:8000", {}
try:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/health/live", timeout=1)
            break
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not answer on 127.0.0.1:8000")
            time.sleep(0.05)  # polling a condition with a deadline
    card = httpx.post(url + "/generate-question", json={"topic": "a memorable trip", "part": 2},
                      timeout=10)
    ready = httpx.get(url + "/health/ready", timeout=10)
    seen = {"status": card.status_code, "request_id": card.headers.get("X-Request-ID"),
            "card": card.json(), "ready": ready.json()}
finally:
    server.terminate()  # SIGTERM to the master, which stops its workers
    try:
        output = server.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        print("the server did not stop within 30 s of SIGTERM", flush=True)
        os.killpg(0, signal.SIGKILL)  # this process group: the server, its workers, and us
    print("\n" + json.dumps({**seen, "output": output.decode(errors="replace")}))
"""


def make_run_command() -> str:
    """The command `make run` runs once installed (its last line), as make prints it."""
    if shutil.which("make") is None:
        return f"{sys.executable} -m ielts_service serve"  # what the recipe names, no make
    dry = subprocess.run(["make", "--no-print-directory", "-n", "run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    return dry.stdout.strip().splitlines()[-1]


def isolated_prefix() -> tuple[list[str], bool]:
    """How to run on 127.0.0.1:8000 without touching the machine's own: a network namespace
    of its own (`unshare -n`, root), else the host when 8000 is free there, else a skip."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", "--"], True
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8000)) != 0:
            return [], False
    pytest.skip("127.0.0.1:8000 is taken on this machine and no network namespace can be "
                "made (`unshare -n` needs root): the make-run defaults cannot be served apart")


def test_make_run_defaults_serve_a_cue_card_from_the_bank():
    """`make run` on a fresh machine: no configuration, the repository root as the working
    directory, hypercorn.toml's bind (127.0.0.1:8000), prompts/ found relative to it."""
    if (ROOT / ".env").exists():
        pytest.skip("a .env in the repository root configures `make run` on this machine: "
                    "the embedded defaults are not what it serves")
    prefix, own_network = isolated_prefix()
    spec = [make_run_command(), str(ROOT), base_env(), own_network]
    process = subprocess.Popen([*prefix, sys.executable, "-c", AS_MAKE_RUN, json.dumps(spec)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, err + out
    seen = json.loads(out.strip().splitlines()[-1])
    body = seen["card"]
    assert seen["status"] == 200 and body["status"] == "success", seen
    assert body["data"]["source"] == "bank" and body["data"]["part"] == 2
    assert body["data"]["cue_card"]["title"].startswith("Describe")
    assert seen["request_id"]
    checks = seen["ready"]["data"]["checks"]
    assert checks["model"]["provider"] == "bank"
    assert checks["prompts"]["parts"] == [1, 2, 3]  # prompts/ found relative to the root
    assert "127.0.0.1:8000" in seen["output"]  # hypercorn.toml's bind, in its own log line


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
