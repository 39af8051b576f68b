"""actionkit.js in Chromium: each behaviour of the client, one test each."""

from __future__ import annotations

import os
import re
import typing as t

import pytest
from playwright.sync_api import Page, Route, expect

from .app import BrowserApp
from .test_reference import add_post

RECORD_EVENTS = """(names) => { window.events = [];
  for (const name of names) document.addEventListener('actionkit:' + name, (e) => events.push(
    {name, target: e.target.id || e.target.nodeName, detail: JSON.parse(JSON.stringify(
      e.detail, (k, v) => v instanceof Error ? {code: v.code, status: v.status} : v))}));
}"""


def record(page: Page, *names: str) -> None:
    """Keep the actionkit events of the page in window.events."""
    page.evaluate(RECORD_EVENTS, list(names))


def events(page: Page) -> list[dict[str, t.Any]]:
    return t.cast(list[dict[str, t.Any]], page.evaluate("window.events"))


def submit(page: Page, form_id: str, value: str) -> None:
    """Fill the value field of a form of /slow and submit it, without waiting."""
    page.evaluate(
        """([id, value]) => { const f = document.getElementById(id);
        f.querySelector('input[name=value]').value = value; f.requestSubmit(); }""",
        [form_id, value],
    )


# -- submitting forms -------------------------------------------------------------------------


def test_submission_morphs_in_place(site: BrowserApp, page: Page) -> None:
    """A submission does not navigate: the page is morphed, keeping scripts' state, the focused
    input, its caret and the scroll position; the load-triggered call does not run again."""
    page.goto(site.base + "/posts")
    expect(page.locator("#views")).to_have_text("1")
    page.evaluate(
        """() => { window.marker = 'still here'; const name = document.getElementById('name');
        name.focus({preventScroll: true}); name.value = 'Ada'; name.setSelectionRange(1, 1);
        window.scrollTo(0, 400); name.form.requestSubmit(document.getElementById('save-name')); }"""
    )
    expect(page.locator("#hello")).to_have_text("Hello, Ada")
    assert page.evaluate("window.marker") == "still here"
    assert page.evaluate("document.activeElement.id") == "name"
    assert page.evaluate("document.activeElement.selectionStart") == 1
    assert page.evaluate("window.scrollY") == 400
    expect(page.locator("#name")).to_have_value("Ada")  # data-reset="false"
    assert site.views == 1


def test_typing_during_a_submission_is_kept(site: BrowserApp, page: Page) -> None:
    """What the user types while an action runs survives the morph of its answer (the server's
    page has the field empty)."""
    page.goto(site.base + "/slow")
    site.gate.clear()
    submit(page, "form-queue", "one")
    page.click("#draft")
    page.keyboard.type("typing on")
    page.evaluate("document.getElementById('draft').setSelectionRange(3, 3)")
    site.gate.set()
    expect(page.locator("#done")).to_have_text("one")
    expect(page.locator("#draft")).to_have_value("typing on")
    assert page.evaluate("[document.activeElement.id, document.activeElement.selectionStart]") == [
        "draft",
        3,
    ]


