"""Browser fixtures: pytest-playwright driving Debian's Chromium against a live server."""

from __future__ import annotations

import os
import threading
import typing as t

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from .app import BrowserApp

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "..", "test-artifacts")
# Short waits: everything here is local; a failure should say so quickly.
TIMEOUT_MS = 5000

expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, t.Any]) -> dict[str, t.Any]:
    """pytest-playwright's launch options, pointed at Debian's Chromium (`playwright install`
    cannot download its own here)."""
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: `make test` installs chromium"
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ARGS}


@pytest.fixture(scope="session")
def server() -> t.Iterator[BrowserApp]:
    """The browser test app, served on a free loopback port for the whole session."""
    site = BrowserApp()
    httpd = make_server("127.0.0.1", 0, site.wsgi, threaded=True)
    site.base = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.gate.set()  # never leave a request thread waiting
        site.hold.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def site(server: BrowserApp) -> t.Iterator[BrowserApp]:
    """The app with empty data and cache, its gate open."""
    server.reset()
    yield server
    server.gate.set()
    server.hold.set()


@pytest.fixture
def page(page: Page) -> Page:
    """pytest-playwright's page, with short timeouts."""
    page.set_default_timeout(TIMEOUT_MS)
    return page


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def any_page(request: pytest.FixtureRequest, browser: Browser) -> t.Iterator[tuple[Page, bool]]:
    """A page with JavaScript enabled, then one in a context with it disabled."""
    context = browser.new_context(java_script_enabled=request.param)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab, request.param
    context.close()


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def tab(request: pytest.FixtureRequest, browser: Browser) -> t.Iterator[Page]:
    """A page of a fresh browser context, with JavaScript on and then off."""
    context = browser.new_context(java_script_enabled=request.param)
    page = context.new_page()
    page.set_default_timeout(5000)
    yield page
    context.close()


@pytest.fixture
def artifacts() -> str:
    """The directory for screenshots (ignored by git)."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS
