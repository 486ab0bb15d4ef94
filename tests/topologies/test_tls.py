"""A TLS Redis with a password, reached with its CA file (and, when it asks, a client
certificate): the service is ready on it, shares state through it, and its password
shows up nowhere."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import azure_env
from tests.topologies.conftest import PASSWORD, tls_env

pytestmark = pytest.mark.e2e
URL = "/generate-question"


def test_a_tls_redis_with_a_password_is_ready_and_the_password_is_in_no_log_line(
        serve, fake_model, tls_redis):
    tls_redis.flush()
    server = serve(**azure_env(fake_model, **tls_env(tls_redis), LOG_LEVEL="debug",
                               LOG_FORMAT="json"))
    ready = httpx.get(server.url + "/health/ready", timeout=10)
    sources = [httpx.post(server.url + URL, json={"topic": "gardens"}, timeout=30)
               .json()["data"]["source"] for _ in range(2)]
    output = "\n".join(server.stop())
    cache = ready.json()["data"]["checks"]["cache"]
    assert ready.status_code == 200 and cache["state"] == "ok" and cache["backend"] == "redis"
    assert sources == ["ai", "cache"] and len(fake_model.requests) == 1
    assert tls_redis.client().dbsize() > 0  # the pool, the limit and the fingerprints
    assert '"event": "services_opened"' in output  # the log was read, and it is JSON
    assert PASSWORD not in output and PASSWORD not in ready.text


@pytest.mark.topologies
def test_a_wrong_password_is_a_down_cache_named_without_either_password(serve, fake_model,
                                                                        tls_redis):
    wrong = "not-the-password-7f3e"
    env = {**tls_env(tls_redis), "REDIS_URL": tls_redis.url.replace(PASSWORD, wrong)}
    server = serve(**azure_env(fake_model, **env, LOG_LEVEL="debug", LOG_FORMAT="json"))
    ready = httpx.get(server.url + "/health/ready", timeout=10)
    answer = httpx.post(server.url + URL, json={"topic": "gardens"}, timeout=30)
    output = "\n".join(server.stop())
    assert ready.status_code == 503 and ready.json()["checks"]["cache"]["state"] == "down"
    assert answer.status_code == 200  # served without the shared store
    assert "cache_error" in output
    for secret in (wrong, PASSWORD):
        assert secret not in output and secret not in ready.text


@pytest.mark.topologies
def test_without_its_client_certificate_the_tls_redis_refuses_and_the_service_says_so(
        serve, fake_model, mutual_tls_redis):
    env = {"REDIS_URL": mutual_tls_redis.url, "REDIS_CA_FILE": str(mutual_tls_redis.tls.ca_file)}
    server = serve(**azure_env(fake_model, **env, LOG_FORMAT="json"))
    ready = httpx.get(server.url + "/health/ready", timeout=10)
    output = "\n".join(server.stop())
    assert ready.status_code == 503 and ready.json()["checks"]["cache"]["state"] == "down"
    assert PASSWORD not in output and PASSWORD not in ready.text