def test_last_action_field_wins(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """A form with its own action field and a button naming another action runs the button's
    (the last $ACTION_ID_ field), and its own with any other button; JS on and off."""
    page, _ = any_page
    page.goto(site.base + "/lab")
    page.click("#button-action")
    expect(page.locator("#outcome")).to_have_text("button")
    page.goto(site.base + "/lab")
    page.click("#own-action")
    expect(page.locator("#outcome")).to_have_text("form")


def test_action_page_header(site: BrowserApp, page: Page) -> None:
    """A submission names its page, path and query, in the Action-Page header."""
    page.goto(site.base + "/lab?tab=2")
    page.click("#page_header")
    expect(page.locator("#outcome")).to_have_text("/lab?tab=2")


def test_pending_state_and_events(site: BrowserApp, page: Page, artifacts: str) -> None:
    """While an action runs the form and its submitter are aria-busy and data-pending, the
    submitter disabled with its pending text; afterwards all is undone (the label's markup
    included), the form reset, the title updated and actionkit:result fired on the form."""
    page.goto(site.base + "/slow")
    record(page, "result", "error")
    site.gate.clear()
    page.fill("#value-queue", "one")
    page.click("#go-queue")
    form, button = page.locator("#form-queue"), page.locator("#go-queue")
    expect(button).to_be_disabled()
    expect(button).to_have_text("Working…")
    for element in (form, button):
        expect(element).to_have_attribute("aria-busy", "true")
        expect(element).to_have_attribute("data-pending", "")
    page.screenshot(path=os.path.join(artifacts, "pending.png"))
    site.gate.set()
    expect(page.locator("#done")).to_have_text("one")
    page.screenshot(path=os.path.join(artifacts, "updated.png"))
    expect(button).to_be_enabled()
    expect(button.locator("b")).to_have_text("now")
    for element in (form, button):
        expect(element).not_to_have_attribute("aria-busy", "true")
        expect(element).not_to_have_attribute("data-pending", "")
    expect(page.locator("#value-queue")).to_have_value("")
    expect(page).to_have_title("Slow 1")
    [event] = events(page)
    assert event["name"] == "result" and event["target"] == "form-queue"
    assert event["detail"]["result"] == "one" and event["detail"]["failed"] is False


def test_pending_state_survives_the_morph_of_an_earlier_answer(
    site: BrowserApp, page: Page
) -> None:
    """With two queued submissions from the same button, the first answer's morph does not
    end the pending state of the second: form and button stay busy until it is answered."""
    page.goto(site.base + "/slow")
    site.gate.clear()
    site.later.clear()
    page.fill("#value-queue", "first")
    page.click("#go-queue")
    submit_with = """([value]) => { const f = document.getElementById('form-queue');
        f.querySelector('input[name=value]').value = value;
        f.requestSubmit(document.getElementById('go-queue')); }"""
    page.evaluate(submit_with, ["later"])
    site.gate.set()
    expect(page.locator("#done")).to_have_text("first")
    button = page.locator("#go-queue")
    expect(button).to_be_disabled()
    expect(button).to_have_text("Working…")
    expect(page.locator("#form-queue")).to_have_attribute("aria-busy", "true")
    site.later.set()
    expect(page.locator("#done")).to_have_text("first,later")
    expect(button).to_be_enabled()
    expect(button).to_have_text("Go now")
    expect(page.locator("#form-queue")).not_to_have_attribute("data-pending", "")


def test_fields_named_like_form_properties(site: BrowserApp, page: Page) -> None:
    """Fields named action, id or reset (which shadow the form's properties) change nothing:
    the form is still sent to its page, in the background, and reset afterwards."""
    page.goto(site.base + "/lab")
    page.evaluate("window.marker = 1")
    page.fill("#clobber input[name=id]", "8")
    page.click("#clobber-button")
    expect(page.locator("#outcome")).to_have_text("a8r")
    expect(page.locator("#clobber input[name=id]")).to_have_value("7")
    assert page.evaluate("window.marker") == 1


def test_an_image_button_names_its_action(site: BrowserApp, page: Page) -> None:
    """An <input type="image"> named after an action (the browser sends its name with ".x"
    and ".y") runs that action in the background."""
    page.goto(site.base + "/keep")
    record(page, "result", "error")
    page.evaluate("window.marker = 1")
    page.click("#image-button")
    page.wait_for_function("window.events.length > 0")
    [event] = events(page)
    assert event["name"] == "result" and event["target"] == "image-form"
    assert event["detail"]["result"] == "touched"
    expect(page.locator("#renders")).to_have_text("2")
    assert page.evaluate("window.marker") == 1


def test_what_the_script_cannot_send_as_the_browser_would_is_left_to_it(
    site: BrowserApp, page: Page
) -> None:
    """A text/plain form (the server does not read it as an action's, so the view gets it)
    and one in another encoding than UTF-8 are submitted by the browser itself, as without
    JavaScript: the script would send another body."""
    for form in ("plain-form", "latin-form"):
        page.goto(site.base + "/forms")
        page.evaluate("window.marker = 1")
        with page.expect_navigation():
            page.click(f"#{form} button")
        assert page.evaluate("window.marker") is None
    # Sent by the browser in windows-1252; the script would have sent "café" in UTF-8.
    assert site.recorded == [("u", "caf%E9")]


def test_a_form_that_is_not_multipart_sends_the_names_of_its_files(
    site: BrowserApp, page: Page, tmp_path: t.Any
) -> None:
    """A form without enctype="multipart/form-data" sends a file input's file name, not the
    file, as the browser does without JavaScript: the action gets the same either way."""
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    page.goto(site.base + "/forms")
    page.evaluate("window.marker = 1")
    page.set_input_files("#names-form input[type=file]", str(doc))
    page.click("#names-form button")
    page.wait_for_function("!document.querySelector('#names-form [data-pending]')")
    expect(page.locator("#where")).to_have_text("/forms")
    assert site.recorded == [("docs", "a.txt"), ("after", "1")]
    assert page.evaluate("window.marker") == 1  # the script sent it


def test_a_form_that_is_not_multipart_sends_line_breaks_as_the_browser_does(
    site: BrowserApp, page: Page
) -> None:
    """A textarea's line breaks reach the action as CRLF, as the browser sends them."""
    page.goto(site.base + "/forms")
    page.evaluate("window.marker = 1")
    page.fill("#text-form textarea", "a\nb")
    page.click("#text-form button")
    page.wait_for_function("!document.querySelector('#text-form [data-pending]')")
    expect(page.locator("#where")).to_have_text("/forms")
    assert site.recorded == [("note", "a\r\nb")]
    assert page.evaluate("window.marker") == 1


def test_a_relative_redirect_goes_next_to_the_url_posted_to(site: BrowserApp, page: Page) -> None:
    """redirect("done") from a form posted to /forms/sub/page ends on /forms/sub/done, as the
    browser resolves the 303 without JavaScript."""
    page.goto(site.base + "/forms")
    page.click("#relative-form button")
    expect(page).to_have_url(site.base + "/forms/sub/done")
    expect(page.locator("#where")).to_have_text("/forms/sub/done")


def test_a_redirect_to_a_script_url_is_not_followed(site: BrowserApp, page: Page) -> None:
    """redirect("javascript:...") (an open redirect's ``next``) does not run in the page; the
    browser does not follow such a Location without JavaScript either."""
    page.goto(site.base + "/forms")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    page.click("#script-form button")
    page.wait_for_function("!document.querySelector('#script-form [data-pending]')")
    assert page.title() == "Forms"
    assert any("not following a redirect" in text for text in errors), errors


def test_fields_named_elements_or_dataset(site: BrowserApp, page: Page) -> None:
    """Fields named elements or dataset (which shadow form properties) change nothing either:
    a failed submission shows its errors and keeps what was typed; a form with
    data-reset="false" keeps its values after a success."""
    page.goto(site.base + "/keep")
    record(page, "result")
    page.fill("#elements-form input[name=title]", "not ok")
    page.click("#elements-form button")
    expect(page.locator("#elements-form .error")).to_have_text("The title must be ok.")
    expect(page.locator("#elements-form input[name=title]")).to_have_value("not ok")
    page.fill("#dataset-form input[name=title]", "ok")
    page.click("#dataset-form button")
    page.wait_for_function("window.events.length === 2")
    assert [e["detail"]["failed"] for e in events(page)] == [True, False]
    expect(page.locator("#dataset-form input[name=title]")).to_have_value("ok")


@pytest.mark.parametrize("on", ["document", "window"])
def test_a_submit_listener_added_later_can_cancel_the_action(
    site: BrowserApp, page: Page, on: str
) -> None:
    """A submit listener the page adds after the client script (on document, or on window:
    after load, in a later script) that calls preventDefault() cancels the submission, as it
    does a plain form's: nothing is sent. Without it the form is sent in the background."""
    page.goto(site.base + "/lab")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.evaluate(
        """(on) => { window.marker = 1; window.cancel = (e) => e.preventDefault();
        (on === 'window' ? window : document).addEventListener('submit', cancel); }""",
        on,
    )
    page.click("#own-action")
    page.wait_for_timeout(300)
    assert posts == []
    expect(page.locator("#outcome")).to_have_text("")
    page.evaluate(
        "(on) => (on === 'window' ? window : document).removeEventListener('submit', cancel)", on
    )
    page.click("#own-action")
    expect(page.locator("#outcome")).to_have_text("form")
    assert len(posts) == 1 and page.evaluate("window.marker") == 1


def test_pending_state_undone_when_restored_from_bfcache(site: BrowserApp, page: Page) -> None:
    """A page shown again from the back/forward cache (pageshow with persisted) does not keep
    a submitter disabled."""
    page.goto(site.base + "/slow")
    site.gate.clear()
    page.fill("#value-queue", "one")
    page.click("#go-queue")
    expect(page.locator("#go-queue")).to_be_disabled()
    page.evaluate("dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    expect(page.locator("#go-queue")).to_be_enabled()
    expect(page.locator("#form-queue")).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#go-queue")).to_have_text("Go now")
    site.gate.set()
    expect(page.locator("#done")).to_have_text("one")


def test_failure_never_resets_and_rolls_back_optimistic_values(
    site: BrowserApp, page: Page
) -> None:
    """Optimistic elements, inside the form and pointing at it from outside, show the value at
    once; when the action fails they are rolled back and the form keeps its value."""
    page.goto(site.base + "/slow")
    record(page, "result")
    site.gate.clear()
    page.fill("#value-queue", "bad")
    page.click("#go-queue")
    expect(page.locator("#form-queue .optimistic")).to_have_text("bad")
    expect(page.locator("#shown")).to_have_text("bad")
    site.gate.set()
    expect(page.locator("#shown")).to_have_text("")
    expect(page.locator("#form-queue .optimistic")).to_have_text("")
    expect(page.locator("#value-queue")).to_have_value("bad")
    expect(page.locator("#go-queue")).to_be_enabled()
    assert site.done == []
    assert events(page)[0]["detail"]["failed"] is True


def test_error_event_when_the_action_raises(site: BrowserApp, page: Page) -> None:
    """An action that raises answers 500: actionkit:error fires on the form with the status
    and code, the pending state is undone and nothing else changes."""
    page.goto(site.base + "/lab")
    record(page, "result", "error")
    page.click("#boom")
    expect(page.locator("#boom")).to_be_enabled()
    page.wait_for_function("window.events.length > 0")
    [event] = events(page)
    assert event["name"] == "error" and event["target"] == "boom-form"
    assert event["detail"]["status"] == 500
    assert event["detail"]["error"] == {"code": "action_failed", "status": 500}
    expect(page).to_have_url(site.base + "/lab")


def test_an_error_answer_is_shown_in_the_form(site: BrowserApp, page: Page) -> None:
    """Without a listener of its own, an error answer's message is shown in the form (in a
    [data-action-error] element made for it), and goes away after the next success; a
    listener that cancels actionkit:error shows it its own way instead."""
    page.goto(site.base + "/lab")
    page.click("#boom")
    expect(page.locator("#boom-form [data-action-error]")).to_have_text(
        re.compile(r"^The action failed\. Reference: [0-9a-f]+\.$")
    )
    expect(page.locator("#boom-form [data-action-error]")).to_have_attribute("role", "alert")
    page.evaluate(
        "document.addEventListener('actionkit:error', (e) => e.preventDefault(), {once: true})"
    )
    page.evaluate("document.querySelector('#boom-form [data-action-error]').remove()")
    record(page, "error")
    page.click("#boom")
    page.wait_for_function("window.events.length > 0")
    expect(page.locator("#boom-form [data-action-error]")).to_have_count(0)


def test_an_action_that_raised_shows_its_reference(site: BrowserApp, page: Page) -> None:
    """The message of an action that raised gives the digest of its logged traceback, as the
    page without JavaScript does ("Reference: <digest>."); actionkit:error still carries the
    whole error object of the answer, and a rejected call the same message. Other errors keep
    their message: "The action failed (<code>)." when the answer has none."""
    page.goto(site.base + "/lab")
    record(page, "error")
    page.click("#boom")
    page.wait_for_function("window.events.length > 0")
    [event] = events(page)
    error = event["detail"]["answer"]["error"]
    assert error == {"code": "action_failed", "digest": error["digest"]}
    assert re.fullmatch(r"[0-9a-f]+", error["digest"])
    message = f"The action failed. Reference: {error['digest']}."
    expect(page.locator("#boom-form [data-action-error]")).to_have_text(message)
    assert event["detail"]["error"] == {"code": "action_failed", "status": 500}
    rejected = page.evaluate(
        f"actionkit.call('{site.actions['boom'].id}').then(() => null, (e) => e.message)"
    )
    assert re.fullmatch(r"The action failed\. Reference: [0-9a-f]+\.", rejected)

    def bad_gateway(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=502, body="<h1>Bad gateway</h1>", content_type="text/html")
        else:
            route.continue_()

    page.route("**/lab", bad_gateway)
    page.click("#boom")
    expect(page.locator("#boom-form [data-action-error]")).to_have_text(
        "The action failed (http_502)."
    )


def test_the_csrf_meta_tag_is_sent_as_a_header(site: BrowserApp, page: Page) -> None:
    """A page's <meta name="csrf-token"> goes with every action request as X-CSRFToken (for a
    framework's CSRF protection that checks actions too, such as Flask-WTF's)."""
    page.goto(site.base + "/slow")  # a page without one of its own
    page.evaluate(
        """() => { const m = document.createElement('meta'); m.name = 'csrf-token';
        m.content = 'token-123'; document.head.append(m); }"""
    )
    header = page.evaluate(f"actionkit.call('{site.actions['csrf_header'].id}')")
    assert header == "token-123"


def test_a_rotated_csrf_token_is_sent_after_the_morph(site: BrowserApp, page: Page) -> None:
    """The page after an action brings its own <meta name="csrf-token"> (a sign-in rotates
    it): the next action sends the new token."""
    page.goto(site.base + "/lab")
    call = f"actionkit.call('{site.actions['csrf_header'].id}')"
    assert page.evaluate(call) == "token-1"
    page.click("#own-action")
    expect(page.locator("#renders")).to_have_value("2")
    assert page.evaluate(call) == "token-2"


def test_a_morph_keeps_what_the_user_changed_elsewhere(site: BrowserApp, page: Page) -> None:
    """An action's page morphed in keeps what the user typed, ticked, chose and opened in the
    rest of the page (as React keeps uncontrolled inputs); what the user did not change
    follows the server."""
    page.goto(site.base + "/lab")
    page.fill("#note", "half a sentence")
    page.fill("#long-note", "a longer\nnote")
    page.check("#notify")
    page.select_option("#lang", "fr")
    page.check("#size-l")
    page.click("#more summary")
    page.click("#own-action")
    expect(page.locator("#outcome")).to_have_text("form")
    expect(page.locator("#renders")).to_have_value("2")  # not changed by the user
    expect(page.locator("#tint")).to_have_value("#00ff00")  # (its value differs from its HTML)
    expect(page.locator("#note")).to_have_value("half a sentence")
    expect(page.locator("#long-note")).to_have_value("a longer\nnote")
    expect(page.locator("#notify")).to_be_checked()
    expect(page.locator("#lang")).to_have_value("fr")
    expect(page.locator("#size-l")).to_be_checked()
    expect(page.locator("#size-s")).not_to_be_checked()
    assert page.evaluate("document.getElementById('more').open") is True


def test_a_chosen_option_is_kept_by_its_value(site: BrowserApp, page: Page) -> None:
    """The options the user chose stay chosen when the page morphed in has another option
    before them (a category added meanwhile): the same options, not the same positions."""
    page.goto(site.base + "/keep")
    page.select_option("#category", "Music")
    page.select_option("#tags", ["film", "music"])
    site.categories.insert(0, "Art")
    page.click("#touch")
    expect(page.locator("#renders")).to_have_text("2")
    expect(page.locator("#category option")).to_have_count(4)
    expect(page.locator("#category")).to_have_value("Music")
    chosen = "[...document.querySelectorAll('#tags option:checked')].map((o) => o.value)"
    assert page.evaluate(chosen) == ["film", "music"]


def test_a_failed_submission_keeps_the_chosen_option(site: BrowserApp, page: Page) -> None:
    """A failed submission puts back the option chosen in its form by value, when the page
    rendered after it has another option before it."""
    page.goto(site.base + "/keep")
    page.fill("#title", "not ok")
    page.select_option("#title-category", "Music")
    site.categories.insert(0, "Art")
    page.click("#check")
    expect(page.locator("#check-form .error")).to_have_text("The title must be ok.")
    expect(page.locator("#title-category option")).to_have_count(4)
    expect(page.locator("#title-category")).to_have_value("Music")
    expect(page.locator("#title")).to_have_value("not ok")


def test_html_attributes_set_by_the_page_stay(site: BrowserApp, page: Page) -> None:
    """Attributes the page's scripts put on <html> (a theme read from storage, class="js")
    stay through morphs; those the server renders follow it: set, changed, and removed once
    the server renders them no more."""
    site.theme = "dark"
    page.goto(site.base + "/keep")
    page.evaluate("document.documentElement.classList.add('js')")
    page.evaluate("document.documentElement.dataset.font = 'large'")
    attributes = """() => Object.fromEntries([...document.documentElement.attributes]
        .map((a) => [a.name, a.value]))"""
    site.theme = "light"
    page.click("#touch")
    expect(page.locator("#renders")).to_have_text("2")
    expected = {"lang": "en", "data-theme": "light", "class": "js", "data-font": "large"}
    assert page.evaluate(attributes) == expected
    site.theme = None
    page.click("#touch")
    expect(page.locator("#renders")).to_have_text("3")
    assert page.evaluate(attributes) == {"lang": "en", "class": "js", "data-font": "large"}
    site.theme = "dark"
    page.click("#touch")
    expect(page.locator("#renders")).to_have_text("4")
    assert page.evaluate(attributes)["data-theme"] == "dark"


def test_what_the_user_changed_stays_on_its_page(site: BrowserApp, page: Page) -> None:
    """A redirect to another page shows that page as the server rendered it: a draft typed on
    the page before is not carried into the same field of the next one."""
    page.goto(site.base + "/lab")
    page.fill("#note", "a draft about this page")
    page.check("#notify")
    page.click("#go_push")
    expect(page.locator("#query")).to_have_text("pushed=1")
    expect(page.locator("#note")).to_have_value("")
    expect(page.locator("#notify")).not_to_be_checked()


@pytest.mark.parametrize("how", ["click", "Enter"])
def test_data_reset_false_keeps_the_values(site: BrowserApp, page: Page, how: str) -> None:
    """A form with data-reset="false" keeps what was typed after a successful submission,
    submitted by a click (the focus on the button) as well as by Enter (the focus in the
    field, which the morph leaves as it is), and the next action's morph keeps it too: the
    server rendered the field empty."""
    page.goto(site.base + "/posts")
    expect(page.locator("#views")).to_have_text("1")  # (its call's result event is fired)
    record(page, "result")
    page.fill("#name", "Ada")
    if how == "click":
        page.click("#save-name")
    else:
        page.press("#name", "Enter")
    expect(page.locator("#hello")).to_have_text("Hello, Ada")
    expect(page.locator("#name")).to_have_value("Ada")
    page.click("#refresh")
    page.wait_for_function("window.events.length === 2")
    expect(page.locator("#name")).to_have_value("Ada")


def test_text_typed_during_a_morph_is_kept_by_the_next_one(site: BrowserApp, page: Page) -> None:
    """What the user typed in a field while an answer was morphed in (the field focused: the
    morph leaves it as it is) is not taken for what the server rendered: the next action's
    morph, the focus elsewhere, keeps it too."""
    page.goto(site.base + "/slow")
    site.gate.clear()
    submit(page, "form-queue", "one")
    page.click("#draft")
    page.keyboard.type("typing on")
    site.gate.set()
    expect(page.locator("#done")).to_have_text("one")
    expect(page.locator("#draft")).to_have_value("typing on")
    page.fill("#value-drop", "two")
    page.click("#go-drop")
    expect(page.locator("#done")).to_have_text("one,two")
    expect(page.locator("#draft")).to_have_value("typing on")


def test_an_answer_overtaken_by_a_later_one_shows_the_page_as_it_is_now(
    site: BrowserApp, page: Page
) -> None:
    """Form A is sent, then form B; B's answer arrives first. A's page, rendered before B's
    action ran, does not replace B's: the page is loaded again instead."""
    held: list[t.Any] = []

    def hold_a(route: Route) -> None:
        if route.request.method == "POST" and "\r\n\r\na\r\n" in (route.request.post_data or ""):
            held.append((route, route.fetch()))  # answered by the server, held in transit
        else:
            route.continue_()

    page.goto(site.base + "/slow")
    page.route("**/slow", hold_a)
    submit(page, "form-queue", "a")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held and site.done == ["a"]
    submit(page, "form-drop", "b")
    expect(page.locator("#done")).to_have_text("a,b")
    route, response = held[0]
    route.fulfill(response=response)  # A's page shows only "a"
    expect(page.locator("#form-queue")).not_to_have_attribute("aria-busy", "true")
    page.wait_for_timeout(300)
    expect(page.locator("#done")).to_have_text("a,b")


@pytest.mark.parametrize("form", ["form.no-id", "#id-form"], ids=["no-id", "field-named-id"])
def test_a_failure_answered_after_a_later_action_shows_its_errors(
    site: BrowserApp, page: Page, form: str
) -> None:
    """A failed submission answered after the answer of an action sent later shows its errors
    in its form (the rest of its page, older than the page shown, is not), also when the form
    has no id, or a field named "id"."""
    held: list[t.Any] = []

    def hold_check(route: Route) -> None:
        if route.request.method == "POST" and "not ok" in (route.request.post_data or ""):
            held.append((route, route.fetch()))  # answered by the server, held in transit
        else:
            route.continue_()

    page.goto(site.base + "/keep")
    page.route("**/keep", hold_check)
    page.locator(form + " input[name=title]").fill("not ok")
    page.locator(form + " button").click()
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held
    page.click("#touch")
    expect(page.locator("#renders")).to_have_text("3")
    route, response = held[0]
    route.fulfill(response=response)
    expect(page.locator(form + " .error")).to_have_text("The title must be ok.")
    expect(page.locator(form + " input[name=title]")).to_have_value("not ok")
    page.wait_for_timeout(300)
    expect(page.locator("#renders")).to_have_text("3")
    expect(page.locator(".error")).to_have_count(1)


# -- redirects --------------------------------------------------------------------------------


def test_a_redirect_to_the_page_shown_adds_no_history_entry(site: BrowserApp, page: Page) -> None:
    """redirect() to the page already shown replaces the history entry instead of pushing."""
    page.goto(site.base + "/lab")
    length = page.evaluate("window.marker = 1; history.length")
    page.click("#go_here")
    expect(page.locator("#go_here")).to_be_enabled()
    page.wait_for_function("window.marker === 1")
    assert page.evaluate("history.length") == length


def test_redirect_pushes_history_and_back_shows_the_previous_page(
    site: BrowserApp, page: Page
) -> None:
    """A redirect answer pushes the target URL and morphs its page in (no navigation, scrolled
    to the top, the new page's load calls run); Back shows the page before it again."""
    page.goto(site.base + "/posts?from=elsewhere")
    expect(page.locator("#views")).to_have_text("1")
    page.evaluate("window.marker = 1; window.scrollTo(0, 300)")
    length = page.evaluate("history.length")
    page.fill("#title", "via redirect")
    page.click("#create-button")
    expect(page).to_have_url(site.base + "/posts")
    expect(page.locator("#post-1 .title")).to_have_text("via redirect")
    assert page.evaluate("window.marker") == 1
    assert page.evaluate("history.length") == length + 1
    assert page.evaluate("window.scrollY") == 0
    expect(page.locator("#views")).to_have_text("2")  # another page: another view
    page.go_back()
    expect(page).to_have_url(site.base + "/posts?from=elsewhere")
    page.wait_for_function("window.marker === undefined")  # loaded, not kept from /posts


def test_back_then_forward_after_a_redirect_shows_its_page(site: BrowserApp, page: Page) -> None:
    """After a redirect, Back loads the page before it; Forward then shows the redirect's
    page again, as it does without JavaScript."""
    page.goto(site.base + "/lab")
    page.click("#go_push")
    expect(page.locator("#query")).to_have_text("pushed=1")
    page.go_back()
    expect(page).to_have_url(site.base + "/lab")
    expect(page.locator("#query")).to_have_text("")
    page.go_forward()
    expect(page).to_have_url(site.base + "/lab?pushed=1")
    expect(page.locator("#query")).to_have_text("pushed=1")


def test_a_redirect_to_a_page_with_scripts_of_its_own_loads_it(
    site: BrowserApp, page: Page
) -> None:
    """A redirect's target that needs a script or style sheet the page shown lacks is loaded,
    not morphed in: its scripts run."""
    page.goto(site.base + "/lab")
    page.click("#go_other")
    expect(page).to_have_url(site.base + "/other")
    expect(page.locator("#other")).to_be_visible()
    page.wait_for_function("window.otherLoaded === true")


def test_a_form_posted_to_another_page_shows_that_page(
    site: BrowserApp, any_page: tuple[Page, bool]
) -> None:
    """A form with action="/elsewhere" ends on that page, with JavaScript as without."""
    page, _ = any_page
    page.goto(site.base + "/lab")
    page.click("#post-elsewhere")
    expect(page).to_have_url(site.base + "/lab?posted=1")
    expect(page.locator("#query")).to_have_text("posted=1")
    expect(page.locator("#outcome")).to_have_text("form")


def test_redirect_replace(site: BrowserApp, page: Page) -> None:
    """redirect(..., type="replace") replaces the history entry."""
    page.goto(site.base + "/lab")
    length = page.evaluate("window.marker = 1; history.length")
    page.click("#go_replace")
    expect(page).to_have_url(site.base + "/lab?replaced=1")
    assert page.evaluate("[window.marker, history.length]") == [1, length]


def _hold_posts(page: Page, path: str) -> list[t.Any]:
    """Hold the answers of the action requests to ``path`` in transit (answered by the server)."""
    held: list[t.Any] = []

    def hold(route: Route) -> None:
        if route.request.method == "POST":
            held.append((route, route.fetch()))
        else:
            route.continue_()

    page.route("**" + path, hold)
    return held


def _wait_for(seen: list[t.Any], page: Page) -> None:
    """Let the page run until ``seen`` (filled by a route or an event handler) is not empty."""
    for _ in range(100):
        if seen:
            return
        page.wait_for_timeout(50)
    raise AssertionError("nothing came")


@pytest.mark.parametrize("button", ["go_push", "go_other"], ids=["morphed", "loaded"])
def test_a_page_the_user_went_to_while_an_action_was_pending_stays(
    site: BrowserApp, page: Page, button: str
) -> None:
    """A link followed while an action is under way wins over the action's redirect answered
    later, as without JavaScript (the page being left drops its form's answer): neither a
    morphed redirect nor one loaded takes the user away from where they went, or leaves an
    entry of its own in the history."""
    page.goto(site.base + "/lab")
    held = _hold_posts(page, "/lab")
    going: list[Route] = []
    page.route("**/slow", lambda route: going.append(route))
    page.click("#" + button)
    _wait_for(held, page)
    page.evaluate("document.getElementById('to-slow').click()")
    _wait_for(going, page)  # the browser is loading /slow
    route, response = held[0]
    route.fulfill(response=response)  # the redirect's answer arrives first
    page.wait_for_timeout(300)
    going[0].continue_()
    expect(page.locator("h1")).to_have_text("Slow actions")
    expect(page).to_have_url(site.base + "/slow")
    page.wait_for_timeout(300)
    expect(page).to_have_url(site.base + "/slow")
    page.go_back()  # no history entry of the redirect's either
    expect(page).to_have_url(site.base + "/lab")


def test_a_page_that_asks_before_it_is_left_and_stays_applies_the_answer(
    site: BrowserApp, page: Page
) -> None:
    """A page whose own listener asks the user before it is left, and where the user chose to
    stay, still applies the answer of an action that was pending meanwhile."""
    page.goto(site.base + "/lab")
    page.evaluate(
        """() => window.addEventListener('beforeunload', (e) => {
        e.preventDefault(); e.returnValue = 'unsaved'; })"""
    )
    held = _hold_posts(page, "/lab")
    asked: list[str] = []

    def stay(dialog: t.Any) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.click("#go_push")
    _wait_for(held, page)
    page.click("#to-slow")
    _wait_for(asked, page)
    assert asked == ["beforeunload"]
    route, response = held[0]
    route.fulfill(response=response)
    expect(page).to_have_url(site.base + "/lab?pushed=1")
    expect(page.locator("#query")).to_have_text("pushed=1")


def test_an_action_answered_after_a_download_started_is_applied(
    site: BrowserApp, page: Page
) -> None:
    """A download (a link with ``download``) does not leave the page: the answer of an action
    pending meanwhile is applied as usual; so are the answers of later actions."""
    page.goto(site.base + "/lab")
    held = _hold_posts(page, "/lab")
    page.click("#go_push")
    _wait_for(held, page)
    with page.expect_download():
        page.click("#download")
    route, response = held[0]
    route.fulfill(response=response)
    expect(page).to_have_url(site.base + "/lab?pushed=1")
    expect(page.locator("#query")).to_have_text("pushed=1")
    page.unroute("**/lab")
    page.click("#go_replace")
    expect(page).to_have_url(site.base + "/lab?replaced=1")


def test_cross_origin_redirect_navigates(site: BrowserApp, any_page: tuple[Page, bool]) -> None:
    """A redirect to another origin is a real navigation there (JS on and off)."""
    page, _ = any_page
    page.goto(site.base + "/lab")
    page.click("#go_away")
    expect(page).to_have_url(site.other_origin + "/lab?away=1")
    expect(page.locator("#sum")).to_be_attached()


def test_redirect_without_html_navigates(site: BrowserApp, page: Page) -> None:
    """A redirect answer without the target's html is followed with location.assign."""

    def drop_html(route: Route) -> None:
        if not route.request.headers.get("action-id"):
            route.continue_()
            return
        response = route.fetch()
        answer = response.json()
        assert answer["redirect"] == {"url": "/lab?pushed=1", "type": "push"}
        route.fulfill(response=response, json={**answer, "html": None})

    page.goto(site.base + "/lab")
    page.route("**/lab", drop_html)
    page.evaluate("window.marker = 1")
    with page.expect_navigation():
        page.click("#go_push")
    expect(page).to_have_url(site.base + "/lab?pushed=1")
    assert page.evaluate("window.marker") is None


# -- calls from scripts -----------------------------------------------------------------------


def test_call_resolves_to_the_result(site: BrowserApp, page: Page) -> None:
    """actionkit.call(id, ...args) and the exposed actionkit.actions.name(...) resolve to the
    return value; an exposed bound action passes its bound arguments first."""
    post_id = add_post(site, "p")
    page.goto(site.base + "/posts")
    assert page.evaluate(f"actionkit.actions.increment_like({post_id})") == 1
    action_id = site.actions["increment_like"].id
    assert page.evaluate(f"actionkit.call('{action_id}', {post_id})") == 2
    expect(page.locator("#like-1 .count")).to_have_text("2")  # revalidated: the page morphed
    page.goto(site.base + "/lab")
    assert page.evaluate("actionkit.actions.greet_ada('Hi')") == "Hi, Ada"
    assert page.evaluate("actionkit.call('add', 1, 2)") == 3
    assert page.evaluate("Object.keys(actionkit.actions).sort()") == ["add", "greet_ada"]


def test_call_errors_reject(site: BrowserApp, page: Page) -> None:
    """A call whose action raises rejects with an ActionError carrying the status and code."""
    page.goto(site.base + "/lab")
    error = page.evaluate(
        f"""actionkit.call('{site.actions["boom"].id}').then(() => null,
        (e) => [e.name, e.status, e.code])"""
    )
    assert error == ["ActionError", 500, "action_failed"]


@pytest.mark.parametrize("button", ["#add", "#add-by-id"])
def test_declarative_click_call(site: BrowserApp, page: Page, button: str) -> None:
    """data-action-call (an exposed name or an ID) with data-trigger click (the default) calls
    the action with data-args and writes the result into data-target."""
    page.goto(site.base + "/lab")
    page.click(button)
    expect(page.locator("#sum")).to_have_text("5" if button == "#add" else "15")


def test_a_declarative_call_is_busy_while_pending(site: BrowserApp, page: Page) -> None:
    """A data-action-call button is busy while its call runs, as a form's submitter is:
    aria-busy, data-pending, disabled with its pending text; a double click runs the action
    once. Afterwards all is undone."""
    page.goto(site.base + "/lab")
    record(page, "result", "error")
    site.gate.clear()
    button = page.locator("#tally-button")
    button.dblclick()
    expect(button).to_be_disabled()
    expect(button).to_have_text("Counting…")
    expect(button).to_have_attribute("aria-busy", "true")
    expect(button).to_have_attribute("data-pending", "")
    page.wait_for_timeout(150)
    site.gate.set()
    expect(page.locator("#tally")).to_have_text("1")
    expect(button).to_be_enabled()
    expect(button).to_have_text("Count")
    expect(button).not_to_have_attribute("aria-busy", "true")
    expect(button).not_to_have_attribute("data-pending", "")
    page.wait_for_timeout(300)
    assert site.tallies == 1
    assert [(e["name"], e["target"]) for e in events(page)] == [("result", "tally-button")]


def test_a_pending_declarative_call_ignores_further_triggers(site: BrowserApp, page: Page) -> None:
    """An element that is not a button (nothing disables it) is not triggered again while its
    call is pending: clicks meanwhile run nothing; a click after the answer runs it again."""
    page.goto(site.base + "/lab")
    site.gate.clear()
    span = page.locator("#tally-span")
    for _ in range(3):
        span.click()
    expect(span).to_have_attribute("data-pending", "")
    page.wait_for_timeout(150)
    site.gate.set()
    expect(page.locator("#tally")).to_have_text("1")
    expect(span).not_to_have_attribute("data-pending", "")
    span.click()
    expect(page.locator("#tally")).to_have_text("2")
    page.wait_for_timeout(300)
    assert site.tallies == 2


def test_declarative_call_when_visible(site: BrowserApp, page: Page) -> None:
    """data-trigger="visible" runs once, when the element scrolls into view."""
    page.goto(site.base + "/lab")
    page.wait_for_timeout(200)
    assert site.seen == 0
    page.locator("#sentinel").scroll_into_view_if_needed()
    expect(page.locator("#seen")).to_have_text("1")
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#sentinel").scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    assert site.seen == 1


# -- concurrency, uploads, failures -----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("queue", ["a", "b", "c"], id="queue"),
        pytest.param("drop", ["a"], id="drop"),
    ],
)
def test_concurrency_queue_and_drop(
    site: BrowserApp, page: Page, mode: str, expected: list[str]
) -> None:
    """queue (the default) sends submissions one after the other, in order; drop ignores
    submissions while one is pending."""
    page.goto(site.base + "/slow")
    site.gate.clear()
    for value in ("a", "b", "c"):
        submit(page, f"form-{mode}", value)
    page.wait_for_timeout(150)
    site.gate.set()
    expect(page.locator("#done")).to_have_text(",".join(expected))
    expect(page.locator(f"#form-{mode}")).not_to_have_attribute("aria-busy", "true")
    assert site.done == expected


