"""The Flask extension: actions inside Flask's request context, its sessions and error pages.

.. code-block:: python

    from flask import Flask
    from actionkit.flask import ActionKit

    actionkit = ActionKit()

    def create_app():
        app = Flask(__name__)
        app.config.from_prefixed_env()      # FLASK_SECRET_KEY, FLASK_ACTIONKIT_CACHE, ...
        actionkit.init_app(app)
        return app

``init_app`` wraps ``app.wsgi_app`` with :class:`~actionkit.ActionMiddleware` and adds the
template globals of :mod:`actionkit.jinja` to ``app.jinja_env``. Options come from keyword
arguments, else from ``ACTIONKIT_*`` config keys (``ACTIONKIT_CACHE``, ``ACTIONKIT_REGISTRY``,
``ACTIONKIT_ALLOWED_ORIGINS``, ``ACTIONKIT_TRUST_FORWARDED``, ``ACTIONKIT_BODY_LIMIT``,
``ACTIONKIT_DEBUG``, ``ACTIONKIT_SECRET_KEY``); the secret key defaults to ``app.secret_key`` and
``debug`` to ``app.debug``. ``ACTIONKIT_CACHE`` may be a string, so that it can come from the
environment: ``"memory"``, a ``redis://`` URL, or the path of an SQLite file (relative to the
instance folder).

An action runs as a view would
------------------------------

- inside Flask's application and request context: ``request`` (the ``POST`` that ran the
  action, its form included), ``session``, ``g``, ``current_app`` and ``url_for`` work, and
  ``request.endpoint`` is the endpoint of the page the form is on, so the ``before_request``
  functions of that page's blueprint run too;
- ``before_request`` functions run first. When one answers, the action does not run: a redirect
  (a login page) becomes the action's redirect — ``303`` without JavaScript, ``redirect`` in the
  client's answer — and an error status is the answer's status, with that function's page when
  the browser has no JavaScript. Any other answer refuses the action with ``403``;
- an action that *returns* a redirect or an error response, as a view decorated with
  Flask-Login's ``login_required`` does for an anonymous user, or raises ``abort(response)``,
  ends the same way; ``abort(404)`` gives ``404``;
- ``after_request`` functions then see an empty response standing for the answer; the
  ``Set-Cookie`` headers they and the session interface add (a changed ``session``, a
  "remember me" cookie) are sent with the action's answer, and the page rendered after the
  action sees them;
- ``teardown_request`` functions run last, with ``exc=None`` unless the action raised an
  exception (ending an action with ``redirect()`` is not an error, so a teardown that commits
  on success commits). An action that raises sends Flask's ``got_request_exception`` signal,
  which error trackers listen to.

Without JavaScript, ``not_found()``, ``forbidden()``, ``unauthorized()`` and ``abort()`` show the
page of the app's error handler for that status.
"""

from __future__ import annotations

import functools
import os
import typing as t

from flask import Flask, abort, current_app, got_request_exception, has_app_context
from flask.ctx import RequestContext
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.sansio.response import Response as BaseResponse

from . import context
from .cache import PageCache
from .cache.api import add_finder
from .exceptions import ActionSignal, HTTPSignal, RedirectSignal
from .jinja import install
from .middleware import ActionMiddleware
from .rendering import Rendered, render_app
from .stores import MemoryStore, SQLiteStore
from .testing import ActionClient

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment
    from flask.wrappers import Response

    from .params import ActionCall
    from .stores import Store

_OPTIONS = (
    "registry",
    "cache",
    "secret_key",
    "allowed_origins",
    "trust_forwarded",
    "body_limit",
    "debug",
)


