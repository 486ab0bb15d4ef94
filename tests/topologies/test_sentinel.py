"""Two instances of two Hypercorn workers each on a master that Sentinel watches: the
master dies under load, Sentinel promotes the replica, and the service follows it."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import azure_env
from tests.support import fake_model as fm
from tests.support.redis_topologies import SentinelSet
from tests.topologies.conftest import sentinel_env
from tests.topologies.test_cluster import crashes, warnings
from tests.topologies.traffic import AFTER, calls_about, storm, watch_through

pytestmark = [pytest.mark.e2e, pytest.mark.topologies]


def test_a_failover_under_load_costs_no_5xx_and_readiness_is_back_within_10_s(serve,
                                                                              fake_model):
    with SentinelSet() as sentinels:  # its own: this one loses its master
        env = azure_env(fake_model, **sentinel_env(sentinels), RATE_LIMIT_PER_MINUTE="0",
                        TRUSTED_PROXIES="127.0.0.0/8", LOG_FORMAT="json",
                        VARIETY_SERVES_PER_ITEM="0")  # counts the single flight alone
        servers = [serve("--workers", "2", **env) for _ in range(2)]
        urls = [server.url for server in servers]
        fake_model.set_default(fm.slow(0.05))
        old = sentinels.current_master()
        watch = asyncio.run(watch_through(urls, old.kill))
        assert watch.statuses and max(watch.statuses) < 500, crashes(servers)[:1]
        assert watch.first_probe_after_event() == 503  # honest: there is no master yet
        # The Done-when figure (sentinels agree after 1 s of silence, promote, and the
        # service asks them again after its 2 s gate); never recovering fails after 60 s.
        assert watch.ready_again_after(len(urls)) <= 10.0
        assert sentinels.current_master() is sentinels.replica

        # Shared state again, on the new master: one model call for a storm.
        fake_model.set_default(fm.slow(1.0))
        replies = asyncio.run(storm(urls, 100, AFTER))
        assert {reply.status_code for reply in replies} == {200}
        assert calls_about(fake_model, AFTER) == 1, warnings(servers)
        assert sentinels.replica.client().dbsize() > 0  # written to the promoted replica
        assert crashes(servers) == []