def test_concurrency_abort_applies_only_the_latest(site: BrowserApp, page: Page) -> None:
    """abort cancels the pending submission when a new one starts: only the latest answer is
    applied and reported."""
    page.goto(site.base + "/slow")
    record(page, "result")
    site.gate.clear()
    for value in ("x", "y"):
        submit(page, "form-abort", value)
    page.wait_for_timeout(150)
    site.gate.set()
    expect(page.locator("#form-abort")).not_to_have_attribute("aria-busy", "true")
    page.wait_for_timeout(200)
    assert [e["detail"]["result"] for e in events(page)] == ["y"]


def test_upload_reports_progress(site: BrowserApp, page: Page) -> None:
    """A file upload fires actionkit:progress on the form and fills its <progress>."""
    page.goto(site.base + "/slow")
    record(page, "progress")
    page.evaluate(
        """window.bars = []; document.addEventListener('actionkit:progress',
        () => bars.push(document.querySelector('progress[data-upload-progress]').value))"""
    )
    page.set_input_files(
        "#file",
        files=[
            {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 300_000}
        ],
    )
    page.click("#upload-button")
    expect(page.locator("#uploaded")).to_have_text("big.bin:300000")
    progress = events(page)
    assert progress and all(e["target"] == "upload-form" for e in progress)
    last = progress[-1]["detail"]
    assert last["loaded"] == last["total"] > 300_000
    assert page.evaluate("window.bars")[-1] == last["total"]  # before the morph reset it


