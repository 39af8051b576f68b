"""Reading a request body to look for an action, and handing it back untouched."""

from __future__ import annotations

import io
import typing as t

import pytest
from werkzeug.test import EnvironBuilder

from actionkit.body import ReplayStream, peek_body


class _Socket(io.RawIOBase):
    """A stream that cannot seek, like a server's socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _environ(stream: t.Any, length: int | None) -> dict[str, t.Any]:
    environ = EnvironBuilder("/", method="POST").get_environ()
    environ["wsgi.input"] = stream
    environ["CONTENT_LENGTH"] = "" if length is None else str(length)
    if length is None:
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


def test_replay_stream_reads_lines_across_the_seam() -> None:
    """Lines that span the bytes read and the rest come out whole."""
    stream = ReplayStream(b"one\ntw", io.BytesIO(b"o\nthree"))
    assert list(stream) == [b"one\n", b"two\n", b"three"]
