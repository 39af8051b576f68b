"""Rendering the page after an action: which URLs are pages of this site."""

from __future__ import annotations

import io
import json
import typing as t

import pytest
from werkzeug.test import EnvironBuilder

from actionkit import ActionMiddleware, Registry
from actionkit.rendering import local_path

# Characters a browser or a proxy reads differently from Python's URL parser: "\" is "/" to a
# browser, Python drops TAB, CR and LF, and NUL ends a C string.
UNSAFE = [
    pytest.param("\\", id="backslash"),
    pytest.param("\r", id="CR"),
    pytest.param("\n", id="LF"),
    pytest.param("\t", id="TAB"),
    pytest.param("\0", id="NUL"),
]


@pytest.mark.parametrize("char", UNSAFE)
@pytest.mark.parametrize(
    "template",
    [
        pytest.param("/posts{}x", id="inside"),
        pytest.param("/a{}/b", id="between-segments"),
        pytest.param("/posts?q={}", id="query"),
    ],
)
def test_local_path_refuses_unsafe_characters(char: str, template: str) -> None:
    """A URL holding a backslash, CR, LF, TAB or NUL is not a page of this site."""
    assert local_path(template.replace("{}", "")) is not None  # the same URL without it is
    assert local_path(template.format(char)) is None


@pytest.mark.parametrize("char", UNSAFE)
def test_action_page_with_unsafe_characters_is_400(char: str) -> None:
    """An Action-Page header with a backslash, CR, LF, TAB or NUL is refused with 400 before
    the action runs."""
    registry = Registry()
    ran: list[int] = []

    @registry.action(id="views")
    def views() -> int:
        ran.append(1)
        return len(ran)

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<!doctype html><title>page</title>"]

    app = ActionMiddleware(page, registry=registry, cache=False)
    statuses: list[str] = []

    def post(action_page: str) -> dict[str, t.Any]:
        environ = EnvironBuilder(
            "/posts", method="POST", headers={"Action-Id": "views"}
        ).get_environ()
        # Set on the environ: a test client refuses CR and LF in a header value; a server may not.
        environ.update(
            {
                "HTTP_ACTION_PAGE": action_page,
                "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": "2",
                "wsgi.input": io.BytesIO(b"[]"),
            }
        )
        iterable = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        body = b"".join(iterable)
        getattr(iterable, "close", lambda: None)()
        return t.cast(dict[str, t.Any], json.loads(body))

    assert "html" in post("/posts") and statuses[-1].startswith("200") and ran == [1]
    answer = post(f"/posts{char}x")
    assert statuses[-1].startswith("400"), statuses
    assert answer["error"]["code"] == "bad_request" and "Action-Page" in answer["error"]["message"]
    assert ran == [1]
