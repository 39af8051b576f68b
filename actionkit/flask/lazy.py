"""Flask's request context for an action, routed as the page the form is on, and made when
something first reads it (see :func:`action_context`)."""

from __future__ import annotations

import sys
import threading
import typing as t

from flask import Flask, request_finished, request_started, request_tearing_down
from flask.ctx import RequestContext
from flask.globals import _cv_app, _cv_request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.test import create_environ

from .. import context
from .pages import settled, watch_session

if t.TYPE_CHECKING:
    import contextvars

    from _typeshed.wsgi import WSGIEnvironment
    from flask.ctx import AppContext

# What RequestContext.__init__ sets: reading one of them makes a lazy context.
_MADE_BY_INIT = frozenset(
    ("request", "url_adapter", "flashes", "_session", "_after_request_functions", "_cv_tokens")
)
_UNSET: t.Any = object()


def as_page(ctx: RequestContext, step: t.Callable[[], None]) -> None:
    """Run ``step`` (``ctx.push`` or ``ctx.match_request``), which matches the request's URL,
    matching it as a ``GET``.

    The page's route usually accepts only ``GET``; matching the ``POST`` as a ``GET`` gives
    ``request.endpoint``, ``view_args`` and the blueprint, whose ``before_request`` functions
    (a login check on ``/admin``) must guard the actions posted to its pages. Where the path has
    no ``GET`` route, the route of the request's own method is taken.
    """
    adapter = ctx.url_adapter
    if adapter is None or adapter.default_method == "GET":
        step()
        return
    method = adapter.default_method
    adapter.default_method = "GET"  # what matching uses (no MethodNotAllowed to raise)
    try:
        step()
    finally:
        adapter.default_method = method  # url_for() and the rest see the request's own method
    request = ctx.request
    if isinstance(request.routing_exception, MethodNotAllowed):
        try:
            rule, args = adapter.match(return_rule=True)
        except HTTPException:
            pass
        else:
            request.url_rule, request.view_args = rule, dict(args)
            request.routing_exception = None


def full_context(app: Flask, environ: WSGIEnvironment) -> RequestContext:
    """Flask's request context for ``environ``, pushed, routed as the page (see as_page)."""
    ctx = app.request_context(environ)
    try:
        as_page(ctx, ctx.push)
    except BaseException as e:  # (a URL converter's error): popped, as Flask.wsgi_app pops it
        if ctx._cv_tokens:
            ctx.pop(e)
        raise
    return ctx


class LazyRequestContext(RequestContext):
    """A request context pushed before it is made: the first read of what Flask's
    ``RequestContext`` holds (``request``, ``session``, ``url_for``'s adapter, ``flash``'s
    list, ``after_this_request``'s) makes it as ``push()`` would have: the request object,
    the session opened, the URL matched as the page. Nothing made, nothing torn down: popping
    it pops the app context alone."""

    def __init__(
        self,
        app: Flask,
        environ: WSGIEnvironment,
        request: t.Any = None,
        session: t.Any = None,
    ) -> None:
        self.app = app
        self.environ = environ
        self.made = False
        self._making = threading.RLock()  # threads sharing the context (copy_context) read it
        self._failed: BaseException | None = None
        self._pushed: tuple[contextvars.Token[RequestContext], AppContext | None] | None = None
        self._was_pushed = False
        if request is not None or session is not None:  # copy(): a context of its own
            super().__init__(app, environ, request, session)
            self.made = True

    def __getattr__(self, name: str) -> t.Any:
        # Reached only for an attribute not set yet: one of __init__'s, before it ran.
        vars_ = self.__dict__
        if name not in _MADE_BY_INIT or "_making" not in vars_:
            raise AttributeError(name)
        with vars_["_making"]:
            if name not in vars_:
                if self._failed is not None or self.made:  # (made, it has every one of them)
                    raise RuntimeError("Flask's request context could not be made.") from (
                        self._failed
                    )
                try:
                    self._make()
                except BaseException as e:
                    self._failed = e
                    if isinstance(e, AttributeError):
                        # Raised from a property (``session``), it would be taken for a
                        # missing attribute and lost: the error of the app's is kept.
                        message = f"Flask's request context could not be made: {e!r}"
                        raise RuntimeError(message) from e
                    raise
        return vars_[name]

    def push(self) -> None:
        if self.made or self._pushed is not None:
            # Pushed again (``stream_with_context``, ``with ctx:``): made first, then as Flask's.
            with self._making:
                if not self.made:
                    self._make()
            super().push()
            return
        app_ctx = _cv_app.get(None)
        if app_ctx is None or app_ctx.app is not self.app:
            app_ctx = self.app.app_context()
            app_ctx.push()
        else:
            app_ctx = None
        self._pushed = (_cv_request.set(self), app_ctx)
        self._was_pushed = True

    def _make(self) -> None:
        RequestContext.__init__(self, self.app, self.environ)
        if self._pushed is not None:
            self._cv_tokens.append(self._pushed)
            self._pushed = None
        if self._was_pushed:
            # As push() goes on once the context variable is set: the session, the route
            # (also when it is read once the action is over, by code that kept the context).
            interface = self.app.session_interface
            self._session = interface.open_session(self.app, self.request)
            if self._session is None:
                self._session = interface.make_null_session(self.app)
            if self.url_adapter is not None:
                as_page(self, self.match_request)
        self.made = True

    def pop(self, exc: BaseException | None = _UNSET) -> None:
        if exc is _UNSET:
            exc = sys.exc_info()[1]
        with self._making:
            pushed, self._pushed = self._pushed, None
        if pushed is None:
            super().pop(exc)
            return
        token, app_ctx = pushed
        _cv_request.reset(token)
        if app_ctx is not None:
            app_ctx.pop(exc)

    def __repr__(self) -> str:
        if self.made:
            return super().__repr__()
        return f"<{type(self).__name__} (not made yet) of {self.app.name}>"


