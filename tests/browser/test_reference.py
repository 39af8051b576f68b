"""Each example of the reference page ("Updating Data"), in Chromium, with JavaScript on and in
a context with it off: the same outcome, by a morph in place or by a 303 / re-rendered page."""

from __future__ import annotations

import os

from playwright.sync_api import Page, expect

from .app import BrowserApp


def add_post(site: BrowserApp, title: str) -> int:
    """A post added behind the page's back (the cache is dropped so the next GET shows it)."""
    post_id = site.next_id
    site.next_id += 1
    site.posts[post_id] = {"id": post_id, "title": title, "likes": 0}
    site.store.clear()
    return post_id


def test_create_post_with_a_form(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Forms: the create form runs the action with the form's fields and shows the new post,
    title included."""
    page, _ = any_page
    page.goto(site.base + "/posts")
    page.fill("#title", "Hello world")
    page.fill("#content", "Body")
    page.click("#create-button")
    expect(page.locator("#posts li")).to_have_count(1)
    expect(page.locator("#post-1 .title")).to_have_text("Hello world")
    expect(page).to_have_title("Posts (1)")
    expect(page.locator("#title")).to_have_value("")
    assert site.posts[1]["title"] == "Hello world"


def test_validation_errors_keep_the_values(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """useActionState's role: fail() shows the error next to the field and keeps what was
    typed; nothing is created."""
    page, _ = any_page
    page.goto(site.base + "/posts")
    page.fill("#content", "kept text")
    page.click("#create-button")
    expect(page.locator("#title-error")).to_have_text("A title is required.")
    expect(page.locator("#content")).to_have_value("kept text")
    assert site.posts == {}


def test_delete_post_with_a_bound_button_from_a_macro(
    site: BrowserApp, any_page: tuple[Page, bool]
) -> None:
    """deletePost, passed as a value into a macro ("passing actions as props") and bound to the
    post's ID: each button deletes its own post only."""
    page, _ = any_page
    add_post(site, "first")
    add_post(site, "second")
    page.goto(site.base + "/posts")
    page.click("#delete-1")
    expect(page.locator("#posts li")).to_have_count(1)
    expect(page.locator("#post-2 .title")).to_have_text("second")
    assert list(site.posts) == [2]


def test_like_button_event_handler(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Event handlers: the like button awaits the action and shows the returned count (with JS,
    an onclick calling actionkit.actions.increment_like; without, the button submits its form)."""
    page, _ = any_page
    add_post(site, "liked")
    page.goto(site.base + "/posts")
    for expected in ("1", "2", "3"):
        page.click("#like-1")
        expect(page.locator("#like-1 .count")).to_have_text(expected)
    assert site.posts[1]["likes"] == 3


def test_pending_state(site: BrowserApp, any_page: tuple[Page, bool], artifacts: str) -> None:
    """Showing a pending state: with JS the button is disabled and shows its pending text while
    the action runs, then the result shows; without JS the browser waits, same result."""
    page, js = any_page
    page.goto(site.base + "/slow")
    page.fill("#value-queue", "done once")
    button = page.locator("#go-queue")
    if js:
        site.gate.clear()
        page.click("#go-queue")
        expect(button).to_be_disabled()
        expect(button).to_have_text("Working…")
        page.screenshot(path=os.path.join(artifacts, "reference-pending.png"))
        site.gate.set()
        expect(button).to_be_enabled()
    else:
        page.click("#go-queue")
    expect(page.locator("#done")).to_have_text("done once")
    expect(button).to_have_text("Go now")
    page.screenshot(path=os.path.join(artifacts, f"reference-updated-{'js' if js else 'nojs'}.png"))


def test_revalidate(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Revalidating: /posts is cached; data changed elsewhere is not shown until an action
    calls revalidate_tag("posts"), after which the page and the next GET show it."""
    page, _ = any_page
    first = page.goto(site.base + "/posts")
    assert first is not None and first.headers["actionkit-cache"] == "MISS"
    site.posts[1] = {"id": 1, "title": "changed elsewhere", "likes": 0}  # cache not told
    stale = page.reload()
    assert stale is not None and stale.headers["actionkit-cache"] == "HIT"
    expect(page.locator("#posts li")).to_have_count(0)
    page.click("#refresh")
    expect(page.locator("#post-1 .title")).to_have_text("changed elsewhere")
    fresh = page.goto(site.base + "/posts")  # (a reload would post the form again without JS)
    assert fresh is not None and fresh.headers["actionkit-cache"] == "MISS"
    expect(page.locator("#post-1 .title")).to_have_text("changed elsewhere")


def test_redirect(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Redirecting: create_post ends with redirect("/posts"); the browser lands there."""
    page, _ = any_page
    page.goto(site.base + "/posts?from=elsewhere")
    page.fill("#title", "via redirect")
    page.click("#create-button")
    expect(page).to_have_url(site.base + "/posts")
    expect(page.locator("#post-1 .title")).to_have_text("via redirect")


def test_cookies(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Cookies: an action sets a cookie (HttpOnly, SameSite=Lax) and the page shows it in the
    same round trip; another button of the same form deletes it."""
    page, _ = any_page
    page.goto(site.base + "/posts")
    page.fill("#name", "Delba")
    page.click("#save-name")
    expect(page.locator("#hello")).to_have_text("Hello, Delba")
    cookie = next(c for c in page.context.cookies() if c["name"] == "name")
    assert cookie["value"] == "Delba" and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("#forget-name")
    expect(page.locator("#hello")).to_have_text("Hello, stranger")
    assert not [c for c in page.context.cookies() if c["name"] == "name"]


def test_view_counter_on_load(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """useEffect: data-trigger="load" counts a view once per page load and shows the count;
    without JS nothing is counted and the page shows the server's count."""
    page, js = any_page
    page.goto(site.base + "/posts")
    expect(page.locator("#views")).to_have_text("1" if js else "0")
    page.reload()
    expect(page.locator("#views")).to_have_text("2" if js else "0")
    page.wait_for_timeout(100)
    assert site.views == (2 if js else 0)
