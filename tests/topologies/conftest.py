"""Real Redis topologies (tests/support/redis_topologies.py), each started once per session
by the first test that asks for it.

Tests marked `topologies` are the full matrix: a plain `pytest` (so `make test`) leaves
them out and runs one representative per topology; `make test-topologies` runs every test
here (`TOPOLOGY_MATRIX=1 pytest tests/topologies`), and `pytest -m topologies` the marked
ones alone."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer
from tests.support.redis_topologies import Cluster, SentinelSet, TlsRedis

MARK = "topologies"
PASSWORD = "tls-redis-pass-5c81e0"  # the TLS Redis's password: it must show up nowhere


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}: the full topology matrix (make test-topologies)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TOPOLOGY_MATRIX") == "1" or MARK in (config.getoption("markexpr") or ""):
        return  # everything, or what the expression (`-m topologies`) selects
    matrix = [item for item in items if item.get_closest_marker(MARK)]
    if matrix:
        config.hook.pytest_deselected(items=matrix)
        items[:] = [item for item in items if not item.get_closest_marker(MARK)]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with Cluster() as started:
        yield started


@pytest.fixture(scope="session")
def cluster_tls() -> Iterator[Cluster]:
    """A cluster that speaks only TLS and wants a password, as managed clusters do."""
    with Cluster(tls=True, password="cluster-pass-0b6d2e") as started:
        yield started


@pytest.fixture(scope="session")
def sentinel_set() -> Iterator[SentinelSet]:
    with SentinelSet() as started:
        yield started


@pytest.fixture(scope="session")
def sentinel_tls() -> Iterator[SentinelSet]:
    """A Sentinel set that speaks only TLS, its master and replica with a password."""
    with SentinelSet(tls=True, password="sentinel-pass-6a0c1f") as started:
        yield started


@pytest.fixture(scope="session")
def tls_redis() -> Iterator[TlsRedis]:
    """A Redis that speaks only TLS and wants a password: reached with its CA file."""
    with TlsRedis(PASSWORD) as started:
        yield started


@pytest.fixture(scope="session")
def mutual_tls_redis() -> Iterator[TlsRedis]:
    """The same, refusing clients without a certificate its CA signed."""
    with TlsRedis(PASSWORD, client_certs=True) as started:
        yield started


def cluster_env(cluster: Cluster) -> dict[str, str]:
    return {"REDIS_URL": cluster.url, "REDIS_MODE": "cluster"}


def sentinel_env(sentinels: SentinelSet) -> dict[str, str]:
    scheme = "rediss" if sentinels.tls else "redis"
    auth = f":{sentinels.password}@" if sentinels.password else ""
    env = {"REDIS_URL": f"{scheme}://{auth}{sentinels.name}/0", "REDIS_MODE": "sentinel",
           "REDIS_SENTINELS": sentinels.addresses, "REDIS_SENTINEL_MASTER": sentinels.name}
    return {**env, "REDIS_CA_FILE": str(sentinels.tls.ca_file)} if sentinels.tls else env


def tls_env(tls: TlsRedis) -> dict[str, str]:
    """The URL (with the password) and the CA file; the client pair when it wants one."""
    env = {"REDIS_URL": tls.url, "REDIS_CA_FILE": str(tls.tls.ca_file)}
    if tls.client_certs:
        env.update(REDIS_CERT_FILE=str(tls.tls.cert_file), REDIS_KEY_FILE=str(tls.tls.key_file))
    return env


def cluster_tls_env(cluster: Cluster) -> dict[str, str]:
    assert cluster.tls is not None
    return {**cluster_env(cluster), "REDIS_CA_FILE": str(cluster.tls.ca_file)}


@pytest.fixture
def store(request: pytest.FixtureRequest) -> dict[str, str]:
    """The service's Redis settings for the topology the test is parametrized with
    (`standalone`, `cluster`, `cluster-tls`, `sentinel`, `sentinel-tls`, `tls`: TLS with a
    password and a client certificate), on an empty store."""
    topology = request.param
    if topology == "standalone":
        server: RedisServer = request.getfixturevalue("redis")
        return {"REDIS_URL": server.url}
    fixture, env = {"cluster": ("cluster", cluster_env),
                    "cluster-tls": ("cluster_tls", cluster_tls_env),
                    "sentinel": ("sentinel_set", sentinel_env),
                    "sentinel-tls": ("sentinel_tls", sentinel_env),
                    "tls": ("mutual_tls_redis", tls_env)}[topology]
    started = request.getfixturevalue(fixture)
    started.flush()
    return env(started)