class ActionKit:
    """Runs actions for a Flask application (``init_app`` pattern).

    :param app: the application, or ``None`` to call :meth:`init_app` later (app factory).
    :param options: the options of :class:`~actionkit.ActionMiddleware` (``cache``,
        ``registry``, ``secret_key``, ``allowed_origins``, ``trust_forwarded``,
        ``body_limit``, ``debug``); they override the ``ACTIONKIT_*`` config keys.

    The state of each application is its middleware, in ``app.extensions["actionkit"]``
    (see :func:`get_middleware`); the extension object keeps no application, so one can serve
    several.
    """

    def __init__(self, app: Flask | None = None, **options: t.Any) -> None:
        _check_options(options)
        self.options = options
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"<ActionKit options={sorted(self.options)!r}>"

    def init_app(self, app: Flask, **options: t.Any) -> ActionMiddleware:
        """Wrap ``app.wsgi_app`` and install the template globals; returns the middleware.

        :param options: override this extension's options for ``app`` only.
        """
        _check_options(options)
        if "actionkit" in app.extensions:
            raise RuntimeError(f"ActionKit is already set up on {app!r}; call init_app once.")
        settings = {
            name: app.config[f"ACTIONKIT_{name.upper()}"]
            for name in _OPTIONS
            if f"ACTIONKIT_{name.upper()}" in app.config
        }
        settings.update(self.options)
        settings.update(options)
        if settings.get("secret_key") is None and app.secret_key:
            # Flask's old keys open tokens sealed with them; the current key seals.
            fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or ()
            if isinstance(fallbacks, str | bytes):
                fallbacks = (fallbacks,)
            settings["secret_key"] = [app.secret_key, *fallbacks] if fallbacks else app.secret_key
        settings.setdefault("debug", app.debug)
        if isinstance(settings.get("cache"), str | os.PathLike):
            settings["cache"] = _store(app, settings["cache"])
        elif settings.get("cache") is None:
            # A store of the app's own: apps made by a factory (one per test) share nothing,
            # and revalidation outside a request finds it through the app context.
            settings["cache"] = MemoryStore()
        middleware = ActionMiddleware(
            app.wsgi_app,
            **settings,
            error_page=functools.partial(_error_page, app),
            action_wrapper=functools.partial(_run_in_flask, app),
        )
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions["actionkit"] = middleware
        _install_template_globals(app)
        _watch_cookie_reads(app)
        if app.test_client_class is None:
            app.test_client_class = FlaskActionClient
        from .cli import flask_cli

        app.cli.add_command(flask_cli)
        return middleware


def _install_template_globals(app: Flask) -> None:
    """Add the template globals when Flask makes its Jinja environment, not before: settings
    made after ``init_app`` (``TEMPLATES_AUTO_RELOAD``, ``jinja_options``) still apply."""
    if "jinja_env" in app.__dict__:  # already made
        install(app.jinja_env)
        return
    create = app.create_jinja_environment

    def create_jinja_environment() -> t.Any:
        env = create()
        install(env)
        return env

    app.create_jinja_environment = create_jinja_environment  # type: ignore[method-assign]


def _watch_cookie_reads(app: Flask) -> None:
    """Let the page cache know when a page read ``request.cookies``: such a page is somebody's
    and is stored only if it answers ``Vary: Cookie`` (Flask says so itself when a page reads
    ``session``). The session interface's own read, before ``before_request``, does not count.
    """
    base = app.request_class

    class Request(base):  # type: ignore[valid-type,misc]
        @property
        def cookies(self) -> t.Any:
            ctx = context.current()
            if ctx is not None:
                ctx.hints.cookies_read = True
            return super().cookies

    Request.__name__ = Request.__qualname__ = base.__name__
    Request.__module__ = base.__module__
    app.request_class = Request
    app.before_request_funcs.setdefault(None, []).insert(0, _session_read_is_not_the_pages)


def _session_read_is_not_the_pages() -> None:
    ctx = context.current()
    if ctx is not None and not ctx.in_action:
        ctx.hints.cookies_read = False


def _app_cache() -> PageCache | None:
    """The page cache of the current Flask app, in its app context (revalidation from a
    ``flask`` command, a job, a shell)."""
    if not has_app_context():
        return None
    middleware = current_app.extensions.get("actionkit")
    return middleware.cache if isinstance(middleware, ActionMiddleware) else None


