"""Django responses and WSGI answers, each as the other (see :mod:`.middleware`)."""

from __future__ import annotations

import contextlib
import copy
import typing as t

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers

from .. import context
from ..exceptions import HTTPSignal, RedirectSignal
from ..protocol import CACHE_STATUS_HEADER

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from django.core.handlers.wsgi import WSGIRequest


def status(response: HttpResponseBase) -> str:
    return f"{response.status_code} {response.reason_phrase}"


def wsgi_headers(response: HttpResponseBase) -> list[tuple[str, str]]:
    """The headers of ``response`` as Django's WSGI handler sends them."""
    return [
        *response.items(),
        *(("Set-Cookie", c.output(header="").strip()) for c in response.cookies.values()),
    ]


def cache_headers(request: WSGIRequest, response: HttpResponseBase) -> list[tuple[str, str]]:
    """The headers the page cache decides by, with what the middleware above this one will
    add: ``Vary: Cookie`` for a page that touched the session; and, for the cache only, never
    storing a page whose CSRF token, messages or session cookie are somebody's."""
    session = getattr(request, "session", None)
    if session is not None and getattr(session, "accessed", False):
        patch_vary_headers(response, ("Cookie",))
    ctx = context.current()
    if ctx is not None and session is not None:
        # A streamed page may read it (request.user) after this: asked again when it is stored.
        ctx.hints.readers.append(lambda: bool(getattr(session, "accessed", False)))
    headers = wsgi_headers(response)
    messages = getattr(request, "_messages", None)
    shown = messages is not None and messages.used and len(messages) > 0
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or shown or session_cookie_set(request):
        headers.append(("Cache-Control", "private"))  # seen by the cache, never sent
    return headers


def session_cookie_set(request: HttpRequest) -> bool:
    """Whether SessionMiddleware will set (or delete) the session cookie on the answer to
    ``request``: its session was changed, or is saved on every request, or was emptied. The
    page then shows a session that the request's ``Cookie`` header does not name."""
    session = getattr(request, "session", None)
    try:
        modified, empty = session.modified, session.is_empty()  # type: ignore[union-attr]
    except AttributeError:  # no SessionMiddleware, or a session of another kind
        return False
    if empty:
        return settings.SESSION_COOKIE_NAME in request.COOKIES
    return bool(modified or settings.SESSION_SAVE_EVERY_REQUEST)


def session_state(request: HttpRequest) -> tuple[t.Any, bool] | None:
    """What the session holds (a deep copy: ``session["cart"].append(x)`` changes a value in
    place) and whether it is marked modified, to tell whether an action changed it (see
    :func:`session_changed`); ``None`` when it is not loaded."""
    session = getattr(request, "session", None)
    cache = getattr(session, "_session_cache", None)
    if not isinstance(cache, dict):
        return None
    try:
        held = copy.deepcopy(cache)
    except Exception:  # a value that cannot be copied: its changes in place go unseen
        held = dict(cache)
    return held, bool(getattr(session, "modified", False))


def session_changed(request: HttpRequest, before: tuple[t.Any, bool] | None) -> bool:
    """Whether the action changed the session, given :func:`session_state` before it: what it
    holds, or its mark (``modified = True`` after a change in place); not whether something
    else marked it modified before (a "last seen" middleware above), or it is saved on every
    request."""
    after = session_state(request)
    if before is None:  # loaded by the action, if at all: its changes mark it modified
        return after is not None and after[1]
    return after is not None and (after[0] != before[0] or (after[1] and not before[1]))


class Body:
    """A Django response as a WSGI iterable. ``owned``: a page rendered inside another request,
    closed here without the ``request_finished`` signal (which would close the database
    connections the outer request still uses); else Django closes the response itself."""

    __slots__ = ("_chunks", "_owned", "_response")

    def __init__(self, response: HttpResponseBase, owned: bool) -> None:
        self._response = response
        self._owned = owned
        # Taken now: the page cache may make the response stream from it (see adopt).
        chunks: t.Iterable[bytes] = (
            response.streaming_content if response.streaming else (response.content,)
        )
        self._chunks = chunks

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        if self._owned:
            close_quietly(self._response)


