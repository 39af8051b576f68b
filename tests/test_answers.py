"""The answers to actions: their status, headers and body, what a crash leaves out, and when
the client gets the page."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import logging
import math
import typing as t
import uuid

import pytest
from pydantic import BaseModel
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from actionkit import ActionMiddleware, Registry, after, answers, cookies, fail
from actionkit.context import RequestContext
from actionkit.exceptions import RedirectSignal, RequestRefused
from actionkit.rendering import Rendered
from actionkit.testing import ActionClient


def _page(environ: t.Any, start_response: t.Any) -> list[bytes]:
    name = cookies().get("name", "-")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [f"<!doctype html><title>page</title><p>name={name}</p>".encode()]


@pytest.mark.parametrize(
    "client_js", [pytest.param(True, id="js"), pytest.param(False, id="no-js")]
)
def test_a_crashed_action_sends_no_cookies_and_runs_no_after(
    client_js: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """An action that sets a cookie and registers after() callbacks, then raises, answers 500
    without its Set-Cookie, and its callbacks never run, not even when the answer closes."""
    registry = Registry()
    ran: list[str] = []

    @registry.action(id="crash")
    def crash(form: MultiDict[str, str]) -> None:
        cookies().set("name", "half-done")
        after(lambda: ran.append("after"))
        raise RuntimeError("boom")

    app = ActionMiddleware(_page, registry=registry, cache=False)
    headers = {"Action-Id": "crash"} if client_js else {}
    environ = EnvironBuilder(
        "/", method="POST", data={"$ACTION_ID_crash": ""}, headers=headers
    ).get_environ()
    started: list[tuple[str, list[tuple[str, str]]]] = []
    with caplog.at_level(logging.ERROR, logger="actionkit"):
        iterable = app(environ, lambda status, h, exc_info=None: started.append((status, h)))
        b"".join(iterable)
        getattr(iterable, "close", lambda: None)()
    ((status, sent),) = started
    assert status.startswith("500")
    assert [v for k, v in sent if k.lower() == "set-cookie"] == []
    assert ran == []
    assert "boom" not in str(sent)


def test_an_action_that_only_changed_cookies_gets_the_page() -> None:
    """A JSON call whose action sets a cookie, and nothing else, gets the page rendered with
    the new cookie in its answer; one that changed nothing gets no page."""
    registry = Registry()

    @registry.action(id="remember")
    def remember(name: str) -> str:
        cookies().set("name", name)
        return name

    @registry.action(id="nothing")
    def nothing() -> int:
        return 1

    client = ActionClient(ActionMiddleware(_page, registry=registry, cache=False))
    answer = client.call(registry.get("remember"), "ada", page="/")
    assert answer.status_code == 200
    assert answer.json["result"] == "ada" and answer.json["redirect"] is None
    assert answer.json["revalidated"] == {"paths": [], "tags": []}
    assert answer.json["html"] is not None and "name=ada" in answer.json["html"]
    assert answer.headers["Set-Cookie"].startswith("name=ada;")
    assert client.call(registry.get("nothing"), page="/").json["html"] is None


NO_STORE_JSON = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
NO_STORE_HTML = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
PAGE_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", "4"),
    ("Cache-Control", "public, s-maxage=60"),
    ("ETag", '"v1"'),
    ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT"),
    ("X-Frame-Options", "DENY"),
]


def _html(title: str, message: str, extra: str = "") -> bytes:
    return (
        f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{title}</title>'
        f"<h1>{title}</h1><p>{message}</p>{extra}</html>"
    ).encode()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(
            lambda: answers.refused(RequestRefused("cross_origin", "Elsewhere."), client=True),
            (403, NO_STORE_JSON, b'{"error": {"code": "cross_origin", "message": "Elsewhere."}}'),
            id="refused-client",
        ),
        pytest.param(
            lambda: answers.refused(RequestRefused("body_too_large", "Too <big>."), client=False),
            (
                413,
                NO_STORE_HTML,
                _html("413 Request Entity Too Large", "Too &lt;big&gt;."),
            ),
            id="refused-html",
        ),
        pytest.param(
            lambda: answers.redirected(RedirectSignal("/posts?a=1&b=2", "push", 303)),
            (
                303,
                [("Location", "/posts?a=1&b=2"), ("Content-Type", "text/html; charset=utf-8")],
                _html("303 See Other", "Redirecting to /posts?a=1&amp;b=2."),
            ),
            id="redirected",
        ),
        pytest.param(
            lambda: answers.page(Rendered("200 OK", PAGE_HEADERS, b"page"), "ok"),
            (
                200,
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("X-Frame-Options", "DENY"),
                    ("Cache-Control", "no-store"),
                ],
                b"page",
            ),
            id="page",
        ),
        pytest.param(
            lambda: answers.page(Rendered("200 OK", [], b"page"), fail(422)),
            (422, [("Cache-Control", "no-store")], b"page"),
            id="page-failed",
        ),
        pytest.param(
            lambda: answers.page(Rendered("404 NOT FOUND", [], b"gone"), fail(422)),
            (404, [("Cache-Control", "no-store")], b"gone"),
            id="page-failed-not-found",
        ),
        pytest.param(
            lambda: answers.page(None, "ok"),
            (200, [("Cache-Control", "no-store")], b""),
            id="no-page",
        ),
        pytest.param(
            lambda: answers.page(None, fail(409)),
            (409, [("Cache-Control", "no-store")], b""),
            id="no-page-failed",
        ),
        pytest.param(
            lambda: answers.http_error(404, "not_found", True, None),
            (404, NO_STORE_JSON, b'{"error": {"code": "not_found", "message": "Not Found"}}'),
            id="http-error-client",
        ),
        pytest.param(
            lambda: answers.http_error(499, "client_closed", True, None),
            (499, NO_STORE_JSON, b'{"error": {"code": "client_closed", "message": "Error"}}'),
            id="http-error-client-unknown-status",
        ),
        pytest.param(
            lambda: answers.http_error(403, "forbidden", False, None),
            (403, NO_STORE_HTML, _html("403 Forbidden", "Forbidden")),
            id="http-error-html",
        ),
        pytest.param(
            lambda: answers.http_error(499, "client_closed", False, None),
            (499, NO_STORE_HTML, _html("499 Error", "Error")),
            id="http-error-html-unknown-status",
        ),
        pytest.param(
            lambda: answers.http_error(
                404, "not_found", False, Rendered("404 X", PAGE_HEADERS, b"gone")
            ),
            (404, [h for h in PAGE_HEADERS if h[0] != "Content-Length"], b"gone"),
            id="http-error-apps-page",
        ),
        pytest.param(
            lambda: answers.crashed("abc123", False, None),
            (
                500,
                NO_STORE_HTML,
                _html("500 Internal Server Error", "The action failed. Reference: abc123."),
            ),
            id="crashed-html",
        ),
        pytest.param(
            lambda: answers.crashed("abc123", False, "Traceback <x>"),
            (
                500,
                NO_STORE_HTML,
                _html(
                    "500 Internal Server Error",
                    "The action failed. Reference: abc123.",
                    "<pre>Traceback &lt;x&gt;</pre>",
                ),
            ),
            id="crashed-html-debug",
        ),
        pytest.param(
            lambda: answers.crashed("abc123", True, None),
            (500, NO_STORE_JSON, b'{"error": {"code": "action_failed", "digest": "abc123"}}'),
            id="crashed-client",
        ),
    ],
)
def test_each_answer_is_exactly(
    make: t.Callable[[], answers.Answer], expected: tuple[int, answers.Headers, bytes]
) -> None:
    """Each answer has its status, its headers spelled as HTTP spells them (WSGI middleware
    often looks them up as written) and its body: the error code and the status's reason for
    the client, an escaped short page for a browser; the app's own page keeps its headers but
    those describing that page alone (its length, its caching); a status Werkzeug has no
    reason for is "Error"; a page that cannot be rendered again is an empty no-store answer
    with the status of the action."""
    assert make() == expected


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/tags/thé?q=x y", "/tags/th%C3%A9?q=x%20y"),
        ("/tags/日本", "/tags/%E6%97%A5%E6%9C%AC"),
        ("/plain?a=1", "/plain?a=1"),
        ("https://例え.jp/パス", "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9"),
    ],
)
def test_a_redirect_to_a_url_with_text_past_ascii_is_sent_as_its_uri(
    url: str, location: str
) -> None:
    """Without JavaScript, redirect() to a URL written as text answers 303 to its URI (a
    header holds latin-1 only), as Werkzeug's redirect() does; the client gets it as given."""
    registry = Registry()

    @registry.action
    def go(form: t.Any) -> None:
        from actionkit import redirect

        redirect(url)

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"page"]

    client = ActionClient(ActionMiddleware(page, registry=registry, cache=False))
    answer = client.submit(go, {})
    assert (answer.status_code, answer.headers["Location"]) == (303, location)
    assert client.submit(go, {}, js=True).json["redirect"]["url"] == url


