"""Decoding an action request: what makes a POST an action, decided before any other check."""

from __future__ import annotations

import gc
import html
import io
import logging
import re
import typing as t
import warnings

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
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
    assert "a page older than the server, or a client guessing" in caplog.text
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


# -- what an action request may carry, and how each refusal reads --------------------------------


def _call_app() -> tuple[t.Any, t.Any, list[tuple[t.Any, ...]]]:
    """A middleware whose action ``record`` records its arguments, and that action."""
    from actionkit import ActionMiddleware, Registry

    registry = Registry()
    calls: list[tuple[t.Any, ...]] = []

    @registry.action(id="record")
    def record(*args: t.Any) -> int:
        # A form as the action saw it: its files are closed once the action returns.
        calls.append(tuple(_seen(arg) for arg in args))
        return len(args)

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"page"]

    return ActionMiddleware(page, registry=registry, cache=False), record, calls


def _seen(arg: t.Any) -> t.Any:
    if not isinstance(arg, MultiDict):
        return arg
    return [
        (k, (v.filename, v.read()) if isinstance(v, FileStorage) else v)
        for k, v in arg.items(multi=True)
    ]


def _message(response: t.Any) -> str:
    """The refusal's message: the JSON error's, or the paragraph of the short HTML page; one
    sentence, as every message is."""
    if response.mimetype == "application/json":
        message = str(response.json["error"]["message"])
    else:
        message = html.unescape(re.findall("<p>(.*)</p>", response.text)[0])
    # A sentence, unless it ends with the words of the parser that refused the body.
    assert message[0].isupper() and (message[-1] in ".?" or "decoded: " in message), message
    return message


def _multipart(*parts: tuple[str, str]) -> bytes:
    """A multipart body with boundary "b" of (headers, value) parts."""
    body = "".join(f"--b\r\n{headers}\r\n\r\n{value}\r\n" for headers, value in parts)
    return (body + "--b--\r\n").encode()


@pytest.mark.parametrize(
    ("request_kwargs", "status", "words"),
    [
        pytest.param(
            {"json": [], "headers": {"Action-Id": "record", "Origin": "https://elsewhere.example"}},
            403,
            ["comes from another site", "add its origin to allowed_origins"],
            id="cross-origin",
        ),
        pytest.param(
            {"json": [], "headers": {"Action-Id": "gone"}},
            404,
            ["No such action", "the page may be older than the server"],
            id="unknown-action",
        ),
        pytest.param(
            {"data": "a,b", "content_type": "text/csv", "headers": {"Action-Id": "record"}},
            400,
            [
                "Unsupported content type 'text/csv' for an action call",
                "send application/json, application/x-www-form-urlencoded or multipart/form-data",
            ],
            id="unsupported-type",
        ),
        pytest.param(
            {"data": "", "content_type": "text/plain", "headers": {"Action-Id": "record"}},
            400,
            ["Unsupported content type 'text/plain'"],
            id="empty-body-of-another-type",
        ),
        pytest.param(
            {
                "data": '{"a": 1}',
                "content_type": "application/json",
                "headers": {"Action-Id": "record"},
            },
            400,
            ["JSON body is an array of arguments, not dict"],
            id="json-object",
        ),
        pytest.param(
            {
                "data": "[" * 100_000,
                "content_type": "application/json",
                "headers": {"Action-Id": "record"},
            },
            400,
            ["The JSON body is nested too deeply"],
            id="json-too-deep",
        ),
        pytest.param(
            {
                "data": b"%24ACTION_ID_record=&name=caf\xe9",
                "content_type": "application/x-www-form-urlencoded",
                "headers": {"Action-Id": "record"},
            },
            400,
            ["The form body could not be decoded"],
            id="form-not-utf8",
        ),
        pytest.param(
            {
                "data": b"--b--\r\n",
                "content_type": "multipart/form-data; boundary=b",
                "headers": {"Action-Id": "record"},
            },
            400,
            ["The multipart body has no parts"],
            id="multipart-without-parts",
        ),
        pytest.param(
            {
                "data": _multipart(('Content-Disposition: form-data; name="a"', "1")),
                "content_type": "multipart/form-data; boundary=other",
                "headers": {"Action-Id": "record"},
            },
            400,
            ["The form body could not be decoded"],
            id="multipart-wrong-boundary",
        ),
        pytest.param(
            {
                "data": _multipart(("Content-Disposition: form-data", "x")),
                "content_type": "multipart/form-data; boundary=b",
                "headers": {"Action-Id": "record"},
            },
            400,
            ["A part of the multipart body has no name (Content-Disposition)"],
            id="multipart-nameless-part",
        ),
    ],
)
def test_refusals_say_what_is_wrong(
    request_kwargs: dict[str, t.Any], status: int, words: list[str]
) -> None:
    """Each request refused before its action runs gets its status and a message naming the
    problem and, where there is one, the fix; the action does not run."""
    app, record, calls = _call_app()
    response = Client(app).post("/", **request_kwargs)
    assert response.status_code == status
    message = _message(response)
    assert all(word in message for word in words), message
    assert calls == []


