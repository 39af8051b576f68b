"""The answers to actions: what a crash leaves out, and when the client gets the page."""

from __future__ import annotations

import logging
import typing as t

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from actionkit import ActionMiddleware, Registry, after, cookies
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
