"""Keys designed for a Redis Cluster: whatever one script, pipeline or wake-up touches
shares a hash tag, so it lives in one slot (CROSSSLOT is impossible by construction)."""

from __future__ import annotations

from redis.crc import key_slot

from ielts_service.llm.budget import KEY as BUDGET
from ielts_service.state.flight import lock_name
from ielts_service.state.pools import pool_key
from ielts_service.state.quota import client_key
from ielts_service.state.rate_store import KEY_PREFIX
from ielts_service.state.redis import client_tag, hash_tag, tag_of
from ielts_service.state.wakeup import ready_channel


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_a_pools_key_lease_and_ready_channel_share_one_slot():
    for topic in ("volcanoes", "a memorable journey", "x" * 120, "{braces} in a topic}"):
        key = pool_key(2, topic, "p2-28e4f385dcd2", "gpt-4o")
        assert slot(key) == slot(lock_name(key)) == slot(ready_channel(tag_of(key)))
    # ...and different pools spread over the slots instead of piling onto one node.
    slots = {slot(pool_key(1, f"topic {n}", "v", "m")) for n in range(200)}
    assert len(slots) > 190


def test_the_budgets_two_buckets_share_one_slot():
    assert slot(f"{BUDGET}:requests") == slot(f"{BUDGET}:tokens")


def test_one_clients_limits_and_quotas_share_one_slot_and_clients_spread():
    for client in ("203.0.113.7", "key:mobile-app", "2001:db8::/64", "odd}name"):
        # The rate limiter's keys (guards.limits) and the quotas' (state.quota).
        keys = [f"{KEY_PREFIX}{client_tag(client)}:{n}:60" for n in (5, 60, 1000)]
        keys += [client_key(client, name) for name in ("gen", "authfail")]
        assert len({slot(k) for k in keys}) == 1
    spread = {slot(client_key(f"198.51.100.{n}", "gen")) for n in range(200)}
    assert len(spread) > 190


def test_a_tag_is_taken_from_a_key_or_made_for_it():
    assert tag_of("ielts:v1:pool:{abc}:m") == "{abc}"
    assert tag_of("no tag here") == hash_tag("no tag here")
    assert tag_of("empty {} braces") == hash_tag("empty {} braces")