def action_context(app: Flask, environ: WSGIEnvironment, call: t.Any) -> RequestContext:
    """The request context an action runs in, pushed.

    It is a lazy one (:class:`LazyRequestContext`) when nothing needs it made before the
    action or after it: no ``before_request``, ``after_request`` or ``teardown_request``
    function and no URL value preprocessor, no receiver of the request signals but
    actionkit's, Flask's own request context and request handling (no subclass of ``Flask``
    giving its own ``request_context``, ``preprocess_request``, ``process_response`` or
    ``do_teardown_request``), Flask's own sessions and no session cookie in the request (a
    permanent session is sent again, read or not), an action that is neither scoped
    (``under=``) nor takes the request as a parameter, outside a test client's ``with``
    block. An action that then reads ``request``, ``session``, ``url_for`` or the like has it
    made at that read, as it would have been; one that reads none of it costs no request
    object, URL matching, session or teardown. (With a Flask release whose request context
    holds more than this module knows, see :func:`known_flask`, it is always made first.)
    """
    if _needs_context(app, environ, call):
        return full_context(app, environ)
    ctx = LazyRequestContext(app, environ)
    ctx.push()
    return ctx


def _needs_context(app: Flask, environ: WSGIEnvironment, call: t.Any) -> bool:
    if getattr(call, "requests", True) or "werkzeug.debug.preserve_context" in environ:
        return True
    if not known_flask():
        return True
    for functions in (
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
        app.url_value_preprocessors,
    ):
        if any(functions.values()):
            return True
    if not plain_flask(app):
        return True
    ctx = context.current()
    if ctx is None or getattr(ctx.action, "under", None) is not None:
        return True
    interface = app.session_interface
    if type(interface) is not SecureCookieSessionInterface:
        return True  # (a session of another kind may be written whether read or not)
    if app.secret_key and app.config["SESSION_COOKIE_NAME"] in environ.get("HTTP_COOKIE", ""):
        return True  # a permanent session is sent again on each request, read or not
    return (
        heard(request_started, app, watch_session)
        or heard(request_finished, app, settled)
        or heard(request_tearing_down, app, None)
    )


_known: list[bool] = []


def known_flask() -> bool:
    """Whether Flask's ``RequestContext.__init__`` sets what a lazy context makes on first
    read, and nothing else (a Flask whose contexts are made otherwise has them made first)."""
    if not _known:
        probe = RequestContext(Flask("actionkit.flask.lazy"), create_environ())
        _known.append(set(vars(probe)) == _MADE_BY_INIT | {"app"})
    return _known[0]


# What a request context runs, besides the functions the app registers: an app whose class (or
# the app itself) gives one of its own has its context made first (Flask's own are known to
# run nothing but those functions).
_RUN_AROUND = ("request_context", "preprocess_request", "process_response", "do_teardown_request")
_plain_classes: dict[type, bool] = {}


def plain_flask(app: Flask) -> bool:
    """Whether ``app`` runs Flask's own request context around a request, nothing more."""
    cls = type(app)
    plain = _plain_classes.get(cls)
    if plain is None:
        plain = _plain_classes[cls] = all(
            getattr(cls, name) is getattr(Flask, name) for name in _RUN_AROUND
        )
    return plain and not any(name in vars(app) for name in _RUN_AROUND)


def heard(signal: t.Any, app: Flask, ours: t.Callable[..., None] | None) -> bool:
    """Whether a receiver of ``signal`` for ``app`` other than actionkit's own (``ours``,
    which watches the pages the cache may store: an action is never one) listens; an action
    sends ``request_started`` and ``request_finished`` only then (it has no response of its own
    to make for the second)."""
    receivers = signal.receivers  # (every sender's: only actionkit's, the usual case, is quick)
    if not receivers or (len(receivers) == 1 and ours is not None and id(ours) in receivers):
        return False
    return any(r is not ours for r in signal.receivers_for(app))


def unmade(ctx: RequestContext) -> t.TypeGuard[LazyRequestContext]:
    """Whether ``ctx`` is a lazy context nothing has read: no session to save, no function
    registered on it."""
    return isinstance(ctx, LazyRequestContext) and not ctx.made
