"""The Django example project in Chromium, with JavaScript on and off, served by gunicorn."""

from __future__ import annotations

import typing as t

import pytest
from playwright.sync_api import Page, expect

from tests.django.server import serve_example


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    """The example project on a fresh database, two gunicorn workers."""
    with serve_example(str(tmp_path_factory.mktemp("django-browser"))) as served:
        yield served.url


def test_create_like_delete(example: str, tab: Page, request: pytest.FixtureRequest) -> None:
    """Create a post (after a field error, with the message Django's messages show), like it,
    delete it."""
    title = f"From Chromium ({request.node.callspec.id})"
    tab.goto(example + "/posts")
    tab.click("#create")
    expect(tab.locator("#title-error")).to_have_text("Give your post a title.")
    tab.fill("#title", title)
    tab.fill("#content", "Django test")
    tab.click("#create")
    expect(tab.locator("#message")).to_have_text(f"Published “{title}”.")
    card = tab.locator("article", has_text=title)
    expect(card).to_be_visible()
    like = card.locator("button.like")
    like.click()
    expect(like.locator(".count")).to_have_text("1")
    like.click()
    expect(like.locator(".count")).to_have_text("2")
    card.locator("button", has_text="Delete").click()
    expect(tab.locator("article", has_text=title)).to_have_count(0)


def test_rename_with_a_field_error(example: str, tab: Page) -> None:
    """The post page's rename form (with {% csrf_token %}) shows the field error, then
    renames."""
    tab.goto(example + "/posts/1")
    tab.fill("#new-title", "")
    tab.click("#rename-form button")
    expect(tab.locator("#title-error")).to_have_text("A title cannot be empty.")
    tab.fill("#new-title", "Renamed in Django")
    tab.click("#rename-form button")
    expect(tab.locator("#post-title")).to_have_text("Renamed in Django")
    tab.fill("#new-title", "Hello, actionkit")
    tab.click("#rename-form button")
    expect(tab.locator("#post-title")).to_have_text("Hello, actionkit")


def test_preferences_cookies(example: str, tab: Page) -> None:
    """Saving a name greets the visitor in the same round trip; forgetting removes it."""
    tab.goto(example + "/posts")
    tab.fill("#name", "Delba")
    tab.select_option("#theme", "dark")
    tab.click("#save-prefs")
    expect(tab.locator(".hello")).to_have_text("Hello, Delba")
    expect(tab.locator("html")).to_have_attribute("data-theme", "dark")
    tab.click("#forget")
    expect(tab.locator(".hello")).to_have_text("Hello, stranger")


def test_plain_django_form_still_works(example: str, tab: Page) -> None:
    """A form that is not an action posts through CsrfViewMiddleware with its token."""
    tab.goto(example + "/feedback")
    tab.fill("#message-input", "lovely")
    tab.click("#send")
    expect(tab.locator("#sent")).to_have_text("Thanks: lovely")
