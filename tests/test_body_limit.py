"""The size limit of action requests: body_limit bytes are accepted, one more is refused."""

from __future__ import annotations

import io
import typing as t

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from actionkit import ActionMiddleware, Registry

LIMIT = 100


def _page(environ: t.Any, start_response: t.Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<!doctype html><title>page</title>"]


def _app() -> tuple[ActionMiddleware, Registry, list[int]]:
    registry = Registry()
    ran: list[int] = []

    @registry.action(id="echo")
    def echo(*args: t.Any) -> int:
        ran.append(len(args))
        return len(args)

    @registry.action(id="submit")
    def submit(form: MultiDict[str, str]) -> None:
        ran.append(len(form["f"]))

    app = ActionMiddleware(_page, registry=registry, cache=False, body_limit=LIMIT)
    return app, registry, ran


def _json_body(size: int) -> bytes:
    body = b'["' + b"x" * (size - 4) + b'"]'
    assert len(body) == size
    return body


def _form_body(size: int) -> bytes:
    head = b"%24ACTION_ID_submit=&f="
    body = head + b"x" * (size - len(head))
    assert len(body) == size
    return body


KINDS = [
    pytest.param("json", id="json-call"),
    pytest.param("js-form", id="js-form"),
    pytest.param("form", id="no-js-form"),
]


def _post(kind: str, size: int, content_length: bool) -> tuple[str, list[int]]:
    app, registry, ran = _app()
    headers = {}
    if kind == "json":
        body, content_type = _json_body(size), "application/json"
        headers["Action-Id"] = "echo"
    else:
        body, content_type = _form_body(size), "application/x-www-form-urlencoded"
        if kind == "js-form":
            headers["Action-Id"] = "submit"
    environ = EnvironBuilder("/", method="POST", headers=headers).get_environ()
    environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_TYPE": content_type})
    if content_length:
        environ["CONTENT_LENGTH"] = str(len(body))
    else:  # chunked: the server ends the stream, nobody says how long it is
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True
    statuses: list[str] = []
    iterable = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(iterable)
    getattr(iterable, "close", lambda: None)()
    return statuses[0], ran


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "content_length",
    [pytest.param(True, id="content-length"), pytest.param(False, id="chunked")],
)
def test_a_body_of_exactly_body_limit_bytes_runs(kind: str, content_length: bool) -> None:
    """body_limit is the largest body accepted: exactly that many bytes run the action, with a
    Content-Length or without one."""
    status, ran = _post(kind, LIMIT, content_length)
    assert status.startswith("200"), status
    assert len(ran) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "content_length",
    [pytest.param(True, id="content-length"), pytest.param(False, id="chunked")],
)
def test_a_body_one_byte_over_body_limit_is_413(kind: str, content_length: bool) -> None:
    """One byte more than body_limit is refused with 413 and runs nothing, whether the size is
    announced by Content-Length or only found by reading."""
    status, ran = _post(kind, LIMIT + 1, content_length)
    assert status.startswith("413"), status
    assert ran == []
