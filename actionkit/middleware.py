"""The WSGI middleware that runs actions.

.. code-block:: python

    from actionkit import ActionMiddleware

    app.wsgi_app = ActionMiddleware(app.wsgi_app, secret_key=os.environ["SECRET_KEY"])

A ``POST`` that names a registered action (an ``Action-Id`` header, or a ``$ACTION_ID_<id>`` form
field) runs it and is answered by the middleware: with a ``303`` or the page rendered again when
the browser has no JavaScript, or with JSON holding the action's result *and* the updated page for
the client script. ``GET`` and ``HEAD`` go through the page cache. Every other request reaches the
wrapped application exactly as it came: headers, body, streaming and ``close()`` untouched.

The request flows one way: :mod:`~actionkit.decoding` turns it into a call (or a refusal), the
action runs here with the request context (:mod:`actionkit.context`) current, the page after it
is rendered in-process (:mod:`actionkit.rendering`, through the page cache), and
:mod:`~actionkit.answers` builds the answer.
"""

from __future__ import annotations

import functools
import logging
import secrets
import traceback
import typing as t

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import ClosingIterator

from . import answers, context, decoding, security
from .answers import Answer
from .assets import assets
from .body import discard_body
from .cache import PageCache
from .cache.api import made, track
from .context import RequestContext
from .exceptions import HTTPSignal, InvalidArguments, RedirectSignal, RequestRefused
from .navigation import ActionState, Failure, fail
from .params import ActionCall
from .protocol import ENVIRON_ACTION_ID, STATIC_PREFIX, STATIC_ROOT_KEY, error_code
from .registry import Registry, default_registry
from .rendering import Rendered, page_environ, render_app, resolved

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .stores import Store

logger = logging.getLogger("actionkit")

#: Renders the page for an error status without JavaScript (the Flask extension plugs in Flask's
#: error handlers); ``None`` from it gives the middleware's own short page.
ErrorPage = t.Callable[[int, "WSGIEnvironment"], "Rendered | None"]
#: Calls an action: ``wrapper(environ, call)`` must return the result of ``call()``, or of
#: ``call(request=...)`` to give parameters named ``request`` the framework's request (the
#: Flask extension runs actions inside Flask's request context with it).
ActionWrapper = t.Callable[["WSGIEnvironment", ActionCall], t.Any]


#: The largest action request body by default, in bytes (1 MiB).
BODY_LIMIT = 1_048_576


