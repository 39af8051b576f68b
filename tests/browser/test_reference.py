"""Each example of the reference page ("Updating Data"), in Chromium, with JavaScript on and in
a context with it off: the same outcome, by a morph in place or by a 303 / re-rendered page."""

from __future__ import annotations

import os
import threading

from playwright.sync_api import Page, expect

from .app import BrowserApp


def add_post(site: BrowserApp, title: str) -> int:
    """A post added behind the page's back (the cache is dropped so the next GET shows it)."""
    post_id = site.next_id
    site.next_id += 1
    site.posts[post_id] = {"id": post_id, "title": title, "likes": 0}
    site.store.clear()
    return post_id


def keep(page: Page) -> None:
    """Mark the document; a full page load (a native submission) would lose the mark."""
    page.evaluate("window.__kept = 1")


def kept(page: Page) -> bool:
    """Whether the document marked by keep() is still the one shown: no page load since."""
    return bool(page.evaluate("window.__kept === 1"))


def click_held(
    page: Page, hold: threading.Event, button: str, form: str, pending_text: str | None = None
) -> None:
    """Click ``button`` while the action is held: the client shows ``form`` and ``button``
    pending (aria-busy, data-pending, the button disabled and showing its pending text);
    then the action is let go."""
    hold.clear()
    try:
        page.click(button)
        for pending in (page.locator(form), page.locator(button)):
            expect(pending).to_have_attribute("aria-busy", "true")
            expect(pending).to_have_attribute("data-pending", "")
        expect(page.locator(button)).to_be_disabled()
        if pending_text is not None:
            expect(page.locator(button)).to_have_text(pending_text)
    finally:
        hold.set()


def test_create_post_with_a_form(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Forms: the create form runs the action with the form's fields and shows the new post,
    title included (with JS: pending while it runs, then morphed in place, no page load)."""
    page, js = any_page
    page.goto(site.base + "/posts")
    page.fill("#title", "Hello world")
    page.fill("#content", "Body")
    if js:
        keep(page)
        click_held(page, site.hold, "#create-button", "#create", "Saving…")
    else:
        page.click("#create-button")
    expect(page.locator("#posts li")).to_have_count(1)
    expect(page.locator("#post-1 .title")).to_have_text("Hello world")
    expect(page).to_have_title("Posts (1)")
    expect(page.locator("#title")).to_have_value("")
    assert site.posts[1]["title"] == "Hello world"
    assert not js or kept(page)


def test_validation_errors_keep_the_values(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """useActionState's role: fail() shows the error next to the field and keeps what was
    typed; nothing is created (with JS: pending while it runs, no page load)."""
    page, js = any_page
    page.goto(site.base + "/posts")
    page.fill("#content", "kept text")
    if js:
        keep(page)
        click_held(page, site.hold, "#create-button", "#create", "Saving…")
    else:
        page.click("#create-button")
    expect(page.locator("#title-error")).to_have_text("A title is required.")
    expect(page.locator("#content")).to_have_value("kept text")
    assert site.posts == {}
    assert not js or kept(page)


def test_delete_post_with_a_bound_button_from_a_macro(
    site: BrowserApp, any_page: tuple[Page, bool]
) -> None:
    """deletePost, passed as a value into a macro ("passing actions as props") and bound to the
    post's ID: each button deletes its own post only (with JS: pending while it runs, no page
    load)."""
    page, js = any_page
    add_post(site, "first")
    add_post(site, "second")
    page.goto(site.base + "/posts")
    if js:
        keep(page)
        click_held(page, site.hold, "#delete-1", "#post-1 form")
    else:
        page.click("#delete-1")
    expect(page.locator("#posts li")).to_have_count(1)
    expect(page.locator("#post-2 .title")).to_have_text("second")
    assert list(site.posts) == [2]
    assert not js or kept(page)


def test_like_button_event_handler(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Event handlers: the like button awaits the action and shows the returned count (with JS,
    an onclick calling actionkit.actions.increment_like, no page load; without, the button
    submits its form)."""
    page, js = any_page
    add_post(site, "liked")
    page.goto(site.base + "/posts")
    if js:
        keep(page)
    for expected in ("1", "2", "3"):
        page.click("#like-1")
        expect(page.locator("#like-1 .count")).to_have_text(expected)
    assert site.posts[1]["likes"] == 3
    assert not js or kept(page)


