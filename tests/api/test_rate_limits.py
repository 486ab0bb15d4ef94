"""Rate limits: who a request counts against (one limit across routes, IPv6 by /64), one
limit shared through Redis, an outage."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import time

import pytest
import redis.asyncio as aioredis

from ielts_service.guards.clients import client_address
from tests.support.waiting import eventually
from tests.support.worker_metrics import per_worker, spread

PATH = "/generate-question"
UNTRUSTED = ("203.0.113.7", 50000)
PROXY = ("10.0.0.2", 50000)


async def hit(client, peer=UNTRUSTED, forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return await client.post(PATH, json={}, headers=headers, scope_base={"client": peer})


async def statuses(client, n, **kwargs):
    return [(await hit(client, **kwargs)).status_code for _ in range(n)]


async def limit_keys(url: str) -> dict[str, int]:
    """Each rate-limit key in Redis and its PTTL."""
    client = aioredis.from_url(url)
    try:
        keys = [k.decode() async for k in client.scan_iter(match="ielts:v1:rl:*")]
        return {key: await client.pttl(key) for key in keys}
    finally:
        await client.aclose()


def client_of(key: str) -> str:
    """The client a limit key counts: what its `{c:...}` hash tag holds."""
    return key.split("{c:", 1)[1].split("}", 1)[0]


@pytest.fixture
def limited(make_client, make_settings, redis):
    """An app on the test Redis with `per_minute` per client (more settings as keywords)."""

    async def start(per_minute: int, **env: str):
        return await make_client(make_settings(REDIS_URL=redis.url,
                                               RATE_LIMIT_PER_MINUTE=per_minute, **env))

    return start


async def test_spoofed_forwarded_for_from_an_untrusted_client_is_ignored(limited, redis):
    client = await limited(2)
    codes = [(await hit(client, forwarded=f"198.51.100.{n}")).status_code for n in range(4)]
    assert codes == [200, 200, 429, 429]
    keys = await limit_keys(redis.url)
    assert len(keys) == 1 and "{c:203.0.113.7}" in next(iter(keys))


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(limited, redis):
    client = await limited(1, TRUSTED_PROXIES="10.0.0.0/8")
    first = await statuses(client, 2, peer=PROXY, forwarded="198.51.100.1")
    second = await statuses(client, 1, peer=PROXY, forwarded="198.51.100.2")
    # The client cannot prepend its way out: the walk stops at the first untrusted hop.
    chained = await statuses(client, 1, peer=PROXY, forwarded="192.0.2.9, 198.51.100.1, 10.0.0.3")
    assert first == [200, 429] and second == [200] and chained == [429]
    assert sorted(client_of(k) for k in await limit_keys(redis.url)) == [
        "198.51.100.1", "198.51.100.2"]


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    (("203.0.113.7", 1), ["1.1.1.1"], "203.0.113.7"),                # untrusted peer
    (("10.0.0.2", 1), [], "10.0.0.2"),                               # proxy, no header
    (("10.0.0.2", 1), ["1.1.1.1, 2.2.2.2"], "2.2.2.2"),              # rightmost untrusted
    (("10.0.0.2", 1), ["1.1.1.1", "2.2.2.2, 10.0.0.9"], "2.2.2.2"),  # two header lines
    (("10.0.0.2", 1), ["1.1.1.1, junk, 10.0.0.9"], "10.0.0.9"),      # malformed: last good
    (("10.0.0.2", 1), ["10.0.0.7, 10.0.0.9"], "10.0.0.7"),           # all trusted: leftmost
    (("10.0.0.2", 1), ["2.2.2.2:4711"], "2.2.2.2"),                  # a port is dropped
    (("10.0.0.2", 1), ["[2001:db8::1]:443"], "2001:db8::/64"),      # IPv6 counts by /64
    (("2001:db8:0:7:a::1", 1), [], "2001:db8:0:7::/64"),
    (("10.0.0.2", 1), ["2001:db8:0:7:ffff::9"], "2001:db8:0:7::/64"),
    (("::ffff:10.0.0.2", 1), ["2.2.2.2"], "2.2.2.2"),                # IPv4-mapped peer
    (None, ["2.2.2.2"], "unknown"),
    (("<local>", 0), ["2.2.2.2"], "<local>"),
])
def test_client_address(peer, forwarded, expected):
    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_address(peer, forwarded, proxies) == expected


def retry_after_bounds(interval: int, started: float) -> range:
    """Retry-After for a request allowed again `interval` s after `started` (monotonic):
    the whole interval at most, less whatever time has passed since (however slow the run)."""
    passed = time.monotonic() - started
    return range(max(interval - math.ceil(passed), 0), interval + 1)


async def test_two_instances_on_one_redis_share_one_limit(limited):
    a, b = await limited(3), await limited(3)
    started = time.monotonic()
    allowed = await statuses(a, 2) + await statuses(b, 1)
    over_a, over_b = await hit(a), await hit(b)
    bounds = retry_after_bounds(20, started)  # 3 a minute: the next passes 20 s after the first
    assert allowed == [200, 200, 200]
    assert over_a.status_code == over_b.status_code == 429
    for response in (over_a, over_b):
        assert (await response.get_json())["code"] == "rate_limited"
        assert len(response.headers.getlist("Retry-After")) == 1
        assert int(response.headers["Retry-After"]) in bounds


async def test_concurrent_requests_cannot_overshoot_the_limit(limited):
    a, b = await limited(5), await limited(5)
    responses = await asyncio.gather(*(hit(client) for client in (a, b) * 10))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 5 + [429] * 15


async def test_keys_expire_when_their_arrival_time_has_passed(limited, redis):
    client = await limited(3)
    started = time.monotonic()
    await hit(client)
    one = await limit_keys(redis.url)
    passed_one = (time.monotonic() - started) * 1000
    await statuses(client, 2)
    three = await limit_keys(redis.url)
    passed_three = (time.monotonic() - started) * 1000
    # After one hit the next arrival time is 20 s after it; after three, 60 s after the
    # first. The TTL counts down from there meanwhile.
    assert len(one) == 1 and 20_000 - passed_one - 1 <= next(iter(one.values())) <= 20_000
    assert 60_000 - passed_three - 1 <= next(iter(three.values())) <= 60_000


async def test_ratelimit_headers_come_from_the_same_call(limited):
    client = await limited(2)
    started = time.monotonic()
    first, second, third = [await hit(client) for _ in range(3)]
    bounds = retry_after_bounds(30, started)
    assert [r.headers["RateLimit-Remaining"] for r in (first, second, third)] == ["1", "0", "0"]
    assert first.headers["RateLimit-Limit"] == "2" and first.headers["RateLimit-Reset"] == "30"
    assert third.status_code == 429 and len(third.headers.getlist("Retry-After")) == 1
    assert int(third.headers["Retry-After"]) in bounds
    health = await client.get("/health/live")
    assert "RateLimit-Limit" not in health.headers


async def test_zero_turns_limits_off(limited, redis):
    client = await limited(0)
    assert set(await statuses(client, 5)) == {200}
    assert await limit_keys(redis.url) == {}


async def test_redis_outage_falls_back_to_per_instance_limits(limited, redis, log_events):
    client = await limited(2)
    before = await statuses(client, 1)
    redis.stop()
    started = time.monotonic()
    during = [await hit(client) for _ in range(4)]
    bounds = retry_after_bounds(30, started)
    redis.start()

    async def redis_again() -> bool:  # the gate reopens within seconds; a fresh Redis budget
        return (await hit(client)).status_code == 200

    await eventually(redis_again, timeout=20.0)  # a deadline, not a speed target
    after = await statuses(client, 2)
    assert before == [200] and after == [200, 429]
    assert [r.status_code for r in during] == [200, 200, 429, 429]
    assert len(during[2].headers.getlist("Retry-After")) == 1
    assert int(during[2].headers["Retry-After"]) in bounds
    assert len(await limit_keys(redis.url)) == 1
    warnings = [e for e in log_events() if e["event"] == "rate_limit_store_error"]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"


async def test_a_redis_that_never_answers_costs_a_timeout_not_a_5xx(make_client, make_settings):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never replies
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        client = await make_client(make_settings(REDIS_URL=url, REDIS_TIMEOUT_SECONDS="0.1",
                                                 RATE_LIMIT_PER_MINUTE=2))
        codes = await statuses(client, 3)
    assert codes == [200, 200, 429]


@pytest.mark.e2e
def test_two_workers_share_the_limit_over_real_sockets(serve, redis, tmp_path):
    metrics_dir = tmp_path / "metrics"
    url = serve("--workers", "2", RATE_LIMIT_PER_MINUTE="5", REDIS_URL=redis.url,
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)).url
    # Each worker answers more than 5: had each its own limit, more than 5 would pass.
    responses = spread(url + PATH, metrics_dir, workers=2, each=6,
                       headers={"X-Forwarded-For": "198.51.100.7"})  # spoofed: ignored
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 5 and codes.count(429) == len(codes) - 5
    by_worker = per_worker(metrics_dir, "ielts_http_requests_total", route=PATH)
    assert len(by_worker) == 2 and all(n > 5 for n in by_worker.values())
    for response in (r for r in responses if r.status_code == 429):
        assert len(response.headers.get_list("Retry-After")) == 1
        assert 1 <= int(response.headers["Retry-After"]) <= 12  # 5 a minute: one per 12 s
    keys = asyncio.run(limit_keys(redis.url))  # in Redis, keyed by the socket's address
    assert len(keys) == 1 and client_of(next(iter(keys))) == "127.0.0.1"
