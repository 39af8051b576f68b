"""The Flask extension: actions inside Flask's request context, its sessions and error pages.

.. code-block:: python

    from flask import Flask
    from actionkit.flask import ActionKit

    actionkit = ActionKit()

    def create_app():
        app = Flask(__name__)
        app.config.from_prefixed_env()      # FLASK_SECRET_KEY, FLASK_ACTIONKIT_..., etc.
        actionkit.init_app(app)
        return app

``init_app`` wraps ``app.wsgi_app`` with :class:`~actionkit.ActionMiddleware` and adds the
template globals of :mod:`actionkit.jinja`. Options come from keyword arguments, else from
``ACTIONKIT_*`` config keys (``ACTIONKIT_CACHE``, ``ACTIONKIT_REGISTRY``,
``ACTIONKIT_ALLOWED_ORIGINS``, ``ACTIONKIT_TRUST_FORWARDED``, ``ACTIONKIT_BODY_LIMIT``,
``ACTIONKIT_DEBUG``, ``ACTIONKIT_SECRET_KEY``); the secret key defaults to ``app.secret_key``.

Actions run inside Flask's application and request context: ``request``, ``session``, ``g``,
``current_app`` and ``url_for`` work; ``before_request`` functions run first, so a login check
guards actions too, and ``teardown_request`` functions after. When a ``before_request`` function
returns a response, the action does not run: a redirect becomes the action's redirect (``303``,
or ``redirect`` in the client's answer) and an error status becomes the answer's status. Changes
to ``session`` are saved in the answer. ``abort(404)`` in an action, and ``not_found()``,
``forbidden()``, ``unauthorized()``, show the page of the app's error handler for that status
when the browser has no JavaScript.
"""

from __future__ import annotations

import functools
import typing as t

from flask import Flask, abort, session
from werkzeug.exceptions import HTTPException

from . import context
from .cache import Rendered, render_app
from .context import ActionSignal, HTTPSignal, RedirectSignal
from .jinja import install
from .middleware import ActionMiddleware

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

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

    :param app: the application, or ``None`` to call :meth:`init_app` later.
    :param options: the options of :class:`~actionkit.ActionMiddleware`; they override the
        ``ACTIONKIT_*`` config keys.
    """

    def __init__(self, app: Flask | None = None, **options: t.Any) -> None:
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"Unknown option(s) {sorted(unknown)!r}; valid: {list(_OPTIONS)!r}.")
        self.options = options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, **options: t.Any) -> ActionMiddleware:
        """Wrap ``app.wsgi_app`` and install the template globals; returns the middleware."""
        if "actionkit" in app.extensions:
            raise RuntimeError(f"ActionKit is already set up on {app!r}.")
        settings = {
            name: app.config[f"ACTIONKIT_{name.upper()}"]
            for name in _OPTIONS
            if f"ACTIONKIT_{name.upper()}" in app.config
        }
        settings.update(self.options)
        settings.update(options)
        if settings.get("secret_key") is None and app.secret_key:
            settings["secret_key"] = app.secret_key
        settings.setdefault("debug", app.debug)
        middleware = ActionMiddleware(app.wsgi_app, **settings)
        middleware.action_wrapper = functools.partial(_run_in_flask, app)
        middleware.error_page = functools.partial(_error_page, app)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions["actionkit"] = middleware
        install(app.jinja_env)
        return middleware


def get_middleware(app: Flask) -> ActionMiddleware:
    """The :class:`~actionkit.ActionMiddleware` that :meth:`ActionKit.init_app` installed."""
    try:
        return t.cast(ActionMiddleware, app.extensions["actionkit"])
    except KeyError:
        raise RuntimeError(f"ActionKit is not set up on {app!r}; call init_app(app).") from None


def _run_in_flask(app: Flask, environ: WSGIEnvironment, call: t.Callable[[], t.Any]) -> t.Any:
    """Run an action inside Flask's request context, as a view would run."""
    with app.request_context(environ):
        answer = app.preprocess_request()
        if answer is not None:
            _end_with(app.make_response(answer))
        try:
            result = call()
        except ActionSignal:
            _save_session(app)
            raise
        _save_session(app)
        return result


def _end_with(response: t.Any) -> t.NoReturn:
    """A ``before_request`` function answered: the action ends with that answer."""
    location = response.headers.get("Location")
    if 300 <= response.status_code < 400 and location:
        raise RedirectSignal(location, "push", 308 if response.status_code == 308 else 303)
    status = response.status_code if response.status_code >= 400 else 403
    raise HTTPSignal(
        status, {404: "not_found", 403: "forbidden", 401: "unauthorized"}.get(status, "http_error")
    )


def _save_session(app: Flask) -> None:
    interface = app.session_interface
    if interface.is_null_session(session):
        return
    response = app.response_class()
    interface.save_session(app, session, response)
    ctx = context.current()
    if ctx is not None:
        for header in response.headers.getlist("Set-Cookie"):
            ctx.add_set_cookie(header)


def _error_page(app: Flask, status: int, environ: WSGIEnvironment) -> Rendered | None:
    """The app's own page for ``status``, from its error handlers."""
    with app.request_context(environ):
        try:
            abort(status)
        except HTTPException as e:
            handled = app.handle_http_exception(e)
        response: t.Any = (
            handled if isinstance(handled, HTTPException) else app.make_response(handled)
        )
        return render_app(response, environ)
