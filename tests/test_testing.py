from __future__ import annotations

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
