"""Browser fixtures: Playwright driving Debian's Chromium against a live server."""

from __future__ import annotations

import os
import threading
import typing as t

import pytest
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, t.Any]) -> dict[str, t.Any]:
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
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def site(server: BrowserApp) -> BrowserApp:
    server.reset()
    return server


@pytest.fixture
def artifacts() -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS
