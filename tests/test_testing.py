from __future__ import annotations

import datetime
import io
import typing as t

from werkzeug.datastructures import MultiDict

from actionkit import ActionMiddleware, Registry
from actionkit.testing import ActionClient


def _page(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<!doctype html>page"]


def test_submit_and_call() -> None:
    """submit() posts a form as a browser without JS; call() sends JSON as the client does."""
    registry = Registry()
    received: list[t.Any] = []

    @registry.action
    def record(*args: t.Any) -> str:
        received.append(args)
        return "done"

    client = ActionClient(ActionMiddleware(_page, registry=registry, cache=False))
    response = client.submit(record.bind(1), {"tags": ["a", "b"], "file": (io.BytesIO(b"x"), "f")})
    assert response.status_code == 200 and response.text == "<!doctype html>page"
    bound, form = received[-1]
    assert bound == 1 and form.getlist("tags") == ["a", "b"] and form["file"].filename == "f"
    answer = client.submit(record, MultiDict([("a", "1")]), js=True, path="/p?q=1").json
    assert answer["result"] == "done" and answer["url"] == "/p?q=1"
    assert answer["html"] == "<!doctype html>page"  # a form submission shows the page
    assert client.call(record.bind(2), 3).json["result"] == "done"
    assert received[-1] == (2, 3)


def test_submit_sends_every_value_of_a_multidict() -> None:
    """A MultiDict given to submit() sends each value of a repeated field, as Client.post()
    does with it (a checkbox group's test passed with the first box only)."""
    registry = Registry()

    @registry.action
    def tag(tags: list[str]) -> list[str]:
        return tags

    client = ActionClient(ActionMiddleware(_page, registry=registry, cache=False))
    data = MultiDict([("tags", "a"), ("tags", "b")])
    assert client.submit(tag, data, js=True).json["result"] == ["a", "b"]


def test_call_sends_arguments_as_the_client_script_does() -> None:
    """call() writes a date as ISO 8601 text, as the browser's JSON does, also through Flask's
    client, whose JSON provider writes an HTTP date (which a ``date`` parameter refuses)."""
    from flask import Flask

    from actionkit.flask import ActionKit

    registry = Registry()

    @registry.action
    def shift(day: datetime.date) -> str:
        return (day + datetime.timedelta(days=1)).isoformat()

    app = Flask(__name__)
    app.secret_key = "test secret key"
    ActionKit(app, registry=registry, cache=False)
    app.get("/")(lambda: "page")
    for client in (
        ActionClient(ActionMiddleware(_page, registry=registry, cache=False)),
        app.test_client(),
    ):
        answer = client.call(shift, datetime.date(2024, 3, 5))
        assert answer.status_code == 200 and answer.json["result"] == "2024-03-06", answer.json