def test_a_body_cut_short_is_refused_with_the_reason() -> None:
    """An action request whose body ends before its Content-Length says so."""
    app, record, calls = _call_app()
    environ = EnvironBuilder(
        "/", method="POST", headers={"Action-Id": "record"}, content_type="application/json"
    ).get_environ()
    environ.update({"wsgi.input": io.BytesIO(b"[1,"), "CONTENT_LENGTH": "10"})
    response = Client(lambda e, s: app(environ, s)).get("/")
    assert response.status_code == 400
    assert "The request body ended before its Content-Length" in _message(response)
    assert calls == []


@pytest.mark.parametrize(
    ("content_type", "body", "status", "args"),
    [
        pytest.param(None, b"", 200, (), id="no-type-no-body"),
        pytest.param("application/json", b"", 200, (), id="json-no-body"),
        pytest.param("application/json", b"[1]", 200, (1,), id="json"),
        pytest.param(None, b"[1]", 400, None, id="no-type-with-body"),
        pytest.param("text/plain", b"", 400, None, id="other-type-no-body"),
    ],
)
def test_a_call_without_a_body_needs_no_content_type(
    content_type: str | None, body: bytes, status: int, args: tuple[t.Any, ...] | None
) -> None:
    """An Action-Id POST without a body and without a Content-Type (fetch() with no body) is a
    call without arguments; a body needs a content type the decoder reads, and another content
    type is refused even without a body."""
    app, record, calls = _call_app()
    environ = EnvironBuilder("/", method="POST", headers={"Action-Id": "record"}).get_environ()
    environ.pop("CONTENT_TYPE", None)
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    response = Client(lambda e, s: app(environ, s)).get("/")
    assert response.status_code == status
    assert calls == ([] if args is None else [args])


