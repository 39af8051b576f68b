"""Rendering the page after an action: the request it is rendered for."""

from __future__ import annotations

import gzip
import typing as t

import pytest
from werkzeug.http import dump_cookie
from werkzeug.sansio.http import parse_cookie
from werkzeug.test import EnvironBuilder, run_wsgi_app

from actionkit import ActionMiddleware, Registry, cookies, revalidate_path
from actionkit.context import url_path
from actionkit.rendering import cookie_header, render_app
from actionkit.testing import ActionClient


@pytest.mark.parametrize(
    "value", ["plain", "a b", 'x"y\\z', "semi;colon", "名é", "\ufffd", "tab\t"]
)
def test_cookies_are_sent_as_a_browser_sends_them_back(value: str) -> None:
    """The page after an action gets the action's cookies as a browser would send the
    Set-Cookie it was given: the same quoting, ASCII only, read back to the same value."""
    header = cookie_header({"n": value})
    assert header == dump_cookie("n", value).split(";")[0]
    assert header.isascii() and parse_cookie(header)["n"] == value


def test_a_cookie_header_that_is_not_utf8_does_not_fail_the_answer() -> None:
    """A Cookie header with bytes that are not UTF-8 is read with replacement characters: the
    action's answer, after it committed, is a normal one."""
    registry = Registry()
    seen: list[str | None] = []

    @registry.action
    def like() -> int:
        seen.append(cookies().get("a"))
        revalidate_path("/")
        return 1

    def page(environ: object, start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])  # type: ignore[operator]
        return [b"page"]

    app = ActionMiddleware(page, registry=registry, cache=False)
    environ = EnvironBuilder(
        "/", method="POST", json=[], headers={"Action-Id": like.id}
    ).get_environ()
    environ["HTTP_COOKIE"] = "a=\xff\xc3\xa9; b=1"
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status == "200 OK" and b'"html":"page"' in b"".join(body)
    assert seen == ["\ufffdé"]


@pytest.mark.parametrize(
    ("url", "shown"), [("/tag/a%2541", "/tag/a%41"), ("/tag/caf%C3%A9", "/tag/café")]
)
def test_the_page_after_a_form_is_the_page_it_was_posted_to(url: str, shown: str) -> None:
    """Without JavaScript, the page rendered after the action is the one at the URL posted to,
    its escapes read once: ``%2541`` is the text ``%41``, not ``A``."""
    registry = Registry()

    @registry.action
    def noop(form: object) -> None:
        pass

    def page(environ: dict[str, str], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [environ["PATH_INFO"].encode("latin-1")]

    client = ActionClient(ActionMiddleware(page, registry=registry, cache=False))
    assert client.get(url).text == shown
    response = client.submit(noop, {}, path=url)
    assert (response.status_code, response.text) == (200, shown)


def test_the_page_in_a_script_answer_is_asked_for_without_content_encoding() -> None:
    """The page that the client script's answer holds as text is asked for with
    ``Accept-Encoding: identity``: an app that compresses its pages for the browsers that take
    it (Flask-Compress) put gzip bytes, read as UTF-8, in the answer. Without JavaScript the
    page is the answer itself and is encoded as the browser accepts."""
    registry = Registry()

    @registry.action
    def like(form: object = None) -> int:
        revalidate_path("/")
        return 1

    def page(environ: dict[str, str], start_response: t.Any) -> list[bytes]:
        body = b"<p>the page</p>"
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Vary", "Accept-Encoding")]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    client = ActionClient(ActionMiddleware(page, registry=registry, cache=False))
    accepts = {"Accept-Encoding": "gzip, deflate, br"}
    answer = client.call(like, path="/", headers=accepts)
    assert answer.json["html"] == "<p>the page</p>"
    response = client.submit(like, {}, path="/", headers=accepts)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data) == b"<p>the page</p>"


def test_a_path_is_written_as_in_its_url() -> None:
    """A WSGI path (latin-1 characters standing for its bytes) as in its URL; a server that
    put text past latin-1 in the environ gets that text's UTF-8."""
    assert url_path("/plain/a-b_c.~") == "/plain/a-b_c.~"
    assert url_path("/tag/caf\u00c3\u00a9") == "/tag/caf%C3%A9"
    assert url_path("/100%") == "/100%25"
    assert url_path("/x/\u540d") == "/x/%E5%90%8D"


def test_an_app_that_never_starts_its_response_is_named() -> None:
    """A WSGI app returning its body without calling start_response (PEP 3333 requires it)
    is a clear error naming the app, not an IndexError from inside actionkit."""

    def careless(environ: t.Any, start_response: t.Any) -> list[bytes]:
        return [b"page"]

    with pytest.raises(RuntimeError, match="careless.*without calling start_response"):
        render_app(careless, {})
