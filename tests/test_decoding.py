"""Decoding an action request: what makes a POST an action, decided before any other check."""

from __future__ import annotations

import io
import typing as t

import pytest
from werkzeug.test import Client, EnvironBuilder

from actionkit.testing import ActionClient

from .posts_app import make_app

PAGE = b'<form><input type="hidden" name="$ACTION_ID_abc" value=""></form>'


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="same-site"),
        pytest.param({"Origin": "https://elsewhere.example"}, id="cross-origin"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="sec-fetch-site"),
    ],
)
def test_an_upload_quoting_an_action_field_is_the_apps(headers: dict[str, str]) -> None:
    """A multipart upload whose file content (a saved page) holds name="$ACTION_ID_..." is not
    an action: it reaches the app whatever its origin and size, with every byte."""
    app, registry, db = make_app(body_limit=1000)
    content = PAGE + b"x" * 5000
    response = Client(app).post(
        "/raw",
        data={"page": (io.BytesIO(content), "saved.html"), "note": 'name="$ACTION_ID_abc"'},
        headers=headers,
    )
    assert response.status_code == 200
    assert int(response.text.split()[1]) > len(content)


def test_a_part_named_as_an_action_makes_an_action() -> None:
    """A real multipart field name starting with $ACTION_ID_ is an action, cross-site checks
    and all."""
    app, registry, db = make_app()
    action_id = next(a.id for a in registry if a.name == "create_post")
    data = {f"$ACTION_ID_{action_id}": "", "title": "Hi"}
    client = Client(app)
    refused = client.post(
        "/posts",
        data=data,
        content_type="multipart/form-data",
        headers={"Origin": "https://elsewhere.example"},
    )
    assert refused.status_code == 403 and not db.posts
    created = client.post("/posts", data=data, content_type="multipart/form-data")
    assert created.status_code == 303 and db.posts[1]["title"] == "Hi"


def test_a_nameless_part_is_not_an_action_field() -> None:
    """A part without a name (Content-Disposition: form-data) does not make an action, and
    does not break the search."""
    app, registry, db = make_app()
    body = (
        b"--b\r\nContent-Disposition: form-data\r\n\r\n$ACTION_ID_x\r\n"
        b'--b\r\nContent-Disposition: form-data; name="q"\r\n\r\n1\r\n--b--\r\n'
    )
    response = Client(app).post("/raw", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 200 and response.text == f"POST {len(body)}"


def _form_app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    """Answers 307 from /old to /new (without reading the body, as Flask's trailing-slash
    redirect does) and echoes the raw body at /new."""
    if environ["PATH_INFO"] == "/old":
        start_response("307 Temporary Redirect", [("Location", "/new")])
        return [b""]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.input"].read()]


def test_the_body_is_sent_again_when_a_test_client_follows_a_307() -> None:
    """A form POST that is not an action leaves the caller's stream where it was: Werkzeug's
    test client sends the same stream again when it follows a 307, and the form arrives."""
    from actionkit import ActionMiddleware

    app = ActionMiddleware(_form_app, cache=False)
    response = Client(app).post("/old", data={"q": "1"}, follow_redirects=True)
    assert response.request.path == "/new" and response.data == b"q=1"


def test_a_non_action_body_cut_short_is_the_apps() -> None:
    """A form POST that names no action and ends before its Content-Length reaches the app
    with what there was: what to answer is its business."""
    from actionkit import ActionMiddleware

    app = ActionMiddleware(_form_app, cache=False)
    environ = EnvironBuilder(
        "/new",
        method="POST",
        input_stream=io.BytesIO(b"a=1"),
        content_type="application/x-www-form-urlencoded",
    ).get_environ()
    environ["CONTENT_LENGTH"] = "100"
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses == ["200 OK"] and body == b"a=1"


def test_an_action_body_cut_short_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    """An action request that ends before its Content-Length is a 400 and runs nothing."""
    app, registry, db = make_app()
    action_id = next(a.id for a in registry if a.name == "create_post")
    data = f"%24ACTION_ID_{action_id}=&title=x".encode()
    environ = EnvironBuilder(
        "/posts",
        method="POST",
        input_stream=io.BytesIO(data),
        content_type="application/x-www-form-urlencoded",
    ).get_environ()
    environ["CONTENT_LENGTH"] = "100"
    statuses: list[str] = []
    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses[0].startswith("400") and not db.posts


def test_action_client_submits_multipart(tmp_path: t.Any) -> None:
    """The usual test of an upload action goes through the multipart decoder."""
    app, registry, db = make_app()
    create = next(a for a in registry if a.name == "create_post")
    response = ActionClient(app).submit(
        create, {"title": "Up"}, path="/posts", content_type="multipart/form-data"
    )
    assert response.status_code == 303 and db.posts[1]["title"] == "Up"


def test_an_unknown_action_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown action ID is answered 404 and logged as a warning with the ID and the path,
    so that pages older than the server show up in the logs."""
    app, registry, db = make_app()
    response = Client(app).post("/posts?x=1", data={"$ACTION_ID_gone123": ""})
    assert response.status_code == 404
    assert "Unknown action ID 'gone123' posted to /posts?x=1" in caplog.text
    assert caplog.records[-1].levelname == "WARNING"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        pytest.param(
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            "no name",
            id="nameless-part",
        ),
        pytest.param(b"[" * 1000 + b"]" * 1000, "application/json", "too deeply", id="deep"),
        pytest.param(b"[" * 100_000, "application/json", "too deeply", id="deep-unclosed"),
        pytest.param(b"[NaN]", "application/json", "NaN is not a JSON value", id="nan"),
        pytest.param(b"[-Infinity]", "application/json", "Infinity", id="infinity"),
    ],
)
def test_bodies_that_cannot_be_decoded_are_400(
    body: bytes, content_type: str, message: str
) -> None:
    """A part without a name, JSON nested beyond the parser, and NaN or Infinity (not JSON)
    are a 400 naming the problem, and run nothing."""
    app, registry, db = make_app()
    action_id = next(a.id for a in registry if a.name == "create_post")
    response = Client(app).post(
        "/posts", data=body, content_type=content_type, headers={"Action-Id": action_id}
    )
    assert response.status_code == 400 and message in response.json["error"]["message"]
    assert not db.posts


def test_a_nameless_part_in_an_action_form_is_400() -> None:
    """Without the script too: a form naming an action with a nameless part is a 400."""
    app, registry, db = make_app()
    action_id = next(a.id for a in registry if a.name == "create_post")
    body = (
        f'--b\r\nContent-Disposition: form-data; name="$ACTION_ID_{action_id}"\r\n\r\n\r\n'
        "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n"
    ).encode()
    response = Client(app).post("/posts", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400 and not db.posts


@pytest.mark.parametrize(
    ("path", "status"),
    [("/admin", 200), ("/admin/users?x=1", 200), ("/", 404), ("/administrator", 404)],
)
def test_a_scoped_action_runs_only_at_or_below_its_path(path: str, status: int) -> None:
    """@action(under="/admin/") runs when posted at or below /admin and is refused with 404
    anywhere else, running nothing (without a framework too)."""
    from actionkit import ActionMiddleware, Registry

    registry = Registry()
    ran: list[str] = []

    @registry.action(under="/admin/")
    def wipe() -> str:
        ran.append(path)
        return "wiped"

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"page"]

    client = ActionClient(ActionMiddleware(page, registry=registry, cache=False))
    assert client.call(wipe, path=path).status_code == status
    assert ran == ([path] if status == 200 else [])
