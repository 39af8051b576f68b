"""Streaming a page through while recording it for the store, and answering from an entry."""

from __future__ import annotations

import typing as t

from werkzeug.http import is_resource_modified

from .. import context
from ..protocol import CACHE_STATUS_HEADER

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..context import RenderHints, RequestContext
    from ..stores import Entry
    from .policy import Plan

#: The values of the ``Actionkit-Cache`` header.
HIT = "HIT"
MISS = "MISS"
STALE = "STALE"
BYPASS = "BYPASS"


class Capture:
    """What the app's ``start_response`` decided, and the bytes it wrote through ``write()``."""

    __slots__ = ("chunks", "ctx", "hints", "plan", "started")

    def __init__(self) -> None:
        self.plan: Plan | None = None
        #: What the page declared while it rendered (read again when it is stored).
        self.hints: RenderHints | None = None
        #: The page's request context, current again while its body is iterated.
        self.ctx: RequestContext | None = None
        self.started = False
        self.chunks: list[bytes] = []


def both(first: t.Callable[[], None], then: t.Callable[[], None]) -> t.Callable[[], None]:
    """A callable that calls ``first``, then ``then`` even if ``first`` raised."""

    def call_both() -> None:
        try:
            first()
        finally:
            then()

    return call_both


class Recorder:
    """Streams the app's answer through and, once it was sent whole, stores it (when
    ``start_response`` decided so) and runs ``on_close``; ``close()`` closes the app's
    iterable, then does the same if that has not happened yet.

    The page is stored as soon as its last chunk has been handed on, not only on ``close()``:
    a test client does not close an answer unless the test does.
    """

    def __init__(
        self,
        iterable: t.Iterable[bytes],
        capture: Capture,
        on_complete: t.Callable[[Plan, bytes], None],
        on_close: t.Callable[[], None] | None,
    ) -> None:
        self._iterable = iterable
        self._capture = capture
        self._on_complete = on_complete
        self._on_close = on_close
        self._complete = False
        self._ended = False

    def __iter__(self) -> t.Iterator[bytes]:
        capture = self._capture
        chunks = capture.chunks
        iterator = iter(self._iterable)
        while True:
            # A body that is made as it is sent (a generator, a streamed template) runs with
            # its page's context current: the cached() values it reads tag the page.
            ctx = capture.ctx
            token = None if ctx is None or context.current() else context.push(ctx)
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            finally:
                if token is not None:
                    context.pop(token)
            # A generator app calls start_response at its first step: look each time.
            if capture.plan is not None:
                chunks.append(chunk)
            yield chunk
        self._complete = True
        self._end()

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            plan = self._capture.plan
            if self._complete and plan is not None:
                self._on_complete(plan, b"".join(self._capture.chunks))
        finally:
            if self._on_close is not None:
                self._on_close()


def answer_entry(
    entry: Entry, environ: WSGIEnvironment, start_response: StartResponse, label: str
) -> t.Iterable[bytes]:
    """Answer from a stored entry, saying ``label`` (:data:`HIT` or :data:`STALE`).

    A ``200`` page stored with an ``ETag`` or ``Last-Modified`` answers a conditional request
    (``If-None-Match``, ``If-Modified-Since``) that it satisfies with ``304 Not Modified``, as
    the view that made it would. A ``Range`` is answered with the whole page, and so is a
    request with a precondition (``If-Match``, ``If-Unmodified-Since``), as by a view that does
    not evaluate them (which HTTP allows).
    """
    headers = [(str(k), str(v)) for k, v in entry.meta["headers"]]
    status = entry.meta["status"]
    validators = status.startswith("200 ") and _validators(headers)
    if validators and _conditional(environ) and _not_modified(environ, *validators):
        kept = [(k, v) for k, v in headers if k.lower() not in _NOT_IN_304]
        start_response("304 Not Modified", [*kept, (CACHE_STATUS_HEADER, label)])
        return []
    headers.append(("Content-Length", str(len(entry.body))))
    headers.append((CACHE_STATUS_HEADER, label))
    if label == HIT and not validators:
        # Later hits on this (in-process) entry reuse the ready status and headers.
        entry.prepared = (status, headers[:])
    start_response(status, headers)
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    return [entry.body]


def _conditional(environ: WSGIEnvironment) -> bool:
    """Whether a request asks for ``304`` when it has the page, without a precondition (for
    which werkzeug's ``is_resource_modified`` would say ``304`` rather than ``412``)."""
    asks = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ
    return asks and "HTTP_IF_MATCH" not in environ and "HTTP_IF_UNMODIFIED_SINCE" not in environ


def _not_modified(environ: WSGIEnvironment, etag: str | None, modified: str | None) -> bool:
    """Whether the page is what the client has. If-None-Match, when sent, decides alone (RFC
    9110, 13.1.3: If-Modified-Since is then ignored), so a page without an ETag is sent."""
    if "HTTP_IF_NONE_MATCH" in environ:
        return etag is not None and not is_resource_modified(environ, etag)
    return not is_resource_modified(environ, last_modified=modified)


# The headers of a page that a 304 does not repeat (RFC 9110, 15.4.5).
_NOT_IN_304 = frozenset(
    ("content-type", "content-length", "content-encoding", "content-language", "content-range")
)


def _validators(headers: list[tuple[str, str]]) -> tuple[str | None, str | None] | None:
    """The ``ETag`` and ``Last-Modified`` of a page; ``None`` when it has neither."""
    etag = modified = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == "etag":
            etag = value
        elif lowered == "last-modified":
            modified = value
    return None if etag is None and modified is None else (etag, modified)
