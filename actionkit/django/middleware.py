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

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    ImproperlyConfigured,
    PermissionDenied,
    SuspiciousOperation,
)
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.core.signals import got_request_exception
from django.db import connections, transaction
from django.http import Http404, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.middleware.common import CommonMiddleware

from .. import context
from ..cache.policy import VARIANT_KEY
from ..exceptions import ActionSignal, HTTPSignal
from ..middleware import ActionMiddleware
from ..protocol import ACTION_FIELD_PREFIX
from ..rendering import Rendered
from . import conf, guards, responses

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..params import ActionCall

# Per-request data in the environ (WSGIRequest.META is the environ).
REQUEST_KEY = "actionkit.django.request"
_RESPONSE_KEY = "actionkit.django.response"
_INPUT_KEY = "actionkit.django.input"
_ERROR_KEY = "actionkit.django.error"
_TEXT_KEY = "actionkit.django.paths"
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
        _to_wsgi(environ)
        environ[VARIANT_KEY] = _variant(request, environ)
        if request.method == "POST":
            body = getattr(request, "_body", None)
            if body is not None:  # read by a middleware above: let decoding read it again
                environ["wsgi.input"] = io.BytesIO(body)
            elif request._read_started and "_files" in vars(request):
                _refuse_a_body_parsed_above(request)
            environ[_INPUT_KEY] = environ["wsgi.input"]
        captured: list[t.Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            captured[:] = [status, headers]
            return responses.no_write

        try:
            iterable = self.core(environ, start_response)
        finally:
            texts = environ.pop(_TEXT_KEY, None)
            if texts is not None:  # Django's text again, for the middleware above (_to_wsgi)
                environ["PATH_INFO"], environ["SCRIPT_NAME"] = texts
        answered = environ.pop(_RESPONSE_KEY, None)
        if answered is not None:
            response, body = answered
            return responses.adopt(response, body, iterable, captured[1])
        return responses.from_answer(iterable, captured[0], captured[1])

    # -- the WSGI application the core wraps: Django's own chain --------------------------------

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        """``get_response`` as a WSGI application: for the request itself, or for the page
        rendered after an action (a new request, sharing the action request's session)."""
        request = environ.get(REQUEST_KEY)
        own = isinstance(request, WSGIRequest) and request.environ is environ
        if own:
            page = t.cast(WSGIRequest, request)
            _sync_stream(page)
            with _django_paths(environ):
                response = self.get_response(page)
        else:
            # WSGIRequest rewrites the paths of its environ as text: the cache keeps their
            # WSGI form (see _to_wsgi).
            environ.pop(_TEXT_KEY, None)
            paths: dict[str, t.Any] = {
                k: environ[k] for k in ("PATH_INFO", "SCRIPT_NAME") if k in environ
            }
            page = page_request(environ, request)
            try:
                response = self.get_response(page)
                if response.status_code == 404:
                    response = _slash_redirect(page) or response
            finally:
                environ.update(paths)
        headers = responses.cache_headers(page, response)
        if not own and isinstance(request, WSGIRequest):
            _hand_back_csrf(page, request)
        body = responses.Body(response, owned=not own)
        if own:
            environ[_RESPONSE_KEY] = (response, body)
        start_response(responses.status(response), headers)
        return body

    def _run_action(self, environ: WSGIEnvironment, call: ActionCall) -> t.Any:
        """Run an action as a view would run, with the request (see the module)."""
        request: WSGIRequest = environ[REQUEST_KEY]
        _sync_stream(request)
        # Decoding passed the origin check before any action runs: the request is checked.
        request._dont_enforce_csrf_checks = True
        before = responses.session_state(request)
        try:
            with _django_paths(environ):
                refused = guards.login_required_answer(request, context.current())
                if refused is not None:
                    responses.end_with(refused)
                result = _atomic_call(call, request)
        except ActionSignal:
            raise
        except (Http404, PermissionDenied, BadRequest, SuspiciousOperation) as e:
            request.environ[_ERROR_KEY] = e  # its message for the error page (_error_page)
            raise HTTPSignal(
                404 if isinstance(e, Http404) else 403 if isinstance(e, PermissionDenied) else 400
            ) from None
        except Exception:
            got_request_exception.send(sender=None, request=request)
            raise
        finally:
            ctx = context.current()
            if ctx is not None:
                added = getattr(getattr(request, "_messages", None), "added_new", False)
                # The page after it shows the action's messages, or a session its Cookie header
                # does not name (SessionMiddleware saves it on the way out).
                ctx.page_uncached = added or responses.session_cookie_set(request)
                ctx.page_changed = added or responses.session_changed(request, before)
        if isinstance(result, HttpResponseBase):
            responses.end_with(result)
        return result

    def _error_page(self, status: int, environ: WSGIEnvironment) -> Rendered | None:
        """Django's error view (``handler404``, ``handler403``, ``handler400``) for ``status``."""
        request = environ.get(REQUEST_KEY)
        error = {404: Http404, 403: PermissionDenied, 400: BadRequest}.get(status)
        if not isinstance(request, WSGIRequest) or error is None:
            return None
        raised = environ.pop(_ERROR_KEY, None)  # the exception the action raised, if any
        response = response_for_exception(request, raised if raised is not None else error())
        try:
            return Rendered(
                responses.status(response), responses.wsgi_headers(response), response.content
            )
        finally:
            responses.close_quietly(response)


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


def _slash_redirect(page: WSGIRequest) -> HttpResponseBase | None:
    """For the page after an action posted to a URL without its slash (``/posts`` for
    ``/posts/``), the redirect CommonMiddleware above makes of its 404 (``APPEND_SLASH``),
    which the core answers as a ``303``; above, it would meet the ``POST`` (an error with
    ``DEBUG``) rather than this page's ``GET``."""
    if "django.middleware.common.CommonMiddleware" not in settings.MIDDLEWARE:
        return None
    common = CommonMiddleware(lambda request: HttpResponse())
    if not common.should_redirect_with_slash(page):
        return None
    return HttpResponseRedirect(common.get_full_path_with_slash(page))


def _refuse_a_body_parsed_above(request: WSGIRequest) -> None:
    """A middleware above this one read ``request.POST`` of a multipart body, which Django
    parses from the stream without keeping it: an action in it cannot be read any more. Say
    so, rather than let the request pass for a plain form (which CSRF then refuses)."""
    names = request.POST.keys()
    if "HTTP_ACTION_ID" in request.META or any(n.startswith(ACTION_FIELD_PREFIX) for n in names):
        raise ImproperlyConfigured(
            "A middleware above ActionKitMiddleware read request.POST of a multipart action"
            " request, which consumes its body: put ActionKitMiddleware above that middleware,"
            " or have it read request.body first (which Django keeps)."
        )


def _to_wsgi(environ: WSGIEnvironment) -> None:
    """Give ``PATH_INFO`` and ``SCRIPT_NAME`` their WSGI form back (their UTF-8 bytes as
    latin-1), which the page cache and ``revalidate_path`` read: Django's ``WSGIRequest``
    replaced them in its ``META``, which is the environ, with their text. Django's code gets
    the text again while it runs (:func:`_django_paths`). ASCII paths are the same either way.
    """
    path, script = environ.get("PATH_INFO", ""), environ.get("SCRIPT_NAME", "")
    if path.isascii() and script.isascii():
        return
    environ[_TEXT_KEY] = (path, script)
    environ["PATH_INFO"] = path.encode().decode("latin-1")
    environ["SCRIPT_NAME"] = script.encode().decode("latin-1")


def _variant(request: WSGIRequest, environ: WSGIEnvironment) -> str:
    """What names a page besides its URL: the language LocaleMiddleware chose, and the site as
    Django sees it (``USE_X_FORWARDED_HOST``, ``SECURE_PROXY_SSL_HEADER``) where it is not the
    request's ``Host`` and scheme: the page's absolute URLs are made of it."""
    language = getattr(request, "LANGUAGE_CODE", None)
    variant = f"\0{language}" if language else ""
    try:
        site = f"{request.scheme}://{request.get_host()}"
    except DisallowedHost:  # refused further down
        return variant
    if site != f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}":
        variant += f"\0{site}"
    return variant


