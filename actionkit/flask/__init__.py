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
``ACTIONKIT_DEBUG``, ``ACTIONKIT_SECRET_KEY``); the secret key defaults to
``app.secret_key``, and ``debug`` follows ``app.debug`` (read when an action fails).
``ACTIONKIT_CACHE`` may be a string, so that it can come from the environment: ``"memory"``,
a ``redis://`` URL, or the path of an SQLite file (relative to the instance folder).

An action runs as a view would
------------------------------

- inside Flask's application and request context: ``request`` (the ``POST`` that ran the
  action, its form included), ``session``, ``g``, ``current_app`` and ``url_for`` work, and
  ``request.endpoint`` is the endpoint of the page the form is on, so the ``before_request``
  functions of that page's blueprint run too (in an app with nothing around its requests, the
  request context is made when the action first reads it: see ``actionkit.flask.lazy``);
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
  which error trackers listen to, and ``request_started`` / ``request_finished`` are sent
  around the action;
- an error the app has an error handler for is answered by that handler; any other is a
  ``500``, or, with ``TESTING`` (``PROPAGATE_EXCEPTIONS``), raised to the test;
- the result is written by the app's JSON provider, and ``after()`` callbacks run in the app's
  context.

Without JavaScript, ``not_found()``, ``forbidden()``, ``unauthorized()`` and ``abort()`` show the
page of the app's error handler for that status.
"""

from __future__ import annotations

import functools
import os
import typing as t

try:
    from flask import Flask, current_app, has_app_context, request_finished, request_started
    from flask.globals import _cv_request
    from flask.testing import FlaskClient
except ModuleNotFoundError as e:  # pragma: no cover - tested in a subprocess
    raise ModuleNotFoundError(
        f"actionkit.flask needs Flask, which is not installed ({e}): pip install"
        " 'actionkit[flask]'."
    ) from e

from werkzeug.middleware.proxy_fix import ProxyFix

from .. import context
from ..cache import PageCache
from ..cache.api import add_finder
from ..jinja import install
from ..middleware import BODY_LIMIT, ActionMiddleware
from ..stores import MemoryStore, SQLiteStore
from ..testing import ActionClient, with_actions
from .lazy import unmade
from .pages import settled, watch_session
from .running import error_page, json_default, propagates, run_in_flask

if t.TYPE_CHECKING:
    from ..stores import Store

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
        follow_debug = "debug" not in settings
        limit, given = app.config.get("MAX_CONTENT_LENGTH"), settings.get("body_limit", BODY_LIMIT)
        if type(limit) is int and limit > 0 and type(given) is int:
            settings["body_limit"] = min(given, limit)  # what Flask refuses of a view's request
        if isinstance(settings.get("cache"), str | os.PathLike):
            settings["cache"] = _store(app, settings["cache"])
        elif settings.get("cache") is None:
            # A store of the app's own: apps made by a factory (one per test) share nothing,
            # and revalidation outside a request finds it through the app context.
            settings["cache"] = MemoryStore()
        # A ProxyFix applied before (Flask's docs: app.wsgi_app = ProxyFix(app.wsgi_app)) must
        # stay outside: actions, the origin check and the page cache see the request as fixed.
        outer: ProxyFix | None = None
        inner: t.Any = app.wsgi_app
        while isinstance(inner, ProxyFix):
            outer, inner = inner, inner.app
        middleware = ActionMiddleware(
            inner,
            **settings,
            error_page=functools.partial(error_page, app),
            action_wrapper=functools.partial(run_in_flask, app),
        )
        middleware._context_in_environ = True  # for _streamed_context
        # An action's error reaches the test that made the request, as a view's does; in debug
        # mode, a form's without JavaScript reaches Werkzeug's debugger (``flask run --debug``),
        # as a view's does (the client script shows the traceback of its answer instead).
        middleware._propagate = lambda client: propagates(app, client, middleware.debug)
        middleware._json_default = functools.partial(json_default, app)
        if follow_debug:
            middleware._debug_source = lambda: app.debug  # set late by app.run(debug=True)
        if outer is None:
            app.wsgi_app = middleware  # type: ignore[method-assign]
        else:
            outer.app = middleware
        app.extensions["actionkit"] = middleware
        _install_template_globals(app)
        _watch_cookie_reads(app)
        request_started.connect(watch_session, app)
        request_finished.connect(settled, app)
        if app.test_client_class is None:
            app.test_client_class = FlaskActionClient
        else:  # the app's own client, which can run actions too
            app.test_client_class = t.cast("type[FlaskClient]", with_actions(app.test_client_class))
        from ..cli import flask_cli

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
    ``session``). The session interface's own read, while Flask opens the session, does not
    count.
    """
    base = app.request_class

    class Request(base):  # type: ignore[valid-type,misc]
        @property
        def cookies(self) -> t.Any:
            ctx = context.current()
            if ctx is not None:
                flask_ctx = _cv_request.get(None)
                # (Flask's ``session`` property asserts while the session is being opened.)
                if flask_ctx is None or getattr(flask_ctx, "_session", None) is not None:
                    ctx.hints.cookies_read = True
            return super().cookies

    Request.__name__ = Request.__qualname__ = base.__name__
    Request.__module__ = base.__module__
    app.request_class = Request