class _Unreadable(io.RawIOBase):
    """A server's stream that must not be read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        raise AssertionError("the body was read")


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="json"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
    ],
)
def test_a_call_announcing_more_than_body_limit_is_refused_from_its_headers(
    content_type: str,
) -> None:
    """An Action-Id request whose Content-Length is over body_limit is refused with 413 from
    its headers; its body is then read to its end and dropped, so that a client still sending
    it reads the answer (a server closing the connection meanwhile would reset it)."""
    from actionkit import ActionMiddleware

    app, record, calls = _call_app()
    limited = ActionMiddleware(app.app, registry=app.registry, cache=False, body_limit=100)
    environ = EnvironBuilder(
        "/", method="POST", headers={"Action-Id": "record"}, content_type=content_type
    ).get_environ()
    stream = io.BytesIO(b"x" * 101)
    environ.update({"wsgi.input": stream, "CONTENT_LENGTH": "101"})
    response = Client(lambda e, s: limited(environ, s)).get("/")
    assert response.status_code == 413 and calls == []
    assert stream.tell() == 101


def test_several_action_ids_are_refused() -> None:
    """Two Action-Id headers, which a server joins with a comma, name no one action: 400, not
    the 404 of an unknown action (after which the client script would reload the page)."""
    app, record, calls = _call_app()
    environ = EnvironBuilder(
        "/", method="POST", json=[1], headers={"Action-Id": "record"}
    ).get_environ()
    environ["HTTP_ACTION_ID"] = "record,record"
    response = Client(lambda e, s: app(environ, s)).get("/")
    assert response.status_code == 400 and calls == []
    assert "one Action-Id" in response.text


def test_a_call_whose_body_the_server_cannot_give_is_refused() -> None:
    """A chunked Action-Id request on a server that does not decode chunked bodies (wsgiref:
    no CONTENT_LENGTH, the input not marked terminated) is refused: it ran the action without
    the arguments it was sent."""
    app, record, calls = _call_app()
    environ = EnvironBuilder("/", method="POST", headers={"Action-Id": "record"}).get_environ()
    environ.update(
        {
            "CONTENT_TYPE": "application/json",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": _Unreadable(),
        }
    )
    environ.pop("CONTENT_LENGTH", None)
    environ.pop("wsgi.input_terminated", None)
    response = Client(lambda e, s: app(environ, s)).get("/")
    assert response.status_code == 400 and calls == []
    assert "Content-Length" in response.text


_FILE_FIELD = 'Content-Disposition: form-data; name="$ACTION_ID_record"; filename="a.txt"'


def _post_recording_resource_warnings(
    app: t.Any, **request_kwargs: t.Any
) -> tuple[t.Any, list[warnings.WarningMessage]]:
    """Post, drop everything the request made, and return the answer and the ResourceWarnings
    of the files left open."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        response = Client(app).post("/", **request_kwargs)
        response.close()
        gc.collect()
    return response, [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_an_action_field_sent_as_a_file_is_refused() -> None:
    """A form whose $ACTION_ID_ part is a file upload names an action that cannot be read:
    400, and nothing runs (its file is closed: test_the_files_of_a_refused_form_are_closed)."""
    app, record, calls = _call_app()
    response, _ = _post_recording_resource_warnings(
        app, data=_multipart((_FILE_FIELD, "")), content_type="multipart/form-data; boundary=b"
    )
    assert response.status_code == 400
    assert "The form's action field could not be decoded" in _message(response)
    assert calls == []


_UPLOAD = ('Content-Disposition: form-data; name="f"; filename="a.txt"', "x")


@pytest.mark.parametrize(
    ("parts", "headers"),
    [
        pytest.param(
            [('Content-Disposition: form-data; name="$ACTION_ID_gone"', "")],
            {},
            id="unknown-action",
        ),
        pytest.param(
            [('Content-Disposition: form-data; name="$ACTION_ID_record"', "AAAA")],
            {},
            id="bad-token",
        ),
        pytest.param(
            [('Content-Disposition: form-data; name="$ACTION_ID_record"', "AAAA")],
            {"Action-Id": "record"},
            id="bad-token-js",
        ),
        pytest.param([(_FILE_FIELD, "")], {}, id="action-field-as-a-file"),
        pytest.param(
            [
                ('Content-Disposition: form-data; name="$ACTION_ID_record"', ""),
                _UPLOAD,
                ("Content-Disposition: form-data", "a part without a name"),
            ],
            {},
            id="nameless-part-and-two-uploads-of-one-name",
        ),
    ],
)
def test_the_files_of_a_refused_form_are_closed(
    parts: list[tuple[str, str]], headers: dict[str, str]
) -> None:
    """An upload in a multipart action request that is refused once its form was read is
    closed, as the files of one that ran are."""
    app, record, calls = _call_app()
    response, leaked = _post_recording_resource_warnings(
        app,
        data=_multipart(*parts, _UPLOAD),
        content_type="multipart/form-data; boundary=b",
        headers=headers,
    )
    assert response.status_code in (400, 404) and calls == []
    assert leaked == []


@pytest.mark.parametrize("js", [pytest.param(False, id="no-js"), pytest.param(True, id="js")])
def test_form_fields_are_decoded_as_werkzeug_decodes_them(js: bool) -> None:
    """An action's urlencoded form holds what Werkzeug's form parser gives the app for the same
    body: "+" is a space, an escape that is not UTF-8 stays as it was sent, blank values stay."""
    from werkzeug.wrappers import Request

    app, record, calls = _call_app()
    body = b"%24ACTION_ID_record=&q=a+b%21&raw=%FF%41&blank=&q=2"
    headers = {"Action-Id": "record"} if js else {}
    kwargs = {"data": body, "content_type": "application/x-www-form-urlencoded"}
    response = Client(app).post("/", headers=headers, **kwargs)
    assert response.status_code == 200
    ((form,),) = calls
    expected = Request(EnvironBuilder("/", method="POST", **kwargs).get_environ()).form
    assert form == [(k, v) for k, v in expected.items(multi=True) if not k.startswith("$")]
    assert form == [("q", "a b!"), ("q", "2"), ("raw", "%FFA"), ("blank", "")]


@pytest.mark.parametrize("js", [pytest.param(False, id="no-js"), pytest.param(True, id="js")])
def test_every_file_of_a_multiple_file_input_reaches_the_action(js: bool) -> None:
    """<input type=file multiple>: every file sent under one name reaches the action."""
    app, record, calls = _call_app()
    response = Client(app).post(
        "/",
        data={
            "$ACTION_ID_record": "",
            "photos": [(io.BytesIO(b"one"), "1.png"), (io.BytesIO(b"two"), "2.png")],
        },
        headers={"Action-Id": "record"} if js else {},
    )
    assert response.status_code == 200
    ((form,),) = calls
    assert form == [("photos", ("1.png", b"one")), ("photos", ("2.png", b"two"))]


@pytest.mark.parametrize(
    ("parts", "status"),
    [pytest.param(10_000, 200, id="10000-parts"), pytest.param(10_001, 413, id="10001-parts")],
)
def test_a_multipart_action_form_has_at_most_10000_parts(parts: int, status: int) -> None:
    """A multipart action form of up to 10,000 parts is read; one more is refused with ``413``
    saying why (the parser's work is bounded by parts as well as by bytes)."""
    from actionkit import ActionMiddleware

    app, record, calls = _call_app()
    app = ActionMiddleware(app.app, registry=app.registry, cache=False, body_limit=2**20)
    fields = [('Content-Disposition: form-data; name="$ACTION_ID_record"', "")]
    fields += [('Content-Disposition: form-data; name="f"', "")] * (parts - 1)
    response = Client(app).post(
        "/", data=_multipart(*fields), content_type="multipart/form-data; boundary=b"
    )
    assert response.status_code == status
    assert len(calls) == (1 if status == 200 else 0)
    if status == 413:
        assert b"The form has over 10,000 parts." in response.data


def test_no_empty_field_of_a_long_multipart_form_is_lost() -> None:
    """Every empty field of a multipart form reaches the action, in the form Werkzeug's test
    client writes them (no blank line before the next boundary): read in 64 KiB chunks, the
    parser lost the one whose part straddled two."""
    boundary = "---------------FormBoundary0123456789abcdef"
    names = ["$ACTION_ID_record", *(f"f{i}" for i in range(703))]
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n' for name in names
    )
    app, _, calls = _call_app()
    response = Client(app).post(
        "/",
        data=(body + f"--{boundary}--\r\n").encode(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 200
    ((form,),) = calls
    assert form == [(name, "") for name in names[1:]]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            _multipart(('Content-Disposition: form-data; name="f"; filename="a.txt"', "data")),
            "multipart/form-data; boundary=b",
            id="upload",
        ),
        pytest.param(
            _multipart(('Content-Disposition: form-data; name="$ACTION_ID_record"', "")),
            "multipart/form-data",
            id="no-boundary",
        ),
        pytest.param(
            _multipart(
                ("Content-Type: text/plain", "a part without Content-Disposition"),
                ('Content-Disposition: form-data; name="$ACTION_ID_record"', ""),
            ),
            "multipart/form-data; boundary=b",
            id="broken-part-first",
        ),
    ],
)
def test_multipart_posts_that_name_no_readable_action_are_the_apps(
    body: bytes, content_type: str
) -> None:
    """A multipart POST is an action only when a part it can read is named $ACTION_ID_...: an
    upload, a body without a boundary, or one whose action field comes after a broken part
    reaches the application with every byte, for it to answer."""
    app, registry, db = make_app()
    response = Client(app).post("/raw", data=body, content_type=content_type)
    assert response.status_code == 200 and response.text == f"POST {len(body)}"