def test_unknown_action_reloads_once(site: BrowserApp, page: Page) -> None:
    """A form naming an action the server no longer has (after a deploy) reloads the page once;
    not again right after."""
    page.goto(site.base + "/slow")
    page.evaluate("window.marker = 1")
    with page.expect_navigation():
        page.click("#unknown-button")
    assert page.evaluate("window.marker") is None
    record(page, "error")
    page.evaluate("window.marker = 2")
    page.click("#unknown-button")
    page.wait_for_function("window.events.length > 0")
    assert events(page)[0]["detail"]["error"]["code"] == "unknown_action"
    page.wait_for_timeout(200)
    assert page.evaluate("window.marker") == 2


def test_an_answer_lost_on_the_way_is_never_sent_again(site: BrowserApp, page: Page) -> None:
    """The request reached the server and the action ran, then the connection was lost: the
    form says so and is not submitted again by itself (it was, natively: the action ran twice,
    two posts for one click); what was typed stays for the user to decide."""
    page.goto(site.base + "/posts")

    def lose_the_answer(route: t.Any) -> None:
        if route.request.headers.get("action-id"):
            route.fetch()  # the server runs the action
            route.abort()  # its answer never arrives
        else:
            route.continue_()

    page.route("**/posts", lose_the_answer)
    page.evaluate("window.marker = 1")
    page.fill("#title", "sent once")
    page.click("#create-button")
    box = page.locator("#create [data-action-error]")
    expect(box).to_have_text(re.compile("No answer from the server"))
    expect(page.locator("#create-button")).to_be_enabled()
    assert [p["title"] for p in site.posts.values()] == ["sent once"]
    assert page.input_value("#title") == "sent once" and page.evaluate("window.marker") == 1


