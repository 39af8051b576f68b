"""The Django middleware: actions inside Django's request handling, Django views for the pages.

.. code-block:: python

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "actionkit.django.ActionKitMiddleware",
    ]

It is a thin adapter over :class:`~actionkit.ActionMiddleware`, which works on the request's WSGI
environ: the WSGI core decodes the request, checks its origin, runs the action and answers; the
"application" it wraps is the rest of Django's chain (``get_response``: the middleware below
this one, the URL resolver and the views).

- **Where actions run.** In ``__call__``, before ``get_response``: every middleware above has
  prepared the request (``request.session``, ``request.user``, messages, the CSRF cookie), no
  view runs, and CsrfViewMiddleware's ``process_view`` never sees the request. The action gets
  the :class:`~django.http.HttpRequest` in a parameter named ``request``.
- **CSRF.** Only a request that passed actionkit's origin check runs an action; the request is
  then marked as checked (``_dont_enforce_csrf_checks``) for anything in the action that would
  check it again. Every other ``POST`` reaches CsrfViewMiddleware as before.
- **The page after an action** is a ``GET`` handled by ``get_response``: Django resolves the URL
  and runs the view and the middleware below this one, on a new request that shares the
  session, user and messages of the action's request and carries its cookies as the action left
  them. The answer then goes up through the middleware above (the session is saved, the CSRF
  cookie set) as any response does.
- **GET** goes through the page cache: ``cache_tag()`` / ``cache_life()`` in a view opt in. A
  page that touched the session (``request.user`` included) varies on ``Cookie``; one that
  asked for a CSRF token or showed messages is never stored. Pages that did not opt in are the
  view's own response objects, untouched.
"""

from __future__ import annotations

import contextlib
import io
import typing as t

from django.core.exceptions import (
    BadRequest,
    ImproperlyConfigured,
    PermissionDenied,
    SuspiciousOperation,
)
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.core.signals import got_request_exception
from django.db import connections, transaction
from django.http import Http404, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers

from ..exceptions import ActionSignal, HTTPSignal, RedirectSignal
from ..middleware import ActionMiddleware
from ..protocol import CACHE_STATUS_HEADER
from ..rendering import Rendered
from . import conf

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..params import ActionCall

# Per-request data in the environ (WSGIRequest.META is the environ).
REQUEST_KEY = "actionkit.django.request"
_RESPONSE_KEY = "actionkit.django.response"
_INPUT_KEY = "actionkit.django.input"
# What middleware above this one may set on a request that the page after an action must see
# too, although it starts with an underscore.
_INHERITED_PRIVATE = ("_messages",)