def test_a_js_form_without_the_action_field_runs_without_bound_arguments() -> None:
    """A form posted with Action-Id but without the $ACTION_ID_ field (a program's fetch())
    runs the action with its fields and no bound arguments."""
    app, record, calls = _call_app()
    response = Client(app).post("/", data={"q": "1"}, headers={"Action-Id": "record"})
    assert response.status_code == 200
    assert calls == [([("q", "1")],)]


def test_bound_arguments_without_a_secret_key_are_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without any secret key, a request carrying bound arguments is a 400 saying they cannot
    be read, and the log says how to set a key."""
    from actionkit import ActionMiddleware, security

    app, record, calls = _call_app()
    monkeypatch.setattr(security, "_process_key", None)
    monkeypatch.delenv("ACTIONKIT_SECRET_KEY")
    keyless = ActionMiddleware(app.app, registry=app.registry, cache=False)
    token = security.encrypt_args("record", (1,), "some-key-0123456789")
    with caplog.at_level(logging.ERROR, logger="actionkit"):
        response = Client(keyless).post("/", data={"$ACTION_ID_record": token})
    assert response.status_code == 400
    assert "Bound arguments cannot be read" in _message(response)
    assert "No secret key to encrypt bound action arguments" in caplog.text
    assert "ACTIONKIT_SECRET_KEY" in caplog.text
    assert calls == []


def test_each_middleware_opens_tokens_with_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two middlewares with their own keys in one process: each opens the tokens sealed with
    its key, whichever was created last."""
    from actionkit import ActionMiddleware, security

    monkeypatch.setattr(security, "_process_key", None)
    app, record, calls = _call_app()
    first = ActionMiddleware(app.app, registry=app.registry, cache=False, secret_key="first-key")
    ActionMiddleware(app.app, registry=app.registry, cache=False, secret_key="second-key")
    token = security.encrypt_args("record", (7,), "first-key")
    response = Client(first).post("/", data={"$ACTION_ID_record": token})
    assert response.status_code == 200
    assert [args[0] for args in calls] == [7]