def test_a_focused_link_or_region_gets_its_new_content(site: BrowserApp, page: Page) -> None:
    """Only the value of a focused control is the user's: a link clicked to call an action,
    and a region focused by a skip link, show what the server rendered after it (they kept
    their old text)."""
    page.goto(site.base + "/widgets")
    page.click("#widget-link")
    expect(page.locator("#widget-total")).to_have_text("Total: 1")
    expect(page.locator("#widget-link")).to_have_text("Bump (1)")
    page.focus("#widget-main")
    page.evaluate(f"actionkit.call({site.actions['bump_widgets'].id!r})")
    expect(page.locator("#widget-total")).to_have_text("Total: 2")
    expect(page.locator("#widget-in-main")).to_have_text("In main: 2")


def test_a_dialog_the_user_opened_stays_open_with_its_errors(site: BrowserApp, page: Page) -> None:
    """A form in a modal ``<dialog>`` that fails shows its errors in the dialog, still open:
    the server renders it closed, and the morph closed it over the errors."""
    page.goto(site.base + "/widgets")
    page.click("#open-dialog")
    page.click("#save-widget")
    expect(page.locator("#widget-name-error")).to_have_text("A name is required.")
    assert page.evaluate("document.getElementById('dialog').open")
    expect(page.locator("#widget-name-error")).to_be_visible()
    # Another action's answer leaves it open too; its own form's success closes it, as the
    # page renders it (a modal closes once saved).
    page.evaluate(f"actionkit.call({site.actions['bump_widgets'].id!r})")
    expect(page.locator("#widget-total")).to_have_text("Total: 1")
    assert page.evaluate("document.getElementById('dialog').open")
    page.fill("#widget-name", "Gizmo")
    page.click("#save-widget")
    expect(page.locator("#dialog")).not_to_have_attribute("open", "")
    assert not page.evaluate("document.getElementById('dialog').open")
    page.click("#widget-link")  # closed as a modal is: the page is not left inert
    expect(page.locator("#widget-total")).to_have_text("Total: 2")