class ActionMiddleware:
    """Runs the actions of ``registry`` for the WSGI application ``app``.

    :param app: the wrapped WSGI application (``flask_app.wsgi_app``, a Django handler, ...).
    :param registry: where to find actions; the default registry of :func:`~actionkit.action`.
    :param cache: the page cache's store (:mod:`actionkit.stores`), a ready
        :class:`~actionkit.cache.PageCache`, ``None`` for the process-wide default store (so
        ``revalidate_*`` from a background job in this process reaches it), or ``False`` for no
        page cache.
    :param secret_key: encrypts bound arguments; else ``ACTIONKIT_SECRET_KEY``. Every worker of a
        deployment must share it.
    :param allowed_origins: other origins (``https://admin.example.com``) or host patterns
        (``*.example.com``) whose pages may run actions, e.g. behind a proxy that rewrites
        ``Host``.
    :param trust_forwarded: take the host and scheme from ``X-Forwarded-Host`` and
        ``-Proto`` (the cross-site check, ``Secure`` cookies); only behind a proxy that sets them.
    :param body_limit: the largest action request body, in bytes; larger ones get ``413``.
    :param debug: show tracebacks in the answer of an action that raised. Never in production.
    :param error_page: renders the application's page for an error status, for browsers without
        JavaScript (a framework adapter gives its error handlers); ``None``: a short page.
    :param action_wrapper: runs each action: ``action_wrapper(environ, call)`` returns
        ``call()``'s result, so that a framework can run actions inside its request handling;
        ``call(request=...)`` hands the framework's request to a ``request`` parameter (else
        it gets a :class:`werkzeug.wrappers.Request`).
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        registry: Registry | None = None,
        cache: Store | PageCache | t.Literal[False] | None = None,
        secret_key: security.SecretKey | None = None,
        allowed_origins: t.Iterable[str] = (),
        trust_forwarded: bool = False,
        body_limit: int = BODY_LIMIT,
        debug: bool = False,
        error_page: ErrorPage | None = None,
        action_wrapper: ActionWrapper | None = None,
    ) -> None:
        if not isinstance(body_limit, int) or body_limit < 1:
            raise ValueError(f"body_limit must be a positive number of bytes, not {body_limit!r}.")
        self.app = app
        self.registry = default_registry if registry is None else registry
        if cache is False:
            self.cache: PageCache | None = None
        elif isinstance(cache, PageCache):
            self.cache = cache
        else:
            self.cache = PageCache(cache)
        if self.cache is not None:
            track(self.cache)
        elif not made:
            made.append(True)
        # Bound arguments made outside a request (at import, in a CLI) use this key too.
        security.set_process_key(secret_key)
        self.secret_key = security.resolve_key(secret_key)
        self.allowed_origins = security.origins(allowed_origins)
        self.trust_forwarded = trust_forwarded
        self.body_limit = body_limit
        self.debug = debug
        #: Set by a framework's extension when ``debug`` was not given: says it when asked.
        self._debug_source: t.Callable[[], bool] | None = None
        # Set by a framework's extension: leave each request's context in its environ
        # (context.ENVIRON_KEY), where the framework finds it after call_app has returned;
        # whether an action's error is raised to the caller (argument: a client's call or not);
        # how the framework writes what JSON cannot (a result's dates).
        self._context_in_environ = False
        self._propagate: t.Callable[[bool], bool] = lambda client: False
        self._json_default: t.Callable[[t.Any], t.Any] | None = None
        self.error_page = error_page
        self.action_wrapper = action_wrapper
        self.assets = assets()
        # Bound once: every GET goes through these two.
        self._serve = self.cache.serve if self.cache is not None else None
        self._call_app = self.call_app

    @property
    def debug(self) -> bool:
        """Whether the answer of an action that raised shows its traceback: the ``debug`` given,
        or, when a framework's extension set it up without one, the framework's own setting at
        the time (Flask's ``app.debug``, which ``app.run(debug=True)`` sets late)."""
        return self._debug if self._debug_source is None else self._debug_source()

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug = value
        self._debug_source = None

    def __repr__(self) -> str:
        cache = "off" if self.cache is None else repr(self.cache.store)
        return f"<ActionMiddleware {self.app!r} actions={len(self.registry)} cache={cache}>"

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "POST":
            return self._post(environ, start_response)
        if method == "GET" or method == "HEAD":
            if environ.get("PATH_INFO", "").startswith(STATIC_PREFIX):
                return self.assets(environ, start_response)
            if self._serve is not None:
                return self._serve(self._call_app, environ, start_response)
        return self.call_app(environ, start_response)

    def call_app(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        state: ActionState | None = None,
        parent: RequestContext | None = None,
    ) -> t.Iterable[bytes]:
        """Call the wrapped app with a request context current; run ``after()`` callbacks from
        ``close()`` (or hand them to ``parent`` when this render is part of an action's answer).
        """
        ctx = RequestContext(
            environ, self.cache, self.secret_key, self.trust_forwarded, state=state
        )
        # Where /_actionkit/ is served, for a page under a dispatcher inside (jinja._static_url).
        environ.setdefault(STATIC_ROOT_KEY, environ.get("SCRIPT_NAME", ""))
        if parent is not None:
            ctx.pending = parent.pending  # the action's revalidations (see PageCache.render)
        if self._context_in_environ:
            environ[context.ENVIRON_KEY] = ctx
        token = context.push(ctx)
        try:
            iterable = self.app(environ, start_response)
        finally:
            context.pop(token)
        if ctx.after_callbacks:
            if parent is not None:
                parent.after_callbacks.extend(ctx.after_callbacks)
            else:
                after = functools.partial(answers.run_after, ctx.after_callbacks)
                return ClosingIterator(iterable, after)
        return iterable

    def _post(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        try:
            call = decoding.decode(environ, self)
        except RequestRefused as e:
            discard_body(environ)  # so that a client still sending its body reads the answer
            client = ENVIRON_ACTION_ID in environ
            return answers.send(answers.refused(e, client), start_response)
        if call is None:
            return self.call_app(environ, start_response)
        ctx = RequestContext(environ, self.cache, self.secret_key, self.trust_forwarded, True)
        ctx.action, ctx.pending = call.action, None if self.cache is None else []
        return answers.send(self._run(environ, call, ctx), start_response, ctx)

    # -- running an action, then answering -------------------------------------------------------

    def _run(self, environ: WSGIEnvironment, call: decoding.Call, ctx: RequestContext) -> Answer:
        try:
            run = _prepare(environ, call)
        except RequestRefused as e:
            decoding.close_files(call.form)
            return answers.refused(e, call.client)
        except Exception:  # a signature that cannot be compiled (logged with its traceback)
            decoding.close_files(call.form)
            return self._crash(call, ctx)
        token = context.push(ctx)
        result: t.Any = None
        redirect: RedirectSignal | None = None
        # The action's revalidations wait in ctx.pending until it is over; every way out but
        # the render that stores them with its page (_answer_client) sends them first.
        try:
            result = run() if self.action_wrapper is None else self.action_wrapper(environ, run)
        except RedirectSignal as signal:
            redirect = signal
        except HTTPSignal as signal:
            self._flush(ctx)
            return self._http_error(environ, call, signal.status, signal)
        except HTTPException as e:
            self._flush(ctx)
            if e.code is not None and e.code >= 400:
                raised = HTTPSignal(e.code, None, answers.described(e))
                return self._http_error(environ, call, e.code, raised)
            return self._crash(call, ctx)
        except Exception:
            self._flush(ctx)  # it may have written before it failed
            if self._propagate(call.client):
                raise
            return self._crash(call, ctx)
        except BaseException:
            self._flush(ctx)
            raise
        finally:
            ctx.in_action = False
            context.pop(token)
            decoding.close_files(call.form)
        if ctx.failure is not None and result is not ctx.failure:
            logger.error(
                "Action %s (%s) called fail() but went on and returned %r: return fail(...) to"
                " end the action, or it goes on as if the submission were valid.",
                call.action.name,
                call.action.id,
                result,
            )
        if call.client:
            return self._answer_client(environ, call, ctx, result, redirect)
        self._flush(ctx)
        if redirect is not None:
            return answers.redirected(redirect)
        rendered = self._render(environ, call.page, ctx, _state(call, result), use_cache=False)
        return answers.page(rendered, result)

    def _answer_client(
        self,
        environ: WSGIEnvironment,
        call: decoding.Call,
        ctx: RequestContext,
        result: t.Any,
        redirect: RedirectSignal | None,
    ) -> Answer:
        if redirect is not None:  # ("done", "#top": near the URL posted to, as a browser reads it)
            redirect.url = resolved(redirect.url, environ)
        url = call.page if redirect is None else redirect.url
        rendered = None
        changed = ctx.revalidated or ctx.set_cookies or ctx.page_changed
        if redirect is not None or changed or call.form is not None:
            state = _state(call, result) if call.form is not None and redirect is None else None
            # A page showing someone's submission is never read from nor stored in the cache.
            use_cache = state is None and not ctx.page_uncached
            rendered = self._render(environ, url, ctx, state, use_cache=use_cache)
        self._flush(ctx)  # when nothing was rendered, or the page is elsewhere
        try:
            form = call.form is not None
            return answers.client(result, redirect, url, rendered, ctx, self._json_default, form)
        except (TypeError, ValueError):
            if self._propagate(True):
                raise
            value = result.data if isinstance(result, Failure) else result
            logger.error(
                "Action %s (%s) returned %r, which is not a JSON value.",
                call.action.name,
                call.action.id,
                value,
            )
            return self._crash(call, ctx, logged=True)

    def _http_error(
        self,
        environ: WSGIEnvironment,
        call: decoding.Call,
        status: int,
        signal: HTTPSignal | None,
    ) -> Answer:
        rendered = None
        if not call.client:
            if signal is not None and signal.page is not None:
                rendered = render_app(signal.page, environ)
            elif self.error_page is not None:
                rendered = self.error_page(status, environ)
        message = None if signal is None else signal.message
        return answers.http_error(status, error_code(status), call.client, rendered, message)

    def _crash(self, call: decoding.Call, ctx: RequestContext, logged: bool = False) -> Answer:
        digest = secrets.token_hex(6)
        if not logged:
            logger.error(
                "Action %s (%s) raised an exception [digest %s]",
                call.action.name,
                call.action.id,
                digest,
                exc_info=True,
            )
        else:
            logger.error("[digest %s] for the error above", digest)
        detail = traceback.format_exc() if self.debug else None
        # Nothing the action asked for is applied when it fails.
        ctx.set_cookies.clear()
        ctx.after_callbacks.clear()
        return answers.crashed(digest, call.client, detail)

    def _flush(self, ctx: RequestContext) -> None:
        """Send the revalidations the action asked for and no render has sent."""
        if ctx.pending and self.cache is not None:
            self.cache.flush(ctx.pending)

    def _render(
        self,
        environ: WSGIEnvironment,
        url: str,
        ctx: RequestContext,
        state: ActionState | None,
        use_cache: bool,
    ) -> Rendered | None:
        """Render ``url`` as a ``GET`` with the action's cookies; ``None`` if it is elsewhere."""
        page = page_environ(environ, url, ctx.cookies_at, self.trust_forwarded)
        if page is None:
            return None
        app = functools.partial(self.call_app, state=state, parent=ctx)
        if self.cache is not None:
            rendered = self.cache.render(app, page, use_cache=use_cache, pending=ctx.pending)
        else:
            rendered = render_app(app, page)
        # The page's cookies (a session whose flash it showed) are the last word: one
        # Set-Cookie per name, the page's replacing the action's.
        kept = []
        for name, value in rendered.headers:
            if name.lower() == "set-cookie":
                ctx.add_set_cookie(value)
            else:
                kept.append((name, value))
        rendered.headers = kept
        return rendered


def _prepare(environ: WSGIEnvironment, call: decoding.Call) -> ActionCall:
    """The action's call with the request's arguments (see :mod:`actionkit.params`); when they
    do not validate, a call that runs nothing and answers ``fail(422, {"errors": ...})``, so
    that a framework's guards (a login check) still come first.

    :raises RequestRefused: arguments of the wrong shape, a missing :data:`~actionkit.Bound` token.
    """
    parameters = call.action.parameters
    try:
        return parameters.prepare(call.bound, call.form, call.json_args, environ)
    except InvalidArguments as e:
        failure = fail(422, {"errors": e.errors})
        return lambda *, request=None: failure


def _state(call: decoding.Call, result: t.Any) -> ActionState:
    failed = isinstance(result, Failure)
    return ActionState(
        action=call.action,
        result=result.data if failed else result,
        form=call.form if call.form is not None else MultiDict(),
        failed=failed,
        status=result.status if failed else 200,
    )
