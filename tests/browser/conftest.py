"""Headless Chromium (Debian's package) driven by Playwright, against real `serve` processes.

Playwright's own browser download is never used: `make system-deps` installs `chromium`.
Screenshots of each step go to test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect, sync_playwright

from tests.support.process import Server, start_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update",
                 "--disable-sync"]
PHONE: ViewportSize = {"width": 375, "height": 740}
DESKTOP: ViewportSize = {"width": 1000, "height": 800}
# Part 2 timers shortened through the page's own URL: 2 s to prepare, 2 s to talk.
FAST = "/?prep=2&talk=2"

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module (each test gets its own context: fresh storage)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make system-deps` installs Debian's package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def console(page: Page) -> list[str]:
    """Errors the page reported: console errors (CSP violations included) and exceptions."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """`screenshot(page, "step")` saves test-artifacts/browser/<test>-<n>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def take(tab: Page, step: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{len(taken) + 1:02d}-{step}.png"
        tab.screenshot(path=path, full_page=True)
        taken.append(path)
        return path

    return take


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service as `make run` starts it (offline bank), shared by a module's tests;
    no rate limit, so the tests' own requests never interfere."""
    server = start_server(tmp_path_factory.mktemp("practice"), RATE_LIMIT_PER_MINUTE="0")
    yield server
    server.stop()