add_finder(_app_cache)


class FlaskActionClient(FlaskClient, ActionClient):
    """Flask's test client (``session_transaction()``, the app context) that can also
    ``submit()`` and ``call()`` actions: ``app.test_client()`` of an app set up with
    :class:`ActionKit`, and what ``ActionClient(app)`` gives for a Flask app."""


def get_middleware(app: Flask) -> ActionMiddleware:
    """The :class:`~actionkit.ActionMiddleware` that :meth:`ActionKit.init_app` installed on
    ``app`` (its page cache, registry and options)."""
    try:
        return t.cast(ActionMiddleware, app.extensions["actionkit"])
    except KeyError:
        raise RuntimeError(f"ActionKit is not set up on {app!r}; call init_app(app).") from None


def _check_options(options: dict[str, t.Any]) -> None:
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"Unknown option(s) {sorted(unknown)!r}; valid: {list(_OPTIONS)!r}.")


def _store(app: Flask, spec: str | os.PathLike[str]) -> Store:
    """A store named by a string: ``"memory"``, a Redis URL, or an SQLite file's path."""
    text = os.fspath(spec)
    if not text:
        raise ValueError(
            "ACTIONKIT_CACHE is empty; use 'memory', a redis:// URL or the path of an SQLite file."
        )
    if text == "memory":
        return MemoryStore()
    if text.startswith(("redis://", "rediss://", "unix://")):
        from .stores.redis import RedisStore

        return RedisStore(text)
    return SQLiteStore(os.path.join(app.instance_path, text))


# -- running an action as a view ------------------------------------------------------------------


def _request_context(app: Flask, environ: WSGIEnvironment) -> RequestContext:
    """Push Flask's request context for ``environ``, routed as the page the form is on.

    The page's route usually accepts only ``GET``; matching the ``POST`` as a ``GET`` gives
    ``request.endpoint``, ``view_args`` and the blueprint, whose ``before_request`` functions
    (a login check on ``/admin``) must guard the actions posted to its pages. Where the path has
    no ``GET`` route, the route of the request's own method is taken.
    """
    ctx = app.request_context(environ)
    adapter = ctx.url_adapter
    if adapter is None or adapter.default_method == "GET":
        ctx.push()
        return ctx
    method = adapter.default_method
    adapter.default_method = "GET"  # what push() matches with (no MethodNotAllowed to raise)
    try:
        ctx.push()
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
    return ctx


def _run_in_flask(app: Flask, environ: WSGIEnvironment, call: ActionCall) -> t.Any:
    """Run an action inside Flask's request context, as a view would run (see the module)."""
    ctx = _request_context(app, environ)
    error: BaseException | None = None
    try:
        try:
            _check_scope(ctx)
            # A parameter named ``request`` gets Flask's request.
            result = _dispatch(app, functools.partial(call, request=ctx.request))
        except ActionSignal as signal:
            _after_request(app, ctx, functools.partial(_stand_in, app, signal))
            raise
        except HTTPException as e:
            _after_request(app, ctx, functools.partial(app.response_class, status=e.code or 500))
            if e.code is None or e.code < 400:
                raise
            # The app's error page for it, with the exception's own description:
            # abort(404, "No such post.") shows that message.
            raise HTTPSignal(e.code, page=_handled(app, e)) from None
        _after_request(app, ctx, app.response_class)
        return result
    except (ActionSignal, HTTPException):
        raise  # an answer, not an error: teardown functions see exc=None
    except BaseException as e:
        error = e
        if isinstance(e, Exception):
            got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=e)
        raise
    finally:
        ctx.pop(error)


def _check_scope(flask_ctx: RequestContext) -> None:
    """A scoped action (``under=``) runs only at a page Flask routes: where no route matches,
    no blueprint's guards would run before it."""
    ctx = context.current()
    action = None if ctx is None else ctx.action
    if getattr(action, "under", None) is not None and isinstance(
        flask_ctx.request.routing_exception, NotFound
    ):
        raise HTTPSignal(404)


