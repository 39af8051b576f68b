"""Reading a request body to look for an action, and handing it back untouched.

The middleware reads a form ``POST`` to learn whether it names an action; when it does not, the
application must still get the whole body, as if nobody had read it.
"""

from __future__ import annotations

import io
import typing as t

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import get_input_stream

from .exceptions import RequestRefused

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

_CHUNK = 65536


def read_body(environ: WSGIEnvironment, limit: int) -> tuple[bytes, bool, t.Any]:
    """Read at most ``limit + 1`` bytes: (bytes read, whether that was all, the stream)."""
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit() and int(length) <= limit and not environ.get("wsgi.input_terminated"):
        # The usual form: its whole length, straight from the server's stream.
        want = int(length)
        raw = environ["wsgi.input"]
        body = raw.read(want) if want else b""
        while len(body) < want:  # a stream that answers with what has arrived so far
            more = raw.read(want - len(body))
            if not more:
                raise truncated()
            body += more
        return body, True, raw
    stream = get_input_stream(environ, max_content_length=None)
    cap = limit + 1
    chunks = []
    size = 0
    while size < cap:
        try:
            chunk = stream.read(min(_CHUNK, cap - size))
        except ClientDisconnected:
            raise truncated() from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), size <= limit, stream


def truncated() -> RequestRefused:
    return RequestRefused(
        "bad_request", "The request body ended before its Content-Length: the client went away?"
    )


class ReplayStream:
    """The bytes already read from a request body, then the rest of it, as one stream."""

    def __init__(self, head: bytes, rest: t.Any) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._head.read() + bytes(self._rest.read())
        return self._head.read(size) or bytes(self._rest.read(size))

    def readline(self, size: int | None = -1) -> bytes:
        line = self._head.readline(-1 if size is None else size)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        more = self._rest.readline(-1 if size is None or size < 0 else size - len(line))
        return line + bytes(more)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self.readline, b"")

    def close(self) -> None:
        close = getattr(self._rest, "close", None)
        if close is not None:
            close()


def rewind(environ: WSGIEnvironment, body: bytes) -> None:
    """Let code running in the action (a framework's request object) read the body again."""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def restore_body(environ: WSGIEnvironment, body: bytes, complete: bool, stream: t.Any) -> None:
    """Give the application back the body the middleware read to look for an action field."""
    environ["wsgi.input"] = io.BytesIO(body) if complete else ReplayStream(body, stream)
    if complete:
        environ["wsgi.input_terminated"] = True
