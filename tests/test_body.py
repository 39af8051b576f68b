"""Reading a request body to look for an action, and handing it back untouched."""

from __future__ import annotations

import io
import typing as t

import pytest
from werkzeug.exceptions import ClientDisconnected
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import get_input_stream

from actionkit import ActionMiddleware, Registry
from actionkit.body import Peek, ReplayStream, peek_body


class _Socket(io.RawIOBase):
    """A stream that cannot seek, like a server's socket; with ``piece``, each read gives at
    most that many bytes (what has arrived so far)."""

    def __init__(self, data: bytes, piece: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self._piece = piece

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        size = len(buffer) if self._piece is None else min(len(buffer), self._piece)
        chunk = self._data.read(size)
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _environ(
    stream: t.Any, length: int | None, *, terminated: bool | None = None
) -> dict[str, t.Any]:
    environ = EnvironBuilder("/", method="POST").get_environ()
    environ["wsgi.input"] = stream
    environ["CONTENT_LENGTH"] = "" if length is None else str(length)
    if length is None if terminated is None else terminated:
        environ["wsgi.input_terminated"] = True
    return environ


@pytest.mark.parametrize(
    "length", [pytest.param(11, id="length"), pytest.param(None, id="chunked")]
)
def test_a_seekable_stream_is_put_back_and_kept(length: int | None) -> None:
    """A seekable stream is read and put back where it was; the environ keeps that same stream,
    so whoever holds it can send it again (a test client following a 307/308)."""
    stream = io.BytesIO(b"XXa=1&b=two")
    stream.seek(2)
    environ = _environ(stream, None if length is None else length - 2)
    peek = peek_body(environ, limit=100)
    assert peek == (b"a=1&b=two", True, False)
    assert environ["wsgi.input"] is stream and stream.tell() == 2


def test_a_socket_stream_is_replaced_by_one_giving_the_same_bytes() -> None:
    """A stream that cannot seek is replaced by one that gives the bytes read, then the rest."""
    environ = _environ(_Socket(b"a=" + b"x" * 50), 52)
    peek = peek_body(environ, limit=10)
    assert peek.body == b"a=" + b"x" * 9 and not peek.complete and not peek.truncated
    assert isinstance(environ["wsgi.input"], ReplayStream)
    assert environ["wsgi.input"].read() == b"a=" + b"x" * 50


def test_a_body_shorter_than_its_length_is_reported_and_handed_on() -> None:
    """A body that ends before its Content-Length is reported as cut short; the application
    gets the same bytes and meets the same end."""
    environ = _environ(_Socket(b"a=1"), 100)
    peek = peek_body(environ, limit=1000)
    assert peek == (b"a=1", False, True)
    assert environ["wsgi.input"].read() == b"a=1"


class _Gone:
    """A server's stream whose client went away mid-body: uWSGI and mod_wsgi raise OSError
    once what arrived has been read."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        if not self.data:
            raise OSError("error during read on wsgi.input")
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def test_a_client_gone_mid_body_is_a_body_cut_short() -> None:
    """A stream that raises OSError where the client went away ends the body there (it
    escaped the middleware: a server's 500 for a form that is no action, and for an action,
    where its 400 is due); the application meets the same end."""
    environ = _environ(_Gone(b"a=1"), 100)
    assert peek_body(environ, limit=1000) == (b"a=1", False, True)
    # A server that ends its stream itself (mod_wsgi, waitress): the other way of reading.
    terminated = _environ(_Gone(b"a=1"), None, terminated=True)
    assert peek_body(terminated, limit=1000) == (b"a=1", False, True)

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    middleware = ActionMiddleware(app, registry=Registry(), cache=False, secret_key="k" * 32)
    statuses: list[str] = []
    for body in (b"a=1", b"$ACTION_ID_x="):
        sent = _environ(_Gone(body), 100)
        sent.update(REQUEST_METHOD="POST", CONTENT_TYPE="application/x-www-form-urlencoded")
        answer = b"".join(middleware(sent, lambda s, h, e=None: statuses.append(s)))
    assert statuses == ["200 OK", "400 Bad Request"], answer
    assert answer.startswith(b"<!doctype html>")


def test_replay_stream_reads_lines_across_the_seam() -> None:
    """Lines that span the bytes read and the rest come out whole."""
    stream = ReplayStream(b"one\ntw", io.BytesIO(b"o\nthree"))
    assert list(stream) == [b"one\n", b"two\n", b"three"]


def test_replay_stream_reads_as_much_as_asked_across_the_seam() -> None:
    """read(n) gives n bytes until the body ends, as a file does, also across the bytes read
    and the rest, and from a socket giving fewer at a time: Django's request stream reads
    request.body in one read(n)."""
    stream = ReplayStream(b"abc", _Socket(b"defghijk", piece=2))
    assert stream.read(6) == b"abcdef"
    assert stream.read(100) == b"ghijk"
    assert stream.read(1) == b""


FORM = b"title=hello&n=1"


@pytest.mark.parametrize(
    ("data", "piece", "length", "terminated", "limit", "peek", "app_reads"),
    [
        pytest.param(b"", None, 0, False, 10, (b"", True, False), b"", id="empty"),
        pytest.param(FORM, None, 15, False, 100, (FORM, True, False), FORM, id="length"),
        pytest.param(FORM, None, None, True, 100, (FORM, True, False), FORM, id="chunked"),
        pytest.param(FORM, 4, 15, False, 100, (FORM, True, False), FORM, id="length-in-pieces"),
        pytest.param(FORM, 4, None, True, 100, (FORM, True, False), FORM, id="chunked-in-pieces"),
        pytest.param(
            b"x" * 50, 7, None, True, 10, (b"x" * 11, False, False), b"x" * 50, id="over-limit"
        ),
        pytest.param(
            b"x" * 50, 7, 50, False, 10, (b"x" * 11, False, False), b"x" * 50, id="over-length"
        ),
        pytest.param(
            b"a=1", None, 100, False, 10, (b"a=1", False, True), ClientDisconnected, id="cut-short"
        ),
        pytest.param(
            FORM, None, 3, True, 100, (FORM, True, False), FORM, id="terminated-past-length"
        ),
    ],
)
def test_a_socket_body_is_read_up_to_the_limit_and_handed_on_whole(
    data: bytes,
    piece: int | None,
    length: int | None,
    terminated: bool,
    limit: int,
    peek: tuple[bytes, bool, bool],
    app_reads: bytes | type[Exception],
) -> None:
    """From a stream that cannot seek, whether it gives the body at once or in pieces, with a
    Content-Length or ended by the server: peek_body reads the whole body, or exactly its first
    limit + 1 bytes, and says whether it was complete or cut short; the application then reads
    the whole body from the environ, as a framework reads it, or meets the same early end. A
    complete body is handed on as a stream that ends by itself and says so
    (wsgi.input_terminated). A stream the server ends is read to its end, as Werkzeug reads
    it, whatever Content-Length says."""
    environ = _environ(_Socket(data, piece), length, terminated=terminated)
    assert peek_body(environ, limit) == Peek(*peek)
    if peek[1]:
        assert environ["wsgi.input_terminated"] is True
    if isinstance(app_reads, bytes):
        assert get_input_stream(environ).read() == app_reads
    else:
        with pytest.raises(app_reads):
            get_input_stream(environ).read()


def test_no_byte_past_the_content_length_is_read() -> None:
    """The bytes after the Content-Length on a server's stream belong to the next request on
    the connection: they are never read, even from a stream that gives a few bytes at a time."""
    socket = _Socket(FORM + b"NEXT REQUEST", piece=4)
    environ = _environ(socket, len(FORM))
    assert peek_body(environ, limit=100) == (FORM, True, False)
    assert environ["wsgi.input"].read() == FORM
    assert socket.read() == b"NEXT REQUEST"


def _calls(
    *calls: tuple[str, tuple[t.Any, ...], t.Any],
) -> list[tuple[str, tuple[t.Any, ...], t.Any]]:
    return list(calls)


@pytest.mark.parametrize(
    "calls",
    [
        pytest.param(
            _calls(
                ("read", (3,), b"one"),
                ("read", (0,), b""),
                ("read", (5,), b"\ntwo\n"),
                ("read", (2,), b"th"),
                ("read", (None,), b"ree\n"),
                ("read", (), b""),
            ),
            id="read-sizes",
        ),
        pytest.param(_calls(("read", (-1,), b"one\ntwo\nthree\n")), id="read-all"),
        pytest.param(
            _calls(
                ("readline", (2,), b"on"),
                ("readline", (None,), b"e\n"),
                ("readline", (None,), b"two\n"),
                ("readline", (0,), b""),
                ("readline", (), b"three\n"),
                ("readline", (), b""),
            ),
            id="readline-whole-lines",
        ),
        pytest.param(
            _calls(
                ("readline", (), b"one\n"),
                ("readline", (3,), b"two"),
                ("readline", (), b"\n"),
                ("readline", (-1,), b"three\n"),
            ),
            id="readline-size-across-the-seam",
        ),
        pytest.param(_calls(("readlines", (), [b"one\n", b"two\n", b"three\n"])), id="readlines"),
    ],
)
def test_replay_stream_is_a_stream(calls: list[tuple[str, tuple[t.Any, ...], t.Any]]) -> None:
    """The replayed body follows the stream protocol across the bytes read and the rest:
    read(n) gives n bytes until the body ends, readline(n) at most n, read(0) none, read() /
    read(None) / read(-1) all that is left, readline() one line, readlines() every line."""
    stream = ReplayStream(b"one\ntw", io.BytesIO(b"o\nthree\n"))
    assert [getattr(stream, name)(*args) for name, args, _ in calls] == [
        expected for _, _, expected in calls
    ]


def test_closing_the_replay_stream_closes_the_servers() -> None:
    """close() on the replayed body closes the server's stream under it."""
    socket = _Socket(b"rest")
    stream = ReplayStream(b"head", socket)
    stream.close()
    assert socket.closed
    ReplayStream(b"head", object()).close()  # a stream without close() is fine too


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda stream: stream.read(), id="read"),
        pytest.param(lambda stream: b"".join(iter(lambda: stream.read(64), b"")), id="pieces"),
        pytest.param(lambda stream: b"".join(iter(stream.readline, b"")), id="readline"),
        pytest.param(lambda stream: b"".join(stream.readlines()), id="readlines"),
        pytest.param(lambda stream: b"".join(stream), id="iteration"),
    ],
)
def test_a_large_form_that_is_no_action_reaches_the_app_from_a_socket(
    read: t.Callable[[t.Any], bytes],
) -> None:
    """A form larger than body_limit that names no action, from a server's socket, reaches
    the application whole however it reads its input, in pieces or line by line."""
    body = b"\n".join(b"line%d=%s" % (n, b"v" * n) for n in range(60))
    received: list[bytes] = []

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        received.append(read(environ["wsgi.input"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = ActionMiddleware(app, registry=Registry(), cache=False, body_limit=100)
    environ = EnvironBuilder(
        "/", method="POST", content_type="application/x-www-form-urlencoded"
    ).get_environ()
    environ.update({"wsgi.input": _Socket(body, piece=50), "CONTENT_LENGTH": str(len(body))})
    assert b"".join(middleware(environ, lambda status, headers, exc_info=None: None)) == b"ok"
    assert received == [body]


def test_discard_body_reads_what_is_left_up_to_its_limit() -> None:
    """A refused body is read to its end so that the client, still sending, reads the answer;
    past the limit nothing is read. CONTENT_LENGTH may be an int (Django's test client)."""
    from actionkit.body import discard_body

    stream = _Socket(b"x" * 300_000, piece=4096)
    environ = _environ(stream, 300_000)
    environ["CONTENT_LENGTH"] = 300_000
    discard_body(environ)
    assert stream.read() == b""
    big = _Socket(b"y" * 1000)
    discard_body(_environ(big, 1000), limit=999)
    assert len(big.read()) == 1000  # over the limit: left as it is


def test_a_body_the_server_gives_no_way_to_read_is_left_as_it_came() -> None:
    """Without CONTENT_LENGTH, on an input the server did not mark terminated (wsgiref with a
    chunked body), there is nothing to read (PEP 3333): the environ is left as it came, and
    unreadable() says so for a request that sent Transfer-Encoding."""
    from actionkit.body import unreadable

    stream = _Socket(b"5\r\nhello\r\n0\r\n\r\n")
    environ = _environ(stream, None, terminated=False)
    before = dict(environ)
    assert peek_body(environ, limit=100) == (b"", True, False)
    assert environ == before
    assert not unreadable(environ)
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    assert unreadable(environ)
    assert not unreadable({**environ, "wsgi.input_terminated": True})
    assert not unreadable({**environ, "CONTENT_LENGTH": "17"})