def _app_cache() -> PageCache | None:
    """The page cache of the current Flask app, in its app context (revalidation from a
    ``flask`` command, a job, a shell)."""
    if not has_app_context():
        return None
    middleware = current_app.extensions.get("actionkit")
    return middleware.cache if isinstance(middleware, ActionMiddleware) else None


add_finder(_app_cache)


def _streamed_context() -> context.RequestContext | None:
    """The context of the request whose response Flask streams (``stream_template``,
    ``stream_with_context``): its generator runs once the middleware's call of the app has
    returned, inside Flask's request context, whose environ holds it."""
    flask_ctx = _cv_request.get(None)
    if flask_ctx is None:
        return None
    # (An action's context that nothing read is not made for this: its environ is at hand.)
    environ = flask_ctx.environ if unmade(flask_ctx) else flask_ctx.request.environ
    found = environ.get(context.ENVIRON_KEY)
    return found if isinstance(found, context.RequestContext) else None


context.lookups.append(_streamed_context)


def _in_app_context(fn: t.Callable[[], object]) -> t.Callable[[], object]:
    """An ``after()`` callback given in a Flask app's context, run in a context of that app
    (``current_app``, ``g`` of its own, extensions such as Flask-SQLAlchemy's session): it runs
    once the response is sent, when the request's contexts are gone."""
    if not has_app_context():
        return fn
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    @functools.wraps(fn)
    def run() -> object:
        with app.app_context():
            return fn()

    return run


context.keepers.append(_in_app_context)


class FlaskActionClient(FlaskClient, ActionClient):
    """Flask's test client (``session_transaction()``, the app context) that can also
    ``submit()`` and ``call()`` actions: ``app.test_client()`` of an app set up with
    :class:`ActionKit`, and what ``ActionClient(app)`` gives for a Flask app."""


def is_page_after_action() -> bool:
    """Whether the current Flask request is the page actionkit renders in-process after an
    action (not a request of the client's): ``limiter.request_filter(is_page_after_action)``
    counts each action once against Flask-Limiter's limits."""
    from flask import has_request_context, request

    from ..rendering import AFTER_ACTION_KEY

    return has_request_context() and bool(request.environ.get(AFTER_ACTION_KEY))


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
        from ..stores.redis import RedisStore

        return RedisStore(text)
    if not os.path.isabs(text):
        # Relative to the instance folder, which Flask does not create.
        os.makedirs(app.instance_path, exist_ok=True)
    return SQLiteStore(os.path.join(app.instance_path, text))