@pytest.mark.parametrize(
    ("status", "line"),
    [
        pytest.param(404, "404 Not Found", id="known"),
        pytest.param(499, "499 Unknown", id="unknown"),
    ],
)
def test_status_line(status: int, line: str) -> None:
    """The status line sent has the status's reason, or "Unknown" for a status without one."""
    assert answers.status_line(status) == line


def test_send_adds_the_cookies_and_the_length() -> None:
    """send() starts the answer with its headers, the action's Set-Cookie headers and the
    Content-Length of its body."""
    ctx = RequestContext({}, set_cookies={"a": "a=1; Path=/", "b": "b=2; Path=/"})
    started: list[tuple[str, list[tuple[str, str]]]] = []
    body = answers.send(
        answers.Answer(201, NO_STORE_JSON, b"12345"),
        lambda status, headers, exc_info=None: started.append((status, headers)),
        ctx,
    )
    assert list(body) == [b"12345"]
    assert started == [
        (
            "201 Created",
            [
                *NO_STORE_JSON,
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/"),
                ("Content-Length", "5"),
            ],
        )
    ]


def test_a_failing_after_callback_is_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """An after() callback that raises is logged by name with its traceback, and the callbacks
    after it still run."""
    ran: list[str] = []

    def boom() -> None:
        raise ValueError("after failed")

    with caplog.at_level(logging.ERROR, logger="actionkit"):
        answers.run_after([boom, lambda: ran.append("next")])
    assert ran == ["next"]
    assert f"after() callback {boom!r} raised" in caplog.text and "after failed" in caplog.text