@contextlib.contextmanager
def _django_paths(environ: WSGIEnvironment) -> t.Iterator[None]:
    """The paths as Django's ``WSGIRequest`` left them in ``META``, while Django code runs."""
    texts = environ.get(_TEXT_KEY)
    if texts is None:
        yield
        return
    wsgi = environ["PATH_INFO"], environ["SCRIPT_NAME"]
    environ["PATH_INFO"], environ["SCRIPT_NAME"] = texts
    try:
        yield
    finally:
        environ["PATH_INFO"], environ["SCRIPT_NAME"] = wsgi


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
    runs: ending the action with ``redirect()`` commits; an exception, ``not_found()``,
    ``forbidden()`` or ``unauthorized()`` rolls back (as ``Http404`` raised in a view); an
    action decorated with ``transaction.non_atomic_requests`` opts out, as a view does."""
    ctx = context.current()
    action = None if ctx is None else ctx.action
    opted_out = {
        *getattr(action, "_non_atomic_requests", ()),
        *getattr(getattr(action, "fn", None), "_non_atomic_requests", ()),
    }
    signal: ActionSignal | None = None
    with contextlib.ExitStack() as stack:
        for connection in connections.all():
            config = connection.settings_dict
            if config.get("ATOMIC_REQUESTS") and connection.alias not in opted_out:
                stack.enter_context(transaction.atomic(using=connection.alias))
        try:
            result = call(request=request)
        except HTTPSignal:
            raise
        except ActionSignal as e:
            signal = e
    if signal is not None:
        raise signal
    return result


__all__ = ["ActionKitMiddleware", "build_core", "page_request"]
