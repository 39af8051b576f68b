"""Running an action as a view of the page it was posted to: Flask's request context, the
``before_request`` functions, the action, ``after_request`` and ``teardown_request``, and the
app's error pages (see :mod:`actionkit.flask`).
"""

from __future__ import annotations

import functools
import json
import typing as t

from flask import Flask, abort, got_request_exception, request_finished, request_started
from flask.ctx import RequestContext
from flask.globals import _cv_app, _cv_request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException, default_exceptions
from werkzeug.sansio.response import Response as BaseResponse

from .. import context
from ..answers import as_json, described
from ..exceptions import ActionSignal, HTTPSignal, RedirectSignal
from ..navigation import Failure
from ..protocol import ENVIRON_ACTION_ID
from ..rendering import Rendered, render_app
from .lazy import action_context, full_context, heard, plain_flask, unmade
from .pages import settled, watch_session

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment
    from flask.wrappers import Response

    from ..params import ActionCall


def run_in_flask(app: Flask, environ: WSGIEnvironment, call: ActionCall) -> t.Any:
    """Run an action inside Flask's request context, as a view would run (see the module)."""
    ctx = action_context(app, environ, call)
    error: BaseException | None = None
    try:
        if heard(request_started, app, watch_session):
            request_started.send(app, _async_wrapper=app.ensure_sync)
        try:
            _check_scope(ctx)
            if unmade(ctx):  # nothing to run before it, no parameter taking the request
                result = _dispatch(app, call, preprocess=False)
            else:  # a parameter named ``request`` gets Flask's request
                result = _dispatch(app, functools.partial(call, request=ctx.request))
        except ActionSignal as signal:
            if isinstance(signal, HTTPSignal) and signal.page is None:
                # The app's error page, made in this context: another one would run the
                # teardown functions again.
                signal.page = _error_response(app, signal.status)
                _answered(app, ctx, signal.page, signal.status)
            else:
                _after_request(app, ctx, functools.partial(_stand_in, app, signal))
            raise
        except HTTPException as e:
            if e.code is None or e.code < 400:
                _after_request(app, ctx, functools.partial(app.response_class, status=e.code))
                raise
            # The app's error page for it, with the exception's own description:
            # abort(404, "No such post.") shows that message.
            page = _handled(app, e)
            _answered(app, ctx, page, e.code)
            raise HTTPSignal(e.code, page=page, message=described(e)) from None
        except Exception as e:
            # The app's error handler for it answers, as for a view (its own error, or none
            # for it, is the action's error): after_request functions see its response,
            # teardown functions no exception.
            handled = _handler_answer(app, e)
            if handled is None:
                raise
            _after_request(app, ctx, lambda: handled, always=True)
            _end_with(handled)
        _after_request(app, ctx, app.response_class)
        return _written(app, environ, result)
    except (ActionSignal, HTTPException):
        raise  # an answer, not an error: teardown functions see exc=None
    except BaseException as e:
        error = e
        if isinstance(e, Exception):
            got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=e)
            if heard(request_finished, app, settled) and not propagates(app):
                # as Flask's 500 answer
                request_finished.send(
                    app, _async_wrapper=app.ensure_sync, response=app.response_class(status=500)
                )
        raise
    finally:
        preserve = environ.get("werkzeug.debug.preserve_context")
        if preserve is not None:
            # Flask's test client in a ``with`` block keeps the request's contexts after it,
            # as Flask.wsgi_app gives them: the action's POST, not the page rendered after it.
            preserve(_cv_app.get())
            preserve(_cv_request.get())
        ctx.pop(error)


def json_default(app: Flask, value: t.Any) -> t.Any:
    """A result JSON cannot hold as the app's JSON provider writes it (``jsonify``'s dates,
    ``Decimal``, ``UUID``, dataclasses, ``lazy_gettext``): by its ``default``, or else (a
    provider of its own, over another JSON library) as its ``dumps`` writes the value."""
    default = getattr(app.json, "default", None)
    if default is not None:
        return default(value)
    return json.loads(app.json.dumps(value))