def close_quietly(response: HttpResponseBase) -> None:
    """Close a response rendered inside another request: its resources, not the request."""
    closers = response._resource_closers
    for closer in closers:
        with contextlib.suppress(Exception):
            closer()
    closers.clear()
    response.closed = True


def adopt(
    response: HttpResponseBase,
    body: Body,
    iterable: t.Iterable[bytes],
    headers: list[tuple[str, str]],
) -> HttpResponseBase:
    """The view's own response, as the core passed it on: with the cache's header, and its
    body recorded for the cache (and ``after()`` callbacks run) by the core's iterable."""
    if iterable is not body:
        if response.streaming:
            response.streaming_content = iterable
        else:
            for _ in iterable:  # already in memory: the cache stores it now
                pass
            close = getattr(iterable, "close", None)
            if close is not None:
                response._resource_closers.append(Closer(close))
    kept = {name.lower() for name, _ in headers}
    for name, value in headers:
        if name == CACHE_STATUS_HEADER:
            response[name] = value
    if "cache-tag" not in kept and response.has_header("Cache-Tag"):
        del response["Cache-Tag"]
    return response


def from_answer(
    iterable: t.Iterable[bytes], status: str, headers: list[tuple[str, str]]
) -> HttpResponse:
    """A Django response for an answer of the core (an action's, the cache's, an asset)."""
    code, _, reason = status.partition(" ")
    try:
        body = b"".join(iterable)
    except BaseException:
        close(iterable)
        raise
    kind = SeeOther if any(name.lower() == "location" for name, _ in headers) else HttpResponse
    response = kind(body, status=int(code), reason=reason or None)
    for name, value in headers:
        if name.lower() == "set-cookie":
            response.cookies.load(value)
        elif name.lower() == "vary" and response.has_header("Vary"):
            patch_vary_headers(response, [v.strip() for v in value.split(",")])
        else:
            response[name] = value
    if hasattr(iterable, "close"):
        # after() callbacks run once the answer has been sent, when Django closes it.
        response._resource_closers.append(Closer(iterable.close))
    return response


class SeeOther(HttpResponse):
    """An answer that redirects (an action's ``303``), with the ``url`` Django's test client
    follows (``follow=True``) and ``assertRedirects`` reads."""

    @property
    def url(self) -> str:
        return str(self["Location"])


class Closer:
    """What closing the response does for the core (stores the page, runs ``after()``): a copy
    of the response that a cache pickles (``UpdateCacheMiddleware``) closes nothing."""

    def __init__(self, close: t.Callable[[], object]) -> None:
        self.close = close

    def __call__(self) -> object:
        return self.close()

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (_nothing, ())


def _nothing() -> None:
    return None


def close(iterable: t.Iterable[bytes]) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


def as_wsgi(response: HttpResponseBase) -> WSGIApplication:
    """A response the action returned, as the WSGI application that answers with it."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        start_response(status(response), wsgi_headers(response))
        return Body(response, owned=True)

    return app


def no_write(data: bytes) -> object:
    raise RuntimeError("The WSGI write() callable is not supported inside Django.")


def end_with(response: HttpResponseBase) -> t.NoReturn:
    """End an action that returned a response (or its login guard's): its redirect
    (``redirect_to_login``), always a ``303`` (a ``307``/``308`` would post the form again to
    the new URL, where the action or its guard would answer the same), or its error status
    with its page."""
    status = response.status_code
    location = response.get("Location")
    if 300 <= status < 400 and location:
        ctx = context.current()
        if ctx is not None:  # the cookies set on it (redirect(...).set_cookie(...))
            for morsel in response.cookies.values():
                ctx.add_set_cookie(morsel.OutputString())
        raise RedirectSignal(location, "push", 303)
    if status < 400:
        raise TypeError(
            f"The action returned a Django response ({status}); an action returns a JSON value,"
            " or ends with redirect(), a redirect response, Http404 or PermissionDenied, and the"
            " page is rendered by its own view."
        )
    raise HTTPSignal(status, page=as_wsgi(response))
