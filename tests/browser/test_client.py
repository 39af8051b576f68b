"""actionkit.js in a real Chromium: every client behaviour, and each example of the reference
page with JavaScript on and off."""

from __future__ import annotations

import os
import typing as t

import pytest
from playwright.sync_api import Browser, Page, expect

from .app import BrowserApp

expect.set_options(timeout=5000)


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def any_page(request: pytest.FixtureRequest, browser: Browser) -> t.Iterator[tuple[Page, bool]]:
    """A page with JavaScript enabled, then one with it disabled."""
    context = browser.new_context(java_script_enabled=request.param)
    page = context.new_page()
    page.set_default_timeout(5000)
    yield page, request.param
    context.close()


def _add_post(site: BrowserApp, title: str) -> int:
    post_id = site.next_id
    site.next_id += 1
    site.posts[post_id] = {"id": post_id, "title": title, "likes": 0}
    site.store.clear()
    return post_id


def test_create_post(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Creating a post from the form lands on /posts showing it, with JS on and off."""
    page, js = any_page
    page.goto(site.base + "/posts")
    page.fill("#title", "Hello world")
    page.click("#create-button")
    expect(page.locator("#posts li")).to_have_count(1)
    expect(page.locator("#post-1 .title")).to_have_text("Hello world")
    expect(page).to_have_title("Posts (1)")
    assert page.url == site.base + "/posts"


def test_validation_errors_keep_the_values(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """fail() shows the error next to the field and keeps what was typed (no reset)."""
    page, js = any_page
    page.goto(site.base + "/posts")
    page.fill("#content", "kept text")
    page.click("#create-button")
    expect(page.locator("#title-error")).to_have_text("A title is required.")
    expect(page.locator("#content")).to_have_value("kept text")
    assert site.posts == {}


def test_delete_post_with_bound_button(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """A bound delete button removes its own post only."""
    page, js = any_page
    _add_post(site, "first")
    _add_post(site, "second")
    page.goto(site.base + "/posts")
    page.click("#delete-1")
    expect(page.locator("#posts li")).to_have_count(1)
    expect(page.locator("#post-2 .title")).to_have_text("second")


def test_like_button(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """The like button shows the returned count (an event handler with JS; a form without)."""
    page, js = any_page
    _add_post(site, "liked")
    page.goto(site.base + "/posts")
    for expected in ("1", "2", "3"):
        page.click("#like-1")
        expect(page.locator("#like-1 .count")).to_have_text(expected)
    assert site.posts[1]["likes"] == 3


def test_view_counter_on_load(site: BrowserApp, browser: Browser) -> None:
    """data-trigger="load" calls the action once per page load and shows the result."""
    page = browser.new_page()
    page.goto(site.base + "/posts")
    expect(page.locator("#views")).to_have_text("1")
    page.reload()
    expect(page.locator("#views")).to_have_text("2")
    assert site.views == 2
    page.close()


def test_cookies(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """A cookie set by an action shows in the same round trip; deleting it too."""
    page, js = any_page
    page.goto(site.base + "/posts")
    page.fill("#name", "Delba")
    page.click("#save-name")
    expect(page.locator("#hello")).to_have_text("Hello, Delba")
    cookie = next(c for c in page.context.cookies() if c["name"] == "name")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("#forget-name")
    expect(page.locator("#hello")).to_have_text("Hello, stranger")


def test_js_submission_does_not_navigate_and_keeps_focus(site: BrowserApp, page: Page) -> None:
    """With JS, a submission morphs the page in place: no reload, focus and scroll kept."""
    page.goto(site.base + "/posts")
    page.evaluate(
        """() => { window.marker = 'still here'; const name = document.getElementById('name');
        name.focus({preventScroll: true}); name.value = 'Ada'; name.setSelectionRange(1, 1);
        window.scrollTo(0, 400); name.form.requestSubmit(document.getElementById('save-name')); }"""
    )
    expect(page.locator("#hello")).to_have_text("Hello, Ada")
    assert page.evaluate("window.marker") == "still here"
    assert page.evaluate("document.activeElement.id") == "name"
    assert page.evaluate("document.activeElement.selectionStart") == 1  # the caret too
    assert page.evaluate("window.scrollY") == 400
    expect(page.locator("#name")).to_have_value("Ada")  # data-reset="false"


def test_redirect_pushes_history(site: BrowserApp, page: Page) -> None:
    """A redirect answer updates the URL with pushState and shows the target page."""
    page.goto(site.base + "/posts?from=elsewhere")
    page.evaluate("window.marker = 1")
    page.fill("#title", "via redirect")
    page.click("#create-button")
    expect(page).to_have_url(site.base + "/posts")
    expect(page.locator("#post-1 .title")).to_have_text("via redirect")
    assert page.evaluate("window.marker") == 1  # no full navigation
    assert page.evaluate("history.length") >= 2


def test_pending_state_and_events(site: BrowserApp, page: Page, artifacts: str) -> None:
    """While an action runs the form and button are busy, the button disabled with its pending
    text; afterwards everything is restored, the form reset and actionkit:result fired."""
    page.goto(site.base + "/slow")
    page.evaluate(
        "window.events = []; document.addEventListener('actionkit:result',"
        " e => events.push(e.detail.result))"
    )
    site.gate.clear()
    page.fill("#value-queue", "one")
    page.click("#go-queue")
    button = page.locator("#go-queue")
    expect(button).to_be_disabled()
    expect(button).to_have_text("Working…")
    expect(page.locator("#form-queue")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#form-queue .optimistic")).to_have_text("one")  # optimistic value
    page.screenshot(path=os.path.join(artifacts, "pending.png"))
    site.gate.set()
    expect(page.locator("#done")).to_have_text("one")
    page.screenshot(path=os.path.join(artifacts, "updated.png"))
    expect(button).to_be_enabled()
    expect(button).to_have_text("Go")
    expect(page.locator("#form-queue")).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#value-queue")).to_have_value("")  # reset after success
    assert page.evaluate("window.events") == ["one"]
    expect(page).to_have_title("Slow 1")


def test_optimistic_value_rolls_back_on_failure(site: BrowserApp, page: Page) -> None:
    """An optimistic value is shown at once and rolled back when the action fails; the form
    keeps its value."""
    page.goto(site.base + "/slow")
    site.gate.clear()
    page.fill("#value-queue", "bad")
    page.click("#go-queue")
    expect(page.locator("#form-queue .optimistic")).to_have_text("bad")
    site.gate.set()
    expect(page.locator("#form-queue .optimistic")).to_have_text("")
    expect(page.locator("#value-queue")).to_have_value("bad")
    assert site.done == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("queue", ["a", "b", "c"], id="queue"),
        pytest.param("drop", ["a"], id="drop"),
    ],
)
def test_concurrency_modes(site: BrowserApp, page: Page, mode: str, expected: list[str]) -> None:
    """queue runs submissions in order; drop ignores them while one is pending."""
    page.goto(site.base + "/slow")
    site.gate.clear()
    for value in ("a", "b", "c"):
        page.evaluate(
            """([mode, value]) => { const f = document.getElementById('form-' + mode);
            f.querySelector('input[name=value]').value = value; f.requestSubmit(); }""",
            [mode, value],
        )
    page.wait_for_timeout(200)
    site.gate.set()
    expect(page.locator("#done")).to_have_text(",".join(expected))
    expect(page.locator(f"#form-{mode}")).not_to_have_attribute("aria-busy", "true")


def test_abort_mode_applies_only_the_latest(site: BrowserApp, page: Page) -> None:
    """abort cancels the pending submission; only the latest answer is applied."""
    page.goto(site.base + "/slow")
    page.evaluate(
        "window.results = []; document.addEventListener('actionkit:result',"
        " e => results.push(e.detail.result))"
    )
    site.gate.clear()
    for value in ("x", "y"):
        page.evaluate(
            """(value) => { const f = document.getElementById('form-abort');
            f.querySelector('input[name=value]').value = value; f.requestSubmit(); }""",
            value,
        )
    page.wait_for_timeout(200)
    site.gate.set()
    expect(page.locator("#form-abort")).not_to_have_attribute("aria-busy", "true")
    page.wait_for_timeout(300)
    assert page.evaluate("window.results") == ["y"]


def test_call_resolves_to_the_result(site: BrowserApp, page: Page) -> None:
    """actionkit.call(id, ...args) and actionkit.actions.name(...) resolve to the return value."""
    post_id = _add_post(site, "p")
    page.goto(site.base + "/posts")
    assert page.evaluate(f"actionkit.actions.increment_like({post_id})") == 1
    action_id = site.actions["increment_like"].id
    assert page.evaluate(f"actionkit.call('{action_id}', {post_id})") == 2
    assert (
        page.evaluate("actionkit.call('nope-unknown').then(() => 'ok', e => e.code)")
        == "unknown_action"
    )


def test_unknown_action_reloads_once(site: BrowserApp, page: Page) -> None:
    """A form naming an action the server no longer has reloads the page once."""
    page.goto(site.base + "/slow")
    page.evaluate("window.marker = 1")
    with page.expect_navigation():  # reloaded
        page.click("#unknown-button")
    page.wait_for_load_state()
    assert page.evaluate("window.marker") is None
    page.evaluate("window.marker = 2")
    page.click("#unknown-button")
    page.wait_for_timeout(500)
    assert page.evaluate("window.marker") == 2  # not reloaded a second time


def test_upload_reports_progress(site: BrowserApp, page: Page) -> None:
    """A file upload fires actionkit:progress and fills the <progress> element."""
    page.goto(site.base + "/slow")
    page.evaluate(
        "window.progress = []; document.addEventListener('actionkit:progress',"
        " e => progress.push(document.querySelector('progress').value))"
    )
    page.set_input_files(
        "#file",
        files=[
            {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 300_000}
        ],
    )
    page.click("#upload-button")
    expect(page.locator("#uploaded")).to_have_text("big.bin:300000")
    assert page.evaluate("Math.max(...window.progress)") > 0


def test_network_failure_falls_back_to_a_native_submission(site: BrowserApp, page: Page) -> None:
    """When the request fails at the network level, the form is submitted natively once."""
    page.goto(site.base + "/posts")
    page.route(
        "**/posts",
        lambda route: (
            route.abort() if route.request.headers.get("action-id") else route.continue_()
        ),
    )
    page.fill("#title", "offline first")
    page.click("#create-button")
    expect(page.locator("#post-1 .title")).to_have_text("offline first")
    assert site.posts[1]["title"] == "offline first"


def test_client_script_is_served_with_long_caching(site: BrowserApp, page: Page) -> None:
    """The script URL carries a content hash and is cached for a year."""
    response = page.goto(site.base + "/posts")
    assert response is not None
    src = page.evaluate("document.querySelector('script[data-actions]').src")
    assert "/_actionkit/actionkit." in src
    asset = page.request.get(src)
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "window.actionkit" in asset.text()