def _client_answer(rendered: Rendered | None, result: t.Any = 1) -> t.Any:
    return json.loads(answers.client(result, None, "/p", rendered, RequestContext({})).body)


@pytest.mark.parametrize(
    ("status", "html"),
    [
        pytest.param("200 OK", "page", id="200"),
        pytest.param("299 Fine", "page", id="299"),
        pytest.param("300 Multiple Choices", None, id="300"),
        pytest.param("302 Found", None, id="302"),
        pytest.param("404 Not Found", None, id="404"),
    ],
)
def test_the_client_gets_the_page_only_when_it_succeeded(status: str, html: str | None) -> None:
    """The client script gets the page's HTML only when the page answered 2xx."""
    assert _client_answer(Rendered(status, [], b"page"))["html"] == html


def test_a_page_that_is_not_utf8_reaches_the_client_with_replacement_characters() -> None:
    """A page with bytes that are not UTF-8 is sent to the client script with U+FFFD in their
    place, not refused."""
    rendered = Rendered("200 OK", [], b"caf\xe9 \xc3\xa9")
    assert _client_answer(rendered)["html"] == "caf\ufffd \u00e9"


class _Event(BaseModel):
    name: str
    day: datetime.date


def test_results_the_client_can_and_cannot_receive(caplog: pytest.LogCaptureFixture) -> None:
    """A pydantic model in an action's result is sent as its JSON dump (a date as ISO text);
    NaN or an infinity, not JSON, is a logged 500."""
    registry = Registry()

    @registry.action(id="event")
    def event() -> list[_Event]:
        return [_Event(name="launch", day=datetime.date(2026, 12, 1))]

    @registry.action(id="nan")
    def nan() -> dict[str, float]:
        return {"ratio": math.nan}

    @registry.action(id="inf")
    def inf() -> float:
        return -math.inf

    client = ActionClient(ActionMiddleware(_page, registry=registry, cache=False))
    answer = client.call(event)
    assert answer.status_code == 200
    assert answer.json["result"] == [{"name": "launch", "day": "2026-12-01"}]
    with caplog.at_level(logging.ERROR, logger="actionkit"):
        assert client.call(nan).status_code == 500
        assert client.call(inf).status_code == 500
    assert "{'ratio': nan}, which is not a JSON value" in caplog.text


class _Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class _Point:
    x: int
    y: int


def test_results_of_the_types_typed_actions_take_reach_the_client() -> None:
    """A date, a Decimal, a UUID, an Enum, a set or a dataclass returned by an action (the
    values typed parameters give it) reach the client as pydantic writes them in JSON: the
    action has run, and a 500 would tell the page it failed. Something pydantic cannot write
    either is still a 500."""
    registry = Registry()
    ran: list[str] = []
    values: dict[str, t.Any] = {
        "day": datetime.date(2024, 3, 5),
        "price": decimal.Decimal("9.90"),
        "ref": uuid.UUID(int=1),
        "colour": _Colour.RED,
        "tags": {"a"},
        "point": _Point(1, 2),
    }

    @registry.action(id="give")
    def give(name: str) -> t.Any:
        ran.append(name)
        return values[name]

    @registry.action(id="odd")
    def odd() -> t.Any:
        return object()

    client = ActionClient(ActionMiddleware(_page, registry=registry, cache=False))
    got = {name: client.call(give, name).json["result"] for name in values}
    assert got == {
        "day": "2024-03-05",
        "price": "9.90",
        "ref": "00000000-0000-0000-0000-000000000001",
        "colour": "red",
        "tags": ["a"],
        "point": {"x": 1, "y": 2},
    }
    answer = client.submit(give, {"name": "day"}, js=True)
    assert answer.status_code == 200 and answer.json["result"] == "2024-03-05"
    assert ran == [*values, "day"]
    assert client.call(odd).status_code == 500
