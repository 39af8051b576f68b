"""Reading a request body to look for an action, and handing it back untouched.

The middleware reads a form ``POST`` to learn whether it names an action; when it does not, the
application must still get the whole body, as if nobody had read it. :func:`peek_body` reads at
most ``limit + 1`` bytes and leaves the caller's stream usable: a seekable stream (a test
client's, or one a server spooled) is put back where it was and stays the environ's
``wsgi.input``, so that whoever holds it can read it again (Werkzeug's test client re-sends the
same stream when it follows a ``307``/``308``); a socket stream, which cannot go back, is
replaced by one that gives the bytes read, then the rest.
"""

from __future__ import annotations

import io
import typing as t

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import get_input_stream

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

_CHUNK = 65536


class Peek(t.NamedTuple):
    """What :func:`peek_body` read."""

    #: The bytes read: the whole body, or its first ``limit + 1`` bytes.
    body: bytes
    #: The whole body was read, and it is at most ``limit`` bytes.
    complete: bool
    #: The body ended before its ``Content-Length`` (the client went away).
    truncated: bool


def peek_body(environ: WSGIEnvironment, limit: int) -> Peek:
    """Read at most ``limit + 1`` bytes of the request body and hand the body back to the
    environ as it was (see the module)."""
    raw = environ["wsgi.input"]
    position = _tell(raw)
    length = content_length(environ)
    if not length.isdigit() and not environ.get("wsgi.input_terminated"):
        # PEP 3333: without CONTENT_LENGTH a stream the server did not mark terminated has no
        # body to read (wsgiref with a chunked body); leave the environ as it came.
        return Peek(b"", True, False)
    truncated = False
    rest: t.Any = raw
    if length.isdigit() and int(length) <= limit and not environ.get("wsgi.input_terminated"):
        # The usual form: its whole length, straight from the server's stream.
        want = int(length)
        body = b""
        while len(body) < want:  # a stream that answers with what has arrived so far
            try:
                more = raw.read(want - len(body))
            except (OSError, ValueError):
                # uWSGI and mod_wsgi raise when the client went away (Werkzeug's own reads
                # say ClientDisconnected for it): the body ends where it stopped.
                more = b""
            if not more:
                truncated = True
                break
            body += more
        complete = not truncated
    else:
        rest = _input_stream(environ, length)
        cap = limit + 1
        chunks = []
        size = 0
        while size < cap:
            try:
                chunk = rest.read(min(_CHUNK, cap - size))
            except (ClientDisconnected, OSError, ValueError):  # (a terminated raw input)
                truncated = True
                break
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        body = b"".join(chunks)
        if length.isdigit() and size < int(length) and size <= limit:
            # Ended before its Content-Length: a server that marks every input terminated
            # (gunicorn) ends the stream where the client stopped sending.
            truncated = True
        complete = size <= limit and not truncated
    if position is not None:
        raw.seek(position)
    elif complete:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
    elif truncated:
        environ["wsgi.input"] = io.BytesIO(body)  # all there was: the app meets the same end
    else:
        environ["wsgi.input"] = ReplayStream(body, rest)
    return Peek(body, complete, truncated)


#: The most bytes read and dropped of a refused body so that the client gets the answer.
DISCARD_LIMIT = 64 * 1024 * 1024


def discard_body(environ: WSGIEnvironment, limit: int = DISCARD_LIMIT) -> None:
    """Read and drop what is left of the body of a refused action request (``413``, an unknown
    action, another origin), at most ``limit`` bytes: a server that closes the connection while
    the client still sends makes the client see a reset instead of the answer (RFC 9112
    section 9.6), and gunicorn's keep-alive closes a connection with over 64 KiB of body left.
    A larger body is left; the client may see a reset."""
    length = content_length(environ)
    if length.isdigit() and int(length) > limit:
        return
    if not length.isdigit() and not environ.get("wsgi.input_terminated"):
        return
    stream = _input_stream(environ, length)
    left = limit
    try:
        while left > 0:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
    except (ClientDisconnected, OSError, ValueError):
        return


def unreadable(environ: WSGIEnvironment) -> bool:
    """Whether the request has a body the server gives no way to read: ``Transfer-Encoding``
    without ``CONTENT_LENGTH`` on an input not marked terminated (PEP 3333; wsgiref with a
    chunked body)."""
    return (
        not content_length(environ).isdigit()
        and bool(environ.get("HTTP_TRANSFER_ENCODING"))
        and not environ.get("wsgi.input_terminated")
    )


def _input_stream(environ: WSGIEnvironment, length: str) -> t.Any:
    """The request body's stream as Werkzeug bounds it, ``length`` being
    :func:`content_length` (Werkzeug reads it as text; the app gets it as it came)."""
    given = environ.get("CONTENT_LENGTH")
    source = environ if given is None or isinstance(given, str) else {**environ}
    if source is not environ:
        source["CONTENT_LENGTH"] = length
    return get_input_stream(source, max_content_length=None)


def content_length(environ: WSGIEnvironment) -> str:
    """``CONTENT_LENGTH`` as text, ``""`` when absent. A server gives text; Django's test
    client passes on what a test gives it, an int in Django's own tests, which Django reads."""
    length = environ.get("CONTENT_LENGTH")
    return "" if length is None else str(length)


def _tell(stream: t.Any) -> int | None:
    """The position of a stream that can go back to it, else ``None``."""
    try:
        if stream.seekable():
            return int(stream.tell())
    except (AttributeError, OSError, ValueError):
        pass
    return None


class ReplayStream:
    """The bytes already read from a request body, then the rest of it, as one stream."""

    def __init__(self, head: bytes, rest: t.Any) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int | None = -1) -> bytes:
        """``size`` bytes, fewer only at the end of the body, as a file gives them: a reader
        may take a short read for the end (Django reads ``request.body`` in one call)."""
        if size is None or size < 0:
            return self._head.read() + bytes(self._rest.read())
        chunks = [self._head.read(size)]
        got = len(chunks[0])
        while got < size:
            more = self._rest.read(size - got)
            if not more:
                break
            chunks.append(bytes(more))
            got += len(more)
        return b"".join(chunks)

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
