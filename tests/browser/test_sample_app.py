"""The sample app in Chromium, with JavaScript on and off."""

from __future__ import annotations

import os
import threading
import typing as t
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from .test_reference import click_held, keep, kept

#: Cleared by a test to hold the sample app's POST requests (its actions); set to let them go.
HOLD = threading.Event()
HOLD.set()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    """The sample app on a fresh instance folder, served on a free port; its POST requests
    wait while HOLD is cleared."""
    from sample_app.app import create_app

    app = create_app(str(tmp_path_factory.mktemp("sample")))

    def held(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST":
            assert HOLD.wait(10)
        return app(environ, start_response)

    httpd = make_server("127.0.0.1", 0, held, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        HOLD.set()
        httpd.shutdown()
        httpd.server_close()


def js(request: pytest.FixtureRequest) -> bool:
    """Whether the test's tab runs JavaScript."""
    return bool(request.node.callspec.params["tab"])


def test_create_like_delete(
    sample: str, tab: Page, artifacts: str, request: pytest.FixtureRequest
) -> None:
    """Create a post (after a validation error), like it twice, delete it (with JS: creating
    shows the form pending, and nothing loads the page again)."""
    tab.goto(sample + "/posts")
    if js(request):
        keep(tab)
    tab.click("#create")
    expect(tab.locator("#title-error")).to_have_text("String should have at least 1 character")
    tab.fill("#title", "From the browser")
    tab.fill("#content", "Sample app test")
    if js(request):
        click_held(tab, HOLD, "#create", "#create-form")
    else:
        tab.click("#create")
    card = tab.locator("article", has_text="From the browser")
    expect(card).to_be_visible()
    like = card.locator("button.like")
    like.click()
    expect(like.locator(".count")).to_have_text("1")
    like.click()
    expect(like.locator(".count")).to_have_text("2")
    name = request.node.callspec.id.split("-")[0]
    tab.screenshot(path=os.path.join(artifacts, f"sample-{name}.png"), full_page=True)
    card.locator("button", has_text="Delete").click()
    expect(tab.locator("article", has_text="From the browser")).to_have_count(0)
    assert not js(request) or kept(tab)


def test_field_error_from_the_annotation(
    sample: str, tab: Page, request: pytest.FixtureRequest
) -> None:
    """create_post's title is Annotated with MaxLen(120): a longer one is not saved, the field
    shows the error and both fields keep what was typed; a title of spaces is empty (with JS,
    without loading the page again)."""
    tab.goto(sample + "/posts")
    if js(request):
        keep(tab)
    long_title = "x" * 121
    content = f"Kept while the title is fixed {uuid.uuid4().hex}"
    tab.fill("#title", long_title)
    tab.fill("#content", content)
    tab.click("#create")
    expect(tab.locator("#title-error")).to_have_text("String should have at most 120 characters")
    expect(tab.locator("#title")).to_have_value(long_title)
    expect(tab.locator("#content")).to_have_value(content)
    expect(tab.locator("article", has_text=content)).to_have_count(0)
    tab.fill("#title", "   ")
    tab.click("#create")
    expect(tab.locator("#title-error")).to_have_text("String should have at least 1 character")
    tab.fill("#title", "Fixed title")
    tab.click("#create")
    expect(tab.locator("article", has_text=content)).to_be_visible()
    expect(tab.locator("#title-error")).to_have_count(0)
    assert not js(request) or kept(tab)


def test_rename_field_error(sample: str, tab: Page, request: pytest.FixtureRequest) -> None:
    """The bound rename action validates its title too: an empty one shows the error on the
    post's page and renames nothing (with JS: pending while it runs, no page load)."""
    tab.goto(sample + "/posts/1")
    before = tab.locator("#post-title").inner_text()
    tab.fill("#new-title", "")
    if js(request):
        keep(tab)
        click_held(tab, HOLD, "#rename-form button", "#rename-form", "Saving…")
    else:
        tab.click("#rename-form button")
    expect(tab.locator("#title-error")).to_have_text("String should have at least 1 character")
    expect(tab.locator("#post-title")).to_have_text(before)
    assert not js(request) or kept(tab)


def test_preferences_cookies(sample: str, tab: Page, request: pytest.FixtureRequest) -> None:
    """Saving a name shows the greeting in the same round trip; forgetting removes it (with
    JS: pending while it runs, no page load)."""
    tab.goto(sample + "/posts")
    tab.fill("#name", "Delba")
    tab.select_option("#theme", "dark")
    if js(request):
        keep(tab)
        click_held(tab, HOLD, "#save-prefs", "#prefs-form")
    else:
        tab.click("#save-prefs")
    expect(tab.locator(".hello")).to_have_text("Hello, Delba")
    expect(tab.locator("html")).to_have_attribute("data-theme", "dark")
    tab.click("#forget")
    expect(tab.locator(".hello")).to_have_text("Hello, stranger")
    assert not js(request) or kept(tab)


def test_view_counter_and_rename(sample: str, browser: Browser) -> None:
    """The post page counts a view on load and renames through a bound inline action."""
    page = browser.new_page()
    page.goto(sample + "/posts/1")
    expect(page.locator("#views")).not_to_have_text("0")
    first = int(page.locator("#views").inner_text())
    page.reload()
    expect(page.locator("#views")).to_have_text(str(first + 1))
    page.fill("#new-title", "Renamed")
    page.click("#rename-form button")
    expect(page.locator("#post-title")).to_have_text("Renamed")
    page.close()
