"""What the page cache learns from a Flask page as it renders: whether it read the session after
its headers were decided, and whether it shows Flask-WTF's CSRF token (see
:mod:`actionkit.flask`)."""

from __future__ import annotations

import typing as t

from flask import Flask
from flask.globals import _cv_app, _cv_request

from .. import context


def watch_session(app: Flask, **extra: t.Any) -> None:
    """Let the page cache know when a page reads the session after Flask decided its headers
    (a streamed page: ``stream_template``, ``stream_with_context``): Flask then said no
    ``Vary: Cookie``, and the page is somebody's (``request_started``)."""
    ctx = context.current()
    flask_ctx = _cv_request.get(None)
    opened = None if flask_ctx is None else getattr(flask_ctx, "_session", None)
    if ctx is not None and opened is not None and not app.session_interface.is_null_session(opened):
        # (A null session, without a secret key, is everybody's: Flask never saves it.)
        ctx.hints.readers.append(lambda: bool(getattr(opened, "accessed", False)))


def settled(app: Flask, response: t.Any, **extra: t.Any) -> None:
    """A response that is not streamed is whole when Flask finishes it, its ``Vary`` decided:
    a later read of the session (a ``teardown_request`` function's) is not the page's
    (``request_finished``; see ``actionkit.flask``)."""
    ctx = context.current()
    if ctx is None:
        return
    if _wtf_token_made(app):
        # Flask-WTF's token expires (WTF_CSRF_TIME_LIMIT): a stored page would keep showing
        # it, and every form posted from it would be refused once it has (as Django's pages
        # with a CSRF token, never stored).
        ctx.hints.refusal = ctx.hints.refusal or "it shows a Flask-WTF CSRF token"
    if not getattr(response, "is_streamed", True):
        ctx.hints.readers.clear()


def _wtf_token_made(app: Flask) -> bool:
    """Whether the request made Flask-WTF's CSRF token (``csrf_token()``, ``form.hidden_tag()``
    keep it in ``g`` under ``WTF_CSRF_FIELD_NAME``)."""
    name = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    app_ctx = _cv_app.get(None)  # (read directly: the ``g`` proxy costs more than the check)
    return app_ctx is not None and isinstance(name, str) and name in vars(app_ctx.g)
