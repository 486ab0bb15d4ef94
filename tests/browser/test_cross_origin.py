"""A frontend hosted elsewhere: its browser may call the API only from a CORS_ORIGINS origin."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

# What a separately hosted frontend does: POST to the API with a JSON body (a preflight).
FRONTEND = """<!doctype html><meta charset="utf-8"><title>another frontend</title>
<p id="result">waiting</p>
<script>
const API_URL = new URLSearchParams(location.search).get("api");
fetch(API_URL + "/generate-question", {method: "POST",
      headers: {"content-type": "application/json"}, body: "{}"})
  .then((response) => response.json())
  .then((body) => { document.getElementById("result").textContent = "answered: " + body.status; })
  .catch((error) => { document.getElementById("result").textContent = "refused: " + error.name; });
</script>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Start static servers for the frontend page, each its own origin (another port)."""
    (tmp_path / "index.html").write_text(FRONTEND)
    servers: list[ThreadingHTTPServer] = []

    def start() -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0),
                                     partial(QuietHandler, directory=str(tmp_path)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_listed_origin_can_call_the_api_and_another_cannot(page, serve, origin, screenshot):
    allowed, other = origin(), origin()
    api = serve(CORS_ORIGINS=f"https://practice.example,{allowed}")
    page.goto(f"{allowed}/index.html?api={api.url}")
    expect(page.locator("#result")).to_have_text("answered: success")
    screenshot(page, "allowed")
    page.goto(f"{other}/index.html?api={api.url}")
    expect(page.locator("#result")).to_have_text("refused: TypeError")
    screenshot(page, "refused")


def test_without_cors_origins_no_other_origin_can_call_the_api(page, serve, origin):
    frontend, api = origin(), serve()
    page.goto(f"{frontend}/index.html?api={api.url}")
    expect(page.locator("#result")).to_have_text("refused: TypeError")