class ActionKitMiddleware:
    """Runs actions for a Django project (see the module); configured by the ``ACTIONKIT``
    setting (:mod:`actionkit.django.conf`).

    :param get_response: the rest of Django's chain, as for any middleware.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: t.Callable[[WSGIRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.core = build_core(self._app, self._error_page, self._run_action)

    def __repr__(self) -> str:
        return f"<ActionKitMiddleware {self.core!r}>"

    def __call__(self, request: WSGIRequest) -> HttpResponseBase:
        environ = getattr(request, "environ", None)
        if environ is None or "wsgi.input" not in environ:
            raise ImproperlyConfigured(
                "ActionKitMiddleware runs under WSGI (gunicorn, runserver, the test client);"
                f" {type(request).__name__} has no WSGI environ."
            )
        environ[REQUEST_KEY] = request
        if request.method == "POST":
            body = getattr(request, "_body", None)
            if body is not None:  # read by a middleware above: let decoding read it again
                environ["wsgi.input"] = io.BytesIO(body)
            environ[_INPUT_KEY] = environ["wsgi.input"]
        captured: list[t.Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            captured[:] = [status, headers]
            return _no_write

        iterable = self.core(environ, start_response)
        answered = environ.pop(_RESPONSE_KEY, None)
        if answered is not None:
            response, body = answered
            return _adopt(response, body, iterable, captured[1])
        return _response(iterable, captured[0], captured[1])

    # -- the WSGI application the core wraps: Django's own chain --------------------------------

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        """``get_response`` as a WSGI application: for the request itself, or for the page
        rendered after an action (a new request, sharing the action request's session)."""
        request = environ.get(REQUEST_KEY)
        own = isinstance(request, WSGIRequest) and request.environ is environ
        if own:
            page = t.cast(WSGIRequest, request)
            _sync_stream(page)
        else:
            page = page_request(environ, request)
        response = self.get_response(page)
        headers = _cache_headers(page, response)
        if not own and isinstance(request, WSGIRequest):
            _hand_back_csrf(page, request)
        body = _Body(response, owned=not own)
        if own:
            environ[_RESPONSE_KEY] = (response, body)
        start_response(_status(response), headers)
        return body

    def _run_action(self, environ: WSGIEnvironment, call: ActionCall) -> t.Any:
        """Run an action as a view would run, with the request (see the module)."""
        request: WSGIRequest = environ[REQUEST_KEY]
        _sync_stream(request)
        # Decoding passed the origin check before any action runs: the request is checked.
        request._dont_enforce_csrf_checks = True
        try:
            result = _atomic_call(call, request)
        except ActionSignal:
            raise
        except Http404:
            raise HTTPSignal(404) from None
        except PermissionDenied:
            raise HTTPSignal(403) from None
        except (BadRequest, SuspiciousOperation):
            raise HTTPSignal(400) from None
        except Exception:
            got_request_exception.send(sender=None, request=request)
            raise
        if isinstance(result, HttpResponseBase):
            _end_with(result)
        return result

    def _error_page(self, status: int, environ: WSGIEnvironment) -> Rendered | None:
        """Django's error view (``handler404``, ``handler403``, ``handler400``) for ``status``."""
        request = environ.get(REQUEST_KEY)
        error = {404: Http404, 403: PermissionDenied, 400: BadRequest}.get(status)
        if not isinstance(request, WSGIRequest) or error is None:
            return None
        response = response_for_exception(request, error())
        try:
            return Rendered(_status(response), _wsgi_headers(response), response.content)
        finally:
            _close_quietly(response)


def build_core(
    app: WSGIApplication,
    error_page: t.Callable[[int, WSGIEnvironment], Rendered | None] | None = None,
    action_wrapper: t.Callable[[WSGIEnvironment, ActionCall], t.Any] | None = None,
) -> ActionMiddleware:
    """The WSGI core configured by the ``ACTIONKIT`` setting, around ``app``."""
    options = conf.options()
    cache = conf.page_cache()
    return ActionMiddleware(
        app,
        registry=options.registry,
        cache=False if cache is None else cache,
        secret_key=options.secret_key,
        allowed_origins=options.allowed_origins,
        trust_forwarded=options.trust_forwarded,
        body_limit=options.body_limit,
        debug=options.debug,
        error_page=error_page,
        action_wrapper=action_wrapper,
    )


# -- requests -----------------------------------------------------------------------------------

_own_names: frozenset[str] | None = None


def page_request(environ: WSGIEnvironment, parent: object) -> WSGIRequest:
    """A request for ``environ`` that carries what the middleware above this one attached to
    ``parent`` (``session``, ``user``, ``auser``, messages, ...), as those middleware do not run
    for a page rendered inside the action's request."""
    global _own_names
    page = WSGIRequest(environ)
    if isinstance(parent, WSGIRequest):
        if _own_names is None:
            # The request's own data: set by WSGIRequest itself, or cached by its properties.
            _own_names = frozenset(vars(page)) | frozenset(dir(WSGIRequest))
        for name, value in vars(parent).items():
            if name in _INHERITED_PRIVATE or not (name.startswith("_") or name in _own_names):
                setattr(page, name, value)
    return page


def _sync_stream(request: WSGIRequest) -> None:
    """Point Django's body stream at the environ's ``wsgi.input`` when decoding replaced it
    (a socket cannot be read twice; decoding hands an equivalent stream to the environ)."""
    environ = request.environ
    original = environ.get(_INPUT_KEY)
    if original is not None and environ["wsgi.input"] is not original:
        if not request._read_started:
            limit = request._stream.limit
            request._stream = LimitedStream(environ["wsgi.input"], limit)
        environ[_INPUT_KEY] = environ["wsgi.input"]


def _hand_back_csrf(page: WSGIRequest, request: WSGIRequest) -> None:
    """A CSRF token rendered in the page after an action needs its cookie set on the answer,
    which CsrfViewMiddleware does from the action request's ``META``."""
    if page.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        request.META["CSRF_COOKIE"] = page.META["CSRF_COOKIE"]
        request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True


def _atomic_call(call: ActionCall, request: WSGIRequest) -> t.Any:
    """Run the action in a transaction on each database with ``ATOMIC_REQUESTS``, as a view
    runs; ending the action (``redirect()``) commits, an exception rolls back."""
    signal: ActionSignal | None = None
    with contextlib.ExitStack() as stack:
        for connection in connections.all():
            if connection.settings_dict.get("ATOMIC_REQUESTS"):
                stack.enter_context(transaction.atomic(using=connection.alias))
        try:
            result = call(request=request)
        except ActionSignal as e:
            signal = e
    if signal is not None:
        raise signal
    return result


def _end_with(response: HttpResponseBase) -> t.NoReturn:
    """End an action that returned a response: its redirect (``redirect_to_login``), or its
    error status with its page."""
    status = response.status_code
    location = response.get("Location")
    if 300 <= status < 400 and location:
        raise RedirectSignal(location, "push", 308 if status in (301, 308) else 303)
    if status < 400:
        raise TypeError(
            f"The action returned a Django response ({status}); an action returns a JSON value,"
            " or ends with redirect(), a redirect response, Http404 or PermissionDenied, and the"
            " page is rendered by its own view."
        )
    raise HTTPSignal(status, page=_as_wsgi(response))


# -- responses ------------------------------------------------------------------------------------


def _status(response: HttpResponseBase) -> str:
    return f"{response.status_code} {response.reason_phrase}"


def _wsgi_headers(response: HttpResponseBase) -> list[tuple[str, str]]:
    """The headers of ``response`` as Django's WSGI handler sends them."""
    return [
        *response.items(),
        *(("Set-Cookie", c.output(header="").strip()) for c in response.cookies.values()),
    ]


def _cache_headers(request: WSGIRequest, response: HttpResponseBase) -> list[tuple[str, str]]:
    """The headers the page cache decides by, with what the middleware above this one will
    add: ``Vary: Cookie`` for a page that touched the session; and, for the cache only, never
    storing a page whose CSRF token or messages are somebody's."""
    session = getattr(request, "session", None)
    if session is not None and getattr(session, "accessed", False):
        patch_vary_headers(response, ("Cookie",))
    headers = _wsgi_headers(response)
    messages = getattr(request, "_messages", None)
    shown = messages is not None and messages.used and len(messages) > 0
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or shown:
        headers.append(("Cache-Control", "private"))  # seen by the cache, never sent
    return headers


class _Body:
    """A Django response as a WSGI iterable. ``owned``: a page rendered inside another request,
    closed here without the ``request_finished`` signal (which would close the database
    connections the outer request still uses); else Django closes the response itself."""

    __slots__ = ("_chunks", "_owned", "_response")

    def __init__(self, response: HttpResponseBase, owned: bool) -> None:
        self._response = response
        self._owned = owned
        # Taken now: the page cache may make the response stream from it (see _adopt).
        chunks: t.Iterable[bytes] = (
            response.streaming_content if response.streaming else (response.content,)
        )
        self._chunks = chunks

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        if self._owned:
            _close_quietly(self._response)


def _close_quietly(response: HttpResponseBase) -> None:
    """Close a response rendered inside another request: its resources, not the request."""
    closers = response._resource_closers
    for closer in closers:
        with contextlib.suppress(Exception):
            closer()
    closers.clear()
    response.closed = True


def _adopt(
    response: HttpResponseBase,
    body: _Body,
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
                response._resource_closers.append(close)
    kept = {name.lower() for name, _ in headers}
    for name, value in headers:
        if name == CACHE_STATUS_HEADER:
            response[name] = value
    if "cache-tag" not in kept and response.has_header("Cache-Tag"):
        del response["Cache-Tag"]
    return response


def _response(
    iterable: t.Iterable[bytes], status: str, headers: list[tuple[str, str]]
) -> HttpResponse:
    """A Django response for an answer of the core (an action's, the cache's, an asset)."""
    code, _, reason = status.partition(" ")
    try:
        body = b"".join(iterable)
    except BaseException:
        _close(iterable)
        raise
    response = HttpResponse(body, status=int(code), reason=reason or None)
    for name, value in headers:
        if name.lower() == "set-cookie":
            response.cookies.load(value)
        elif name.lower() == "vary" and response.has_header("Vary"):
            patch_vary_headers(response, [v.strip() for v in value.split(",")])
        else:
            response[name] = value
    if hasattr(iterable, "close"):
        # after() callbacks run once the answer has been sent, when Django closes it.
        response._resource_closers.append(iterable.close)
    return response


def _close(iterable: t.Iterable[bytes]) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


def _as_wsgi(response: HttpResponseBase) -> WSGIApplication:
    """A response the action returned, as the WSGI application that answers with it."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        start_response(_status(response), _wsgi_headers(response))
        return _Body(response, owned=True)

    return app


def _no_write(data: bytes) -> object:
    raise RuntimeError("The WSGI write() callable is not supported inside Django.")


__all__ = ["ActionKitMiddleware", "build_core", "page_request"]
