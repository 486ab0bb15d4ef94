"""Single-flight, the model budget, client limits and pools on every topology: two app
instances share one Redis deployment (one node, a cluster, a cluster over TLS with a
password, a Sentinel-managed master, the same over TLS with a password, a TLS Redis with
a password and client certificates), as instances behind a load balancer."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import azure_env
from tests.support import fake_model as fm

URL = "/generate-question"
# Part 2 pools of these topics live on more than one master of a cluster (checked below).
TOPICS = ["gardens", "rivers", "museums", "bridges", "markets", "islands", "castles", "farms"]
TOKEN = "admin-token-for-topologies-4d1a-0c9e77b2f3a15e86"
MATRIX = pytest.mark.topologies
ALL = [pytest.param(t, marks=MATRIX)
       for t in ("standalone", "cluster", "cluster-tls", "sentinel", "sentinel-tls", "tls")]


async def ask(client, **payload):
    response = await client.post(URL, json=payload)
    return response.status_code, await response.get_json()


@pytest.fixture
def two(make_client, make_settings, fake_model, store):
    """Two instances on the topology under test (more settings as keywords). Redis calls
    time out after 5 s: these check sharing, and a busy machine must not pass for an outage."""

    async def start(**env: str):
        settings = make_settings(azure_env(fake_model, **store, REDIS_TIMEOUT_SECONDS="5",
                                           **env))
        return [await make_client(settings) for _ in range(2)]

    return start


@pytest.mark.parametrize("store", ALL, indirect=True)
async def test_a_cold_storm_over_two_instances_costs_one_model_call(two, fake_model):
    # VARIETY_SERVES_PER_ITEM=0: the storm alone (with it, its items served eight times
    # over would widen the pool: the next test)
    a, b = await two(RATE_LIMIT_PER_MINUTE="0", VARIETY_SERVES_PER_ITEM="0")
    fake_model.set_default(fm.slow(0.5))
    results = await asyncio.gather(*(ask((a, b)[i % 2], topic="volcanoes", part=2)
                                     for i in range(40)))
    assert {status for status, _ in results} == {200}
    assert len(fake_model.requests) == 1
    assert [body["data"]["source"] for _, body in results].count("ai") == 1


@pytest.mark.parametrize("store", ALL, indirect=True)
async def test_a_class_over_two_instances_sees_a_card_each_for_one_call_per_five(two,
                                                                               fake_model):
    """Least served first and widening, counted in the deployment: twelve students one
    after another, alternating instances, get twelve cards for three calls at most (the
    pool, a widening, one started ahead of need), never two calls for one pool size."""
    a, b = await two(RATE_LIMIT_PER_MINUTE="0", LOCAL_POOL_TTL_SECONDS="0")
    cards = [(await ask((a, b)[n % 2], topic="volcanoes", part=2, session_id=f"s-{n}"))[1]
             ["data"]["id"] for n in range(12)]
    assert len(set(cards)) == 12
    assert len(fake_model.requests) <= 3


@pytest.mark.parametrize("store", ALL, indirect=True)
async def test_the_model_budget_holds_across_two_instances(two, fake_model):
    # At 2 a minute the next request is 30 s away: further than the 10 s deadline.
    a, b = await two(AI_BUDGET_RPM="2", REQUEST_TIMEOUT_SECONDS="10")
    answers = [await ask(client, topic=topic) for client, topic in
               ((a, "volcanoes"), (b, "glaciers"), (a, "a memorable trip"))]
    assert len(fake_model.requests) == 2
    assert [body["data"]["source"] for _, body in answers] == ["ai", "ai", "bank"]


@pytest.mark.parametrize("store", [*ALL[:3], "sentinel", *ALL[4:]], indirect=True)
async def test_two_instances_share_one_client_limit(two):
    a, b = await two(RATE_LIMIT_PER_MINUTE="3")
    codes = [(await client.post(URL, json={"topic": "travel"})).status_code
             for client in (a, b, a, b, a)]
    assert codes == [200, 200, 200, 429, 429]


@pytest.mark.parametrize("store", ALL, indirect=True)
async def test_pools_made_on_one_instance_serve_the_other_until_purged(two, fake_model, store,
                                                                      request):
    a, b = await two(ADMIN_TOKEN=TOKEN, LOCAL_POOL_TTL_SECONDS="0")
    made = [(await ask(a, topic=topic))[1]["data"]["source"] for topic in TOPICS]
    served = [(await ask(b, topic=topic))[1]["data"]["source"] for topic in TOPICS]
    if store.get("REDIS_MODE") == "cluster":  # the purge must find pools on every master
        cluster = request.getfixturevalue("cluster_tls" if "rediss" in store["REDIS_URL"]
                                          else "cluster")
        keys = cluster.keys("ielts:v1:pool:*")
        assert len(keys) == len(TOPICS) and len({cluster.node_for(k).port for k in keys}) > 1
    purge = await b.post("/admin/cache/purge", headers={"Authorization": f"Bearer {TOKEN}"})
    again = await ask(a, topic=TOPICS[0])
    assert made == ["ai"] * len(TOPICS) and served == ["cache"] * len(TOPICS)
    assert (await purge.get_json())["data"] == {"purged_pools": len(TOPICS)}
    assert again[1]["data"]["source"] == "ai"
    assert len(fake_model.requests) == len(TOPICS) + 1

