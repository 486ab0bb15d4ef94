"""Health endpoints an orchestrator can trust, bounded even when a dependency goes silent."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import azure_env


class SilentRedis:
    """A port that accepts connections and never answers (a hung Redis), counting callers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.setblocking(False)
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.accepted: list[socket.socket] = []

    def connections(self) -> int:
        """How many connections were made to it so far."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self.accepted.append(self.listener.accept()[0])
        return len(self.accepted)

    def close(self) -> None:
        for conn in [*self.accepted, self.listener]:
            conn.close()


@pytest.fixture
def silent_redis() -> Iterator[SilentRedis]:
    server = SilentRedis()
    yield server
    server.close()


async def test_live_checks_nothing_but_the_process(make_client, make_settings, silent_redis):
    client = await make_client(make_settings(REDIS_URL=silent_redis.url))
    before = silent_redis.connections()
    response = await client.get("/health/live")
    assert response.status_code == 200 and silent_redis.connections() == before


async def test_ready_lists_each_check_with_state_and_latency(azure_client):
    response = await azure_client.get("/health/ready")
    body = await response.get_json()
    assert response.status_code == 200
    checks = body["data"]["checks"]
    assert set(checks) == {"cache", "prompts", "model"}
    assert all(c["state"] == "ok" and c["latency_ms"] >= 0 for c in checks.values())
    assert checks["cache"]["backend"] == "redis" and checks["prompts"]["parts"] == [1, 2, 3]


async def test_ready_answers_503_without_waiting_out_a_long_redis_timeout(
    make_client, make_settings, fake_model, silent_redis
):
    # Redis may take 10 s to time out; readiness caps each check well below that.
    client = await make_client(make_settings(azure_env(fake_model, REDIS_URL=silent_redis.url,
                                                       REDIS_TIMEOUT_SECONDS="10")))
    started = time.monotonic()
    response = await client.get("/health/ready")
    elapsed = time.monotonic() - started
    body = await response.get_json()
    assert response.status_code == 503 and elapsed < 5
    assert body["code"] == "not_ready" and body["checks"]["cache"]["state"] == "down"
    assert body["checks"]["cache"]["error"] == "timeout"
    assert body["checks"]["model"]["state"] == "ok"


async def test_ready_is_503_when_redis_is_down_and_200_when_it_is_back(azure_client, redis):
    redis.stop()
    down = await azure_client.get("/health/ready")
    redis.start()
    up = await azure_client.get("/health/ready")
    assert down.status_code == 503 and up.status_code == 200


async def test_ready_says_only_that_a_reload_failed(make_client, make_settings, fake_model,
                                                   tmp_path):
    import shutil
    from pathlib import Path

    prompts = tmp_path / "prompts"
    shutil.copytree(Path(__file__).resolve().parents[2] / "prompts", prompts)
    token = "admin-token-0123456789abcdef-0123456789"
    client = await make_client(make_settings(azure_env(
        fake_model, ADMIN_TOKEN=token, PROMPTS_DIR=str(prompts), PROMPTS_RELOAD_SECONDS="0")))
    (prompts / "part2.txt").write_text("---\ndescription: broken\n---\n{% if %}")
    auth = {"Authorization": f"Bearer {token}"}
    await client.post("/admin/prompts/reload", headers=auth)
    ready = await client.get("/health/ready")
    text = await ready.get_data(as_text=True)
    checks = (await ready.get_json())["data"]["checks"]
    assert ready.status_code == 200 and checks["prompts"]["reload_failed"] is True
    assert "part2.txt" not in text and "gpt-4o-test" not in text  # nor the deployment's name
    assert checks["model"] == {"state": "ok", "provider": "azure", "circuit": "closed",
                               "latency_ms": checks["model"]["latency_ms"]}
    admin = await (await client.get("/admin/prompts", headers=auth)).get_json()
    assert "part2.txt" in str(admin["data"]["error"])  # the operator still reads the details