def test_pending_state(site: BrowserApp, any_page: tuple[Page, bool], artifacts: str) -> None:
    """Showing a pending state: with JS the button is disabled and shows its pending text while
    the action runs, then the result shows; without JS the browser waits, same result."""
    page, js = any_page
    page.goto(site.base + "/slow")
    page.fill("#value-queue", "done once")
    button = page.locator("#go-queue")
    if js:
        keep(page)
        site.gate.clear()
        page.click("#go-queue")
        expect(button).to_be_disabled()
        expect(button).to_have_text("Working…")
        for pending in (page.locator("#form-queue"), button):
            expect(pending).to_have_attribute("aria-busy", "true")
            expect(pending).to_have_attribute("data-pending", "")
        page.screenshot(path=os.path.join(artifacts, "reference-pending.png"))
        site.gate.set()
        expect(button).to_be_enabled()
    else:
        page.click("#go-queue")
    expect(page.locator("#done")).to_have_text("done once")
    expect(button).to_have_text("Go now")
    assert not js or kept(page)
    page.screenshot(path=os.path.join(artifacts, f"reference-updated-{'js' if js else 'nojs'}.png"))


def test_revalidate(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Revalidating: /posts is cached; data changed elsewhere is not shown until an action
    calls revalidate_tag("posts"), after which the page and the next GET show it (with JS:
    pending while it runs, no page load)."""
    page, js = any_page
    first = page.goto(site.base + "/posts")
    assert first is not None and first.headers["actionkit-cache"] == "MISS"
    site.posts[1] = {"id": 1, "title": "changed elsewhere", "likes": 0}  # cache not told
    stale = page.reload()
    assert stale is not None and stale.headers["actionkit-cache"] == "HIT"
    expect(page.locator("#posts li")).to_have_count(0)
    if js:
        keep(page)
        click_held(page, site.hold, "#refresh", "#refresh-form")
    else:
        page.click("#refresh")
    expect(page.locator("#post-1 .title")).to_have_text("changed elsewhere")
    assert not js or kept(page)
    fresh = page.goto(site.base + "/posts")  # (a reload would post the form again without JS)
    assert fresh is not None and fresh.headers["actionkit-cache"] == "MISS"
    expect(page.locator("#post-1 .title")).to_have_text("changed elsewhere")


def test_redirect(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Redirecting: create_post ends with redirect("/posts"); the browser lands there (with
    JS: pending while it runs, then the URL pushed and the page morphed, no page load)."""
    page, js = any_page
    page.goto(site.base + "/posts?from=elsewhere")
    page.fill("#title", "via redirect")
    if js:
        keep(page)
        click_held(page, site.hold, "#create-button", "#create", "Saving…")
    else:
        page.click("#create-button")
    expect(page).to_have_url(site.base + "/posts")
    expect(page.locator("#post-1 .title")).to_have_text("via redirect")
    assert not js or kept(page)


def test_cookies(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """Cookies: an action sets a cookie (HttpOnly, SameSite=Lax) and the page shows it in the
    same round trip; another button of the same form deletes it (with JS: pending while it
    runs, no page load)."""
    page, js = any_page
    page.goto(site.base + "/posts")
    page.fill("#name", "Delba")
    if js:
        keep(page)
        click_held(page, site.hold, "#save-name", "#name-form")
    else:
        page.click("#save-name")
    expect(page.locator("#hello")).to_have_text("Hello, Delba")
    cookie = next(c for c in page.context.cookies() if c["name"] == "name")
    assert cookie["value"] == "Delba" and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("#forget-name")
    expect(page.locator("#hello")).to_have_text("Hello, stranger")
    assert not [c for c in page.context.cookies() if c["name"] == "name"]
    assert not js or kept(page)


def test_view_counter_on_load(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """useEffect: data-trigger="load" counts a view once per page load and shows the count;
    without JS nothing is counted and the page shows the server's count. With JS the calling
    element shows it pending while the call runs."""
    page, js = any_page
    if js:
        site.hold.clear()
        try:
            page.goto(site.base + "/posts")
            caller = page.locator("[data-action-call]")
            expect(caller).to_have_attribute("aria-busy", "true")
            expect(caller).to_have_attribute("data-pending", "")
            expect(page.locator("#views")).to_have_text("0")
        finally:
            site.hold.set()
        expect(caller).not_to_have_attribute("aria-busy", "true")
    else:
        page.goto(site.base + "/posts")
    expect(page.locator("#views")).to_have_text("1" if js else "0")
    page.reload()
    expect(page.locator("#views")).to_have_text("2" if js else "0")
    page.wait_for_timeout(100)
    assert site.views == (2 if js else 0)
