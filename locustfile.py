"""A morning of students, for locust: `make loadtest HOST=https://your.deployment`.

The mix (by weight of users):
- `PracticePageStudent` (8): opens the practice page (the page, its scripts and styles,
  `GET /v1/topics`), then practises catalogue topics, parts 1-3, with the session id the
  page keeps; now and then a whole mock test, or a link-style `GET /generate-question`.
  These are mostly pool hits once the pools are warm.
- `FreeTextStudent` (1): types a topic of their own, mostly new to the service, so most of
  these are misses that call the model.

From one address, the service's limits apply to the whole test: RATE_LIMIT_PER_MINUTE per
address on the question routes, and the per-client quota of fresh model calls (429
`rate_limited` / `generation_limited`). Locust counts those 429s as failures, named by
their code; see the README ("Load tests") before pointing this at a deployment. With
IELTS_API_KEY set, every request sends it as `X-API-Key` (a deployment with
CLIENT_API_KEYS), and the limits count that key instead of the address.
"""

from __future__ import annotations

import os
import random
import re
import secrets
from typing import Any

from locust import HttpUser, between, task
from locust.clients import ResponseContextManager

PARTS = (1, 2, 3)
SUBJECTS = ("neighbour", "grandmother", "cousin", "teacher", "colleague", "classmate", "coach")
THINGS = ("bicycle repair", "balcony garden", "night market", "kite festival", "board game",
          "bread baking", "river walk", "science museum", "bus journey", "tea ceremony",
          "photo album", "street musician", "library card", "mountain cabin", "pottery class")
STATIC_REF = re.compile(r'(?:src|href)="(/static/[^"]+)"')
MODULE_REF = re.compile(r'from\s+"\./([^"]+\.js)"')
API_KEY = os.environ.get("IELTS_API_KEY")


def free_text_topic() -> str:
    """A topic in a student's own words: new combinations most of the time."""
    return f"my {random.choice(SUBJECTS)}'s {random.choice(THINGS)} {random.randint(1, 400)}"


def check(response: ResponseContextManager) -> Any:
    """Fail the request with the envelope's code (e.g. `rate_limited`) unless it succeeded."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        code = body.get("code") if isinstance(body, dict) else None
        response.failure(f"HTTP {response.status_code} {code or 'no envelope'}")
        return None
    return body.get("data")


class PracticePageStudent(HttpUser):
    """A student on the practice page, working through catalogue topics."""

    weight = 8
    wait_time = between(1, 5)  # reading the question, answering it aloud

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        self.session_id = secrets.token_hex(16)  # what the page keeps in localStorage
        self.topics = ["travel and holidays"]
        page = self.client.get("/", name="/ (page)")
        for path in STATIC_REF.findall(page.text):
            module = self.client.get(path, name="/static/* (page)")
            if path.endswith(".js"):  # the page's ES modules import each other
                for name in MODULE_REF.findall(module.text):
                    self.client.get(f"/static/{name}", name="/static/* (page)")
        with self.client.get("/v1/topics", catch_response=True) as response:
            data = check(response)
            if data and data.get("topics"):
                self.topics = [t["topic"] for t in data["topics"]]

    @task(12)
    def question(self) -> None:
        body = {"topic": random.choice(self.topics), "part": random.choice(PARTS),
                "session_id": self.session_id}
        with self.client.post("/generate-question", json=body, catch_response=True,
                              name="/generate-question [catalogue]") as response:
            check(response)

    @task(1)
    def mock_test(self) -> None:
        with self.client.post("/v1/mock-test", json={"session_id": self.session_id},
                              catch_response=True) as response:
            check(response)

    @task(1)
    def shared_link(self) -> None:
        params = {"topic": random.choice(self.topics), "part": random.choice(PARTS)}
        with self.client.get("/generate-question", params=params, catch_response=True,
                             name="/generate-question [link]") as response:
            check(response)


class FreeTextStudent(HttpUser):
    """A student who types a topic of their own: mostly pool misses, so model calls."""

    weight = 1
    wait_time = between(2, 8)

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY
        self.session_id = secrets.token_hex(16)

    @task
    def question(self) -> None:
        body = {"topic": free_text_topic(), "part": random.choice(PARTS),
                "session_id": self.session_id}
        with self.client.post("/generate-question", json=body, catch_response=True,
                              name="/generate-question [free text]") as response:
            check(response)