@pytest.mark.parametrize(
    ("script_name", "path_info", "under", "status"),
    [
        pytest.param("/admin", "/users", "/admin/", 200, id="mounted-below"),
        pytest.param("/admin", None, "/admin/", 200, id="mounted-at-without-path-info"),
        pytest.param(None, "/admin/users", "/admin/", 200, id="without-script-name"),
        pytest.param("/shop", "/admin", "/admin/", 404, id="mounted-elsewhere"),
        pytest.param(None, None, "/admin/", 404, id="root-without-either"),
        pytest.param(None, None, "/", 200, id="root-under-root"),
    ],
)
def test_a_scoped_action_in_a_mounted_app(
    script_name: str | None, path_info: str | None, under: str, status: int
) -> None:
    """The path a scoped action is checked against is the whole one the browser posted to,
    SCRIPT_NAME then PATH_INFO, either of which a server may leave out when it is empty."""
    from actionkit import ActionMiddleware, Registry

    registry = Registry()
    ran: list[str] = []

    @registry.action(id="wipe", under=under)
    def wipe() -> str:
        ran.append("wipe")
        return "wiped"

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"page"]

    app = ActionMiddleware(page, registry=registry, cache=False)
    environ = EnvironBuilder(
        "/", method="POST", json=[], headers={"Action-Id": "wipe", "Action-Page": "/"}
    ).get_environ()
    for key, value in (("SCRIPT_NAME", script_name), ("PATH_INFO", path_info)):
        environ.pop(key, None)
        if value is not None:
            environ[key] = value
    response = Client(lambda e, s: app(environ, s)).get("/")
    assert response.status_code == status
    assert ran == (["wipe"] if status == 200 else [])


@pytest.mark.parametrize(
    ("content_type", "body", "headers"),
    [
        pytest.param(
            "Application/JSON; charset=utf-8", b"[1]", {"Action-Id": "record"}, id="json-charset"
        ),
        pytest.param(
            "multipart/form-data; charset=utf-8; boundary=b",
            _multipart(
                ('Content-Disposition: form-data; name="$ACTION_ID_record"', ""),
                ('Content-Disposition: form-data; name="q"', "1"),
            ),
            {},
            id="multipart-two-parameters",
        ),
        pytest.param(
            "application/x-www-form-urlencoded; charset=utf-8; x=y",
            b"%24ACTION_ID_record=&q=1",
            {"Action-Id": "record"},
            id="form-two-parameters",
        ),
        pytest.param(
            "MULTIPART/Form-Data; boundary=b",
            _multipart(
                ('Content-Disposition: form-data; name="$ACTION_ID_record"', ""),
                ('Content-Disposition: form-data; name="q"', "1"),
            ),
            {},
            id="multipart-upper-case",
        ),
        pytest.param(
            "Multipart/Form-Data; boundary=b",
            _multipart(
                ('Content-Disposition: form-data; name="$ACTION_ID_record"', ""),
                ('Content-Disposition: form-data; name="q"', "1"),
            ),
            {"Action-Id": "record"},
            id="multipart-upper-case-script",
        ),
    ],
)
def test_the_media_type_is_read_whatever_its_parameters(
    content_type: str, body: bytes, headers: dict[str, str]
) -> None:
    """The media type of an action request is the Content-Type before its first ";", in any
    case: parameters (charset, boundary, others, in any order) do not change how it is read."""
    app, record, calls = _call_app()
    response = Client(app).post("/", data=body, content_type=content_type, headers=headers)
    assert response.status_code == 200
    assert calls in ([(1,)], [([("q", "1")],)])


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(
            "application/x-www-form-urlencoded", b"%24%41CTION_ID_record=&q=1", id="escaped-A"
        ),
        pytest.param(
            "application/x-www-form-urlencoded", b"q=1&$ACTION%5fID_record=", id="escaped-_"
        ),
        pytest.param(
            "multipart/form-data; boundary=b",
            _multipart(
                ("Content-Disposition: form-data; name*=UTF-8''%24ACTION_ID_record", ""),
                ('Content-Disposition: form-data; name="q"', "1"),
            ),
            id="multipart-extended-name",
        ),
        pytest.param(
            "multipart/form-data; boundary=b",
            _multipart(
                ('Content-Disposition: form-data; name="$\\ACTION_ID_record"', ""),
                ('Content-Disposition: form-data; name="q"', "1"),
            ),
            id="multipart-backslash-escape",
        ),
        pytest.param(
            "multipart/form-data; boundary=b",
            _multipart(
                ('Content-Disposition: form-data; name*0="$ACT"; name*1="ION_ID_record"', ""),
                ('Content-Disposition: form-data; name="q"', "1"),
            ),
            id="multipart-name-continued",
        ),
        pytest.param(
            "multipart/form-data; boundary=b",
            _multipart(
                (
                    "X-Padding: " + "a" * 9000 + "\r\nContent-Disposition: form-data;"
                    ' name="$ACTION_ID_record"',
                    "",
                ),
                ('Content-Disposition: form-data; name="q"', "1"),
            ),
            id="multipart-name-past-long-headers",
        ),
    ],
)
def test_a_field_name_is_read_as_the_form_parser_reads_it(content_type: str, body: bytes) -> None:
    """A field is an action's when its name, read as the form parser reads it (escapes in an
    urlencoded key, RFC 2231 in a part's name, continued too, after 8 KiB of other headers),
    starts with $ACTION_ID_; however it is spelled, the action runs rather than the form
    reaching the app with that field."""
    app, record, calls = _call_app()
    response = Client(app).post("/", data=body, content_type=content_type)
    assert response.status_code == 200
    assert calls == [([("q", "1")],)]


