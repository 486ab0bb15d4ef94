"""Real parts for the suite: a redis-server and a fake Azure OpenAI server on free ports."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol

from ielts_service.app import create_app
from ielts_service.config import Settings, load_settings
from ielts_service.observability.logging import configure_logging
from tests.support.fake_model import FakeModel
from tests.support.process import Server, start_server
from tests.support.redis_server import RedisServer, ensure_redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
AZURE_KEY = "test-azure-key-3f9a1c"


def pytest_configure(config: pytest.Config) -> None:
    # Synchronous: each test's lines land in its own captured output, none after the summary.
    configure_logging("info", "json", background=False)
    config.addinivalue_line("markers", "internal_error_expected: the test provokes a 500 on purpose")


@pytest.fixture(autouse=True)
def no_internal_errors(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """No input in the suite may produce a 500: fail any test during which one was logged."""
    yield
    if request.node.get_closest_marker("internal_error_expected"):
        return
    crashes = [r for r in caplog.records
               if isinstance(r.msg, dict) and r.msg.get("event") == "unhandled_exception"]
    assert not crashes, f"a request answered 500: {crashes[0].msg}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(ensure_redis_server_binary()).start()
    yield server
    server.close()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, running and empty; after the test, every key in it must expire."""
    if not redis_server.running:
        redis_server.start()
    redis_server.flush()
    yield redis_server
    if not redis_server.running:
        redis_server.start()
        return
    forever = redis_server.keys_without_ttl()
    assert not forever, f"keys written without a TTL: {forever[:10]}"


@pytest.fixture(scope="session")
def fake_model_server() -> Iterator[FakeModel]:
    server = FakeModel().start()
    yield server
    server.stop()


@pytest.fixture
def fake_model(fake_model_server: FakeModel) -> Iterator[FakeModel]:
    """The fake Azure OpenAI server, with no scripted replies and no recorded requests."""
    fake_model_server.reset()
    yield fake_model_server
    fake_model_server.reset()


def azure_env(fake: FakeModel, **extra: str) -> dict[str, str]:
    env = {
        "AZURE_OPENAI_ENDPOINT": fake.url,
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-test",
        "AZURE_OPENAI_API_VERSION": "2024-10-21",
        "PROMPTS_DIR": str(ROOT / "prompts"),
        "AI_BACKOFF_BASE_SECONDS": "0.01",
        "AI_BACKOFF_MAX_SECONDS": "0.05",
    }
    env.update(extra)
    return env


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def build(env: dict[str, str] | None = None, **values: Any) -> Settings:
        merged = {"PROMPTS_DIR": str(ROOT / "prompts"), **(env or {})}
        merged.update({k.upper(): str(v) for k, v in values.items()})
        return load_settings(merged, env_file=None)

    return build


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start an app (its serving hooks run) for given settings; returns its test client."""
    contexts = []

    async def start(settings: Settings) -> TestClientProtocol:
        app = create_app(settings)
        context = app.test_app()
        await context.__aenter__()
        contexts.append(context)
        return app.test_client()

    yield start
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)


@pytest.fixture
async def bank_client(make_client: Any, make_settings: Any) -> TestClientProtocol:
    """The service as `make run` starts it: no keys, no Redis, the offline bank."""
    return await make_client(make_settings())


@pytest.fixture
async def azure_client(
    make_client: Any, make_settings: Any, fake_model: FakeModel, redis: RedisServer
) -> TestClientProtocol:
    """The service on the fake Azure server with the test Redis as its cache."""
    return await make_client(make_settings(azure_env(fake_model, REDIS_URL=redis.url)))


@pytest.fixture
def log_events(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The structlog events logged so far in this test, as dicts."""
    caplog.set_level("INFO")

    def events() -> list[dict[str, Any]]:
        return [dict(r.msg) for r in caplog.records if isinstance(r.msg, dict)]

    return events


@pytest.fixture
async def client_with_attempts(
    make_client: Any, make_settings: Any, fake_model: FakeModel
) -> TestClientProtocol:
    """The service on the fake Azure server, two attempts per request."""
    return await make_client(make_settings(azure_env(fake_model, AI_MAX_ATTEMPTS="2")))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start real `ielts-service serve` processes (extra CLI args, environment); stop them after."""
    servers: list[Server] = []

    def start(*args: str, **env: str) -> Server:
        servers.append(start_server(tmp_path, *args, **env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A Redis URL whose port accepts connections and never answers (a hung Redis)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