def _written(app: Flask, environ: WSGIEnvironment, result: t.Any) -> t.Any:
    """A script call's result as its answer will hold it, written while the request's context
    is there (a ``lazy_gettext`` string is translated in the request's locale); a form's
    result (for ``action_state()``), or one JSON holds as it is, unchanged."""
    if ENVIRON_ACTION_ID not in environ or isinstance(result, str | int | float | None):
        return result
    failure = result if isinstance(result, Failure) else None
    value = result.data if failure is not None else result
    try:
        json.dumps(value)
        return result
    except (TypeError, ValueError):
        pass
    try:
        default = functools.partial(as_json, functools.partial(json_default, app))
        value = json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError):
        return result  # its answer says what is wrong with it
    return value if failure is None else Failure(failure.status, value)


def propagates(app: Flask, client: bool = True, debug: bool = False) -> bool:
    """Whether an action's error is raised to the caller, as Flask raises a view's:
    ``PROPAGATE_EXCEPTIONS``, else ``TESTING``, or, for a form posted without JavaScript,
    ``debug`` (the middleware's, which follows ``app.debug``): Werkzeug's debugger shows it.
    A client's call is answered with the traceback instead, which the client script shows."""
    propagate = app.config.get("PROPAGATE_EXCEPTIONS")
    if propagate is not None:
        return bool(propagate)
    return app.testing or (debug and not client)


def _answered(
    app: Flask, flask_ctx: RequestContext, page: WSGIApplication | None, status: int
) -> None:
    """The app's error handler answered an HTTP error with ``page``: ``after_request``
    functions see it and its cookies join the answer, as for a view; a redirect it answered
    with (``errorhandler(401)`` sending to the login page) ends the action."""
    if not isinstance(page, BaseResponse):  # no handler: Werkzeug's own page
        _after_request(app, flask_ctx, functools.partial(app.response_class, status=status))
        return
    _after_request(app, flask_ctx, lambda: page, always=True)
    if 300 <= page.status_code < 400 and page.location:
        _end_with(page)


def _handler_answer(app: Flask, error: Exception) -> BaseResponse | None:
    """The answer of the app's error handler for ``error``'s class (``errorhandler(
    NoResultFound)``, ``errorhandler(Exception)``), a redirect or an error status; ``None``
    when no handler takes it (it is then an error of the action's, a ``500``).

    :raises Exception: the handler's own error.
    """
    stack = error.__traceback__
    try:
        handled = app.handle_user_exception(error)
    except Exception as again:
        if again is error:
            # Raised again by Flask, its traceback gained the frames of that raise before
            # those of the action's call: the one logged is the one it was raised with.
            error.__traceback__ = stack
            return None
        raise
    response = app.make_response(handled)
    if response.status_code < 300 or (response.status_code < 400 and not response.location):
        # An error handler that answers a page as if nothing failed: not an end the
        # action may have.
        app.logger.error("The error handler for %r answered %s", error, response.status)
        return None
    return response


def _check_scope(flask_ctx: RequestContext) -> None:
    """A scoped action (``under=``) runs only at a page Flask routes: where no route matches
    (``/admin`` when the route is ``/admin/``, which Flask answers with a redirect), no
    blueprint's guards would run before it."""
    ctx = context.current()
    action = None if ctx is None else ctx.action
    under = getattr(action, "under", None)
    if under is None:
        return
    request = flask_ctx.request
    rule = request.url_rule
    if request.routing_exception is not None or rule is None:
        raise HTTPSignal(404)
    # The route itself must be one of the pages below ``under`` (a blueprint's), not a route
    # elsewhere that also matches the path (a catch-all ``/<path:p>``, ``/<section>/<slug>``):
    # only then do the guards of the pages below ``under`` run before the action.
    route = request.script_root + rule.rule
    root = under.rstrip("/")
    if root and route != root and not route.startswith(root + "/"):
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


def _dispatch(app: Flask, call: t.Callable[[], t.Any], preprocess: bool = True) -> t.Any:
    """``before_request`` functions, then the action; a response from either ends it."""
    try:
        answer = app.preprocess_request() if preprocess else None
    except HTTPException as e:  # abort(redirect(...)) in a before_request function
        if e.response is None:
            raise
        _end_with(e.response, ran=False)
    if answer is not None:
        _end_with(app.make_response(answer), ran=False)
    try:
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