def test_an_image_button_runs_its_action() -> None:
    """An ``<input type="image" name="$ACTION_ID_...">`` sends its name with ``.x`` and ``.y``
    and the point clicked: it runs its action, with the token of the form's hidden field of
    that action if there is one (it was a 404 for an unknown action "record.y")."""
    from actionkit import ActionMiddleware, Registry

    registry = Registry()
    calls: list[t.Any] = []

    @registry.action(id="record")
    def record(*args: t.Any) -> None:
        calls.append(args[:-1])

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"page"]

    client = Client(ActionMiddleware(page, registry=registry, cache=False))
    clicked = {"$ACTION_ID_record.x": "3", "$ACTION_ID_record.y": "4", "q": "1"}
    assert client.post("/", data=clicked).status_code == 200
    bound = record.bind(7)
    clicked = {bound.field_name: bound.token, **clicked}
    assert client.post("/", data=clicked).status_code == 200
    assert calls == [(), (7,)]


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        pytest.param(b"[1" + b"0" * 400 + b".5]", "10000000000000000000...00000000.5", id="float"),
        pytest.param(b"[" + b"9" * 5000 + b"]", "an integer of 5,000 digits is too long", id="int"),
        pytest.param(
            b"[-" + b"9" * 5000 + b"]", "an integer of 5,000 digits is too long", id="neg"
        ),
    ],
)
def test_a_number_json_cannot_hold_is_refused_shortly(body: bytes, shown: str) -> None:
    """A JSON number too large is a 400 whose message quotes it shortened (it may be most of
    the body), and names an integer's length rather than Python's advice to raise a limit."""
    app, record, calls = _call_app()
    response = Client(app).post(
        "/", data=body, content_type="application/json", headers={"Action-Id": "record"}
    )
    assert response.status_code == 400
    message = response.json["error"]["message"]
    assert shown in message and len(message) < 120 and "sys." not in message
    assert calls == []


def test_an_integer_within_the_processs_digit_limit_is_read() -> None:
    """The digits an integer may have are Python's limit of the process
    (sys.set_int_max_str_digits), not a number of actionkit's."""
    import sys

    app, record, calls = _call_app()
    body = b"[" + b"9" * 5000 + b"]"
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(10_000)
    try:
        response = Client(app).post(
            "/", data=body, content_type="application/json", headers={"Action-Id": "record"}
        )
        expected = [(int("9" * 5000),)]
    finally:
        sys.set_int_max_str_digits(before)
    assert response.status_code == 200 and calls == expected