def test_dialogs_the_user_did_not_touch_follow_the_server(site: BrowserApp, page: Page) -> None:
    """A dialog a morph inserts open (a notice) closes when the server renders it closed (it
    stayed open for good); one the server renders open that the user closed stays closed (every
    morph opened it again)."""
    page.goto(site.base + "/widgets")
    page.click("#close-welcome")
    bump = f"actionkit.call({site.actions['bump_widgets'].id!r})"
    page.evaluate(bump)
    expect(page.locator("#widget-total")).to_have_text("Total: 1")
    assert page.evaluate("document.getElementById('notice').open")
    assert not page.evaluate("document.getElementById('welcome').open")
    page.evaluate(bump)
    expect(page.locator("#widget-total")).to_have_text("Total: 2")
    assert not page.evaluate("document.getElementById('notice').open")
    assert not page.evaluate("document.getElementById('welcome').open")
    page.click("#widget-link")  # the page is not left inert by a dialog closed under it
    expect(page.locator("#widget-total")).to_have_text("Total: 3")


def test_an_unknown_action_never_reloads_over_what_was_typed(site: BrowserApp, page: Page) -> None:
    """A form naming an action the server no longer has (after a deploy) reloads the page
    only when nothing typed would be lost; otherwise the error is shown and the text stays."""
    page.goto(site.base + "/widgets")
    page.evaluate("window.marker = 1")
    page.fill("#stale-text", "a long reply")
    page.click("#stale-send")
    expect(page.locator("#stale-form [data-action-error]")).to_be_visible()
    assert page.evaluate("window.marker") == 1
    assert page.input_value("#stale-text") == "a long reply"