def _handled(app: Flask, error: HTTPException) -> WSGIApplication:
    """The answer of the app's error handler for ``error`` (Flask's own page when none)."""
    try:
        handled = app.handle_http_exception(error)
        return t.cast(
            "WSGIApplication",
            handled if isinstance(handled, HTTPException) else app.make_response(handled),
        )
    except Exception:
        app.logger.exception("The error handler for status %s raised", error.code)
        return t.cast("WSGIApplication", error)


def _dispatch(app: Flask, call: t.Callable[[], t.Any]) -> t.Any:
    """``before_request`` functions, then the action; a response from either ends it."""
    try:
        answer = app.preprocess_request()
        if answer is not None:
            _end_with(app.make_response(answer))
        result = call()
    except HTTPException as e:
        if e.response is None:
            raise
        _end_with(e.response)  # abort(redirect(...)) and the like
    if isinstance(result, BaseResponse):
        if result.status_code < 300:
            raise TypeError(
                f"The action returned a Flask response ({result.status!r}); an action returns a"
                " JSON value, or ends with redirect(), not_found() or abort(), and the page is"
                " rendered by its own view."
            )
        _end_with(result)
    return result


def _end_with(response: BaseResponse) -> t.NoReturn:
    """End the action with ``response``: its redirect, or its error status and page."""
    status = response.status_code
    location = response.headers.get("Location")
    if 300 <= status < 400 and location:
        raise RedirectSignal(location, "push", 308 if status == 308 else 303)
    if status < 400:
        raise HTTPSignal(403)  # the app answered instead of letting the action run
    raise HTTPSignal(status, page=t.cast("WSGIApplication", response))


def _stand_in(app: Flask, signal: ActionSignal) -> Response:
    """An empty response for ``after_request`` functions, with the action's outcome."""
    if isinstance(signal, RedirectSignal):
        return app.response_class(status=signal.status, headers={"Location": signal.url})
    if isinstance(signal, HTTPSignal):
        return app.response_class(status=signal.status)
    return app.response_class()


def _after_request(
    app: Flask, flask_ctx: RequestContext, stand_in: t.Callable[[], Response]
) -> None:
    """Run ``after_request`` functions and save the session; their cookies join the answer."""
    if _nothing_after(app, flask_ctx):
        return
    response = app.process_response(stand_in())
    ctx = context.current()
    if ctx is not None:
        for header in response.headers.getlist("Set-Cookie"):
            ctx.add_set_cookie(header)


def _nothing_after(app: Flask, ctx: RequestContext) -> bool:
    """Whether ``process_response`` would do nothing: no ``after_request`` function for this
    request, and no session (no secret key), or an empty, unchanged session that Flask's cookie
    sessions would not save."""
    if ctx._after_request_functions:
        return False
    funcs = app.after_request_funcs
    if funcs and any(funcs.get(name) for name in (None, *ctx.request.blueprints)):
        return False
    session = ctx.session
    if app.session_interface.is_null_session(session):
        return True  # no secret key: Flask saves nothing
    return (
        type(app.session_interface) is SecureCookieSessionInterface
        and isinstance(session, SecureCookieSession)
        and not session
        and not session.modified
        and not session.accessed
    )


def _error_page(app: Flask, status: int, environ: WSGIEnvironment) -> Rendered | None:
    """The page of the app's error handler for ``status``."""
    ctx = _request_context(app, environ)
    try:
        try:
            abort(status)
        except HTTPException as e:
            handled = app.handle_http_exception(e)
        response: t.Any = (
            handled if isinstance(handled, HTTPException) else app.make_response(handled)
        )
        # Not app.process_response(): the session loaded here predates the action's changes,
        # which are already in the answer.
        return render_app(response, environ)
    except LookupError:
        return None  # a status Werkzeug has no exception for: the middleware's own page
    except Exception:
        # A failing error handler must not turn a 404 into a crash of the whole answer.
        app.logger.exception("The error handler for status %s raised", status)
        return None
    finally:
        ctx.pop(None)