def _end_with(response: BaseResponse, ran: bool = True) -> t.NoReturn:
    """End the action with ``response``: its redirect, or its error status and page. A
    redirect is a ``303`` once the action ran (a ``308`` would post the form to the new URL,
    to run it again); a ``before_request`` function's ``308`` (the action has not run: the page
    moved) keeps its status, so the browser posts the form there. (A ``307`` is a ``303``: a
    login guard's, posted to the login page, would run the action there.)"""
    status = response.status_code
    location = response.headers.get("Location")
    if 300 <= status < 400 and location:
        ctx = context.current()
        if ctx is not None:  # the cookies set on it (redirect(...).set_cookie(...))
            for header in response.headers.getlist("Set-Cookie"):
                ctx.add_set_cookie(header)
        raise RedirectSignal(location, "push", 308 if status == 308 and not ran else 303)
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
    app: Flask,
    flask_ctx: RequestContext,
    stand_in: t.Callable[[], BaseResponse],
    always: bool = False,
) -> None:
    """Run ``after_request`` functions and save the session; their cookies join the answer.

    :param always: ``stand_in`` is a response of the app's own (an error handler's), whose
        cookies join the answer even when no function runs.
    """
    if not always and unmade(flask_ctx):
        return  # nothing read the request context: no session to save, nothing registered
    if _nothing_after(app, flask_ctx):
        if always or heard(request_finished, app, settled):
            response = stand_in()
            _keep_headers(response)
            request_finished.send(app, _async_wrapper=app.ensure_sync, response=response)
        return
    response = app.process_response(t.cast("Response", stand_in()))
    _keep_headers(response)
    request_finished.send(app, _async_wrapper=app.ensure_sync, response=response)


def _keep_headers(response: BaseResponse) -> None:
    """The ``Set-Cookie`` headers of ``response`` join the answer of the action, and so do the
    others ``after_request`` functions set (Flask-CORS's, a rate limiter's, security headers),
    but those about the stand-in's body and the connection (see _NOT_KEPT)."""
    ctx = context.current()
    if ctx is None:
        return
    for name, value in response.headers.items():
        lower = name.lower()
        if lower == "set-cookie":
            ctx.add_set_cookie(value)
        elif not lower.startswith("content-") and lower not in _NOT_KEPT:
            ctx.more_headers = ctx.more_headers or []
            ctx.more_headers.append((name, value))


# The stand-in's own (its Location, validators of its empty body, caching of the page it is
# not) and the connection's.
_NOT_KEPT = frozenset(
    ("location", "etag", "last-modified", "expires", "cache-control", "age")
    + ("connection", "keep-alive", "transfer-encoding", "upgrade")
)


def _nothing_after(app: Flask, ctx: RequestContext) -> bool:
    """Whether ``process_response`` would do nothing: Flask's own, no ``after_request``
    function for this request, and no session (no secret key), or an empty, unchanged session
    that Flask's cookie sessions would not save."""
    if ctx._after_request_functions or not plain_flask(app):
        return False
    funcs = app.after_request_funcs
    if funcs and any(funcs.get(name) for name in (None, *ctx.request.blueprints)):
        return False
    session = ctx._session  # (not the property, which marks it read: Vary: Cookie)
    if app.session_interface.is_null_session(session):
        return True  # no secret key: Flask saves nothing
    return (
        type(app.session_interface) is SecureCookieSessionInterface
        and isinstance(session, SecureCookieSession)
        and not session
        and not session.modified
        and not session.accessed
    )


def _error_response(app: Flask, status: int) -> WSGIApplication | None:
    """The answer of the app's error handler for ``status`` (its page, or its redirect);
    ``None`` for a status Werkzeug has no exception for (the middleware's own page)."""
    error = default_exceptions.get(status)
    return None if error is None else _handled(app, error())


def error_page(app: Flask, status: int, environ: WSGIEnvironment) -> Rendered | None:
    """The page of the app's error handler for ``status``, in a request context of its own."""
    if status not in default_exceptions:
        return None  # the middleware's own page
    ctx = full_context(app, environ)
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
    except Exception:
        # A failing error handler must not turn a 404 into a crash of the whole answer.
        app.logger.exception("The error handler for status %s raised", status)
        return None
    finally:
        ctx.pop(None)