def test_a_style_sheet_the_page_gains_after_an_action_is_loaded(
    site: BrowserApp, page: Page
) -> None:
    """The page rendered again at the same URL links a style sheet the document lacks: it is
    added (only the body was morphed in, the new styles never applied)."""
    page.goto(site.base + "/widgets")
    expect(page.locator("#styled")).not_to_have_css("color", "rgb(0, 128, 0)")
    page.click("#widget-link")
    expect(page.locator("#widget-total")).to_have_text("Total: 1")
    expect(page.locator("#styled")).to_have_css("color", "rgb(0, 128, 0)")
    page.click("#widget-link")
    expect(page.locator("#widget-total")).to_have_text("Total: 2")
    assert page.locator("link[href='/widgets.css']").count() == 1


def test_without_idiomorph_the_page_is_still_updated(site: BrowserApp, page: Page) -> None:
    """If idiomorph fails to load, answers still show: the body is replaced instead."""
    page.route("**/_actionkit/idiomorph.*", lambda route: route.abort())
    page.goto(site.base + "/posts")
    assert page.evaluate("typeof Idiomorph") == "undefined"
    page.evaluate("window.marker = 1")
    page.fill("#title", "no morph")
    page.click("#create-button")
    expect(page.locator("#post-1 .title")).to_have_text("no morph")
    assert page.evaluate("window.marker") == 1


def test_client_script_is_served_with_long_caching(site: BrowserApp, page: Page) -> None:
    """The script URL carries a content hash and is cached for a year; one global."""
    page.goto(site.base + "/posts")
    src = page.evaluate("document.querySelector('script[data-actions]').src")
    assert src.startswith(site.base + "/_actionkit/actionkit.")
    asset = page.request.get(src)
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert page.evaluate("Object.isFrozen(actionkit) && actionkit.version") == 1


def test_the_traceback_of_a_debug_answer_goes_to_the_console(site: BrowserApp, page: Page) -> None:
    """With ``debug=True`` the answer of an action that raised carries its traceback: the
    developer finds it in the browser's console (the page shows the short message only)."""
    page.goto(site.base + "/lab")
    error = {"code": "action_failed", "digest": "d1", "traceback": "Traceback: RuntimeError: boom"}
    page.route(
        "**/lab",
        lambda route: (
            route.fulfill(status=500, json={"error": error})
            if route.request.headers.get("action-id")
            else route.continue_()
        ),
    )
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    code = page.evaluate("actionkit.call('add', 1, 2).then(() => 'resolved', (e) => e.code)")
    assert code == "action_failed"
    assert any("RuntimeError: boom" in text for text in logged), logged
