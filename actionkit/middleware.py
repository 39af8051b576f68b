"""The WSGI middleware that runs actions.

.. code-block:: python

    from actionkit import ActionMiddleware

    app.wsgi_app = ActionMiddleware(app.wsgi_app, secret_key=os.environ["SECRET_KEY"])

A ``POST`` that names a registered action (an ``Action-Id`` header, or a ``$ACTION_ID_<id>`` form
field) runs it and is answered by the middleware: with a ``303`` or the page rendered again when
the browser has no JavaScript, or with JSON holding the action's result *and* the updated page for
the client script. ``GET`` and ``HEAD`` go through the page cache. Every other request reaches the
wrapped application exactly as it came: headers, body, streaming and ``close()`` untouched.

The page shown after an action is rendered by calling the wrapped application in-process with a
``GET`` of the same URL (or of the redirect target), never by an HTTP request to a host the client
named. The request context (:mod:`actionkit.context`) is current while actions and pages run.
"""

from __future__ import annotations

import functools
import html
import io
import json
import logging
import re
import secrets
import traceback
import typing as t
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

import werkzeug.urls  # noqa: F401  registers the "werkzeug.url_quote" codec error handler
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.formparser import parse_form_data
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import ClosingIterator, get_input_stream

from . import context, security
from .assets import assets
from .cache import PageCache, Rendered, render_app
from .context import ActionState, Failure, HTTPSignal, RedirectSignal, RequestContext
from .protocol import (
    ACTION_FIELD_PREFIX,
    ENVIRON_ACTION_BOUND,
    ENVIRON_ACTION_ID,
    ENVIRON_ACTION_PAGE,
    ERROR_STATUS,
    RESERVED_FIELD_PREFIX,
    STATIC_PREFIX,
)
from .registry import Action, Registry, default_registry

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .stores import Store

logger = logging.getLogger("actionkit")

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# An action field at a field-name position, in either form encoding. Only a body that matches is
# parsed; any other form POST goes to the application without being decoded.
_FIELD_PATTERNS = {
    "application/x-www-form-urlencoded": re.compile(rb"(?:^|&)(?:%24|\$)ACTION_ID_"),
    "multipart/form-data": re.compile(rb'name="?\$ACTION_ID_'),
}
_HTTP_CODES = {404: "not_found", 403: "forbidden", 401: "unauthorized"}

#: Renders the page for an error status (the Flask extension plugs in Flask's error handlers).
ErrorPage = t.Callable[[int, "WSGIEnvironment"], "Rendered | None"]
ActionWrapper = t.Callable[["WSGIEnvironment", t.Callable[[], t.Any]], t.Any]


class _ActionError(Exception):
    """An action request that is refused before its action runs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message


class _Call(t.NamedTuple):
    """A decoded action request."""

    action: Action
    args: list[t.Any]
    form: MultiDict[str, t.Any] | None  # None for a JSON call
    page: str  # the path and query of the page to render after the action
    client: bool  # sent by the client script (an ``Action-Id`` header)


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
    :param trust_forwarded: take the host from ``X-Forwarded-Host`` for the cross-site check;
        only behind a proxy that sets it.
    :param body_limit: the largest action request body, in bytes; larger ones get ``413``.
    :param debug: show tracebacks in the answer of an action that raised. Never in production.
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
        body_limit: int = 1_048_576,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.registry = default_registry if registry is None else registry
        if cache is False:
            self.cache: PageCache | None = None
        elif isinstance(cache, PageCache):
            self.cache = cache
        else:
            self.cache = PageCache(cache)
        # Bound arguments made outside a request (at import, in a CLI) use this key too.
        security.set_process_key(secret_key)
        self.secret_key = security.resolve_key(secret_key)
        self.allowed_origins = tuple(allowed_origins)
        self.trust_forwarded = trust_forwarded
        if not isinstance(body_limit, int) or body_limit < 1:
            raise ValueError(f"body_limit must be a positive number of bytes, not {body_limit!r}.")
        self.body_limit = body_limit
        self.debug = debug
        self.assets = assets()
        # Bound once: every GET goes through these two.
        self._serve = self.cache.serve if self.cache is not None else None
        self._call_app = self.call_app
        #: Renders the page of an error status; ``None`` gives a short page of our own.
        self.error_page: ErrorPage | None = None
        #: Calls an action: ``wrapper(environ, call)`` must return ``call()``'s result. The
        #: Flask extension runs actions inside Flask's request context with it.
        self.action_wrapper: ActionWrapper | None = None

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

    # -- the wrapped application -----------------------------------------------------------

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
        ctx = RequestContext(environ, cache=self.cache, secret_key=self.secret_key, state=state)
        token = context.push(ctx)
        try:
            iterable = self.app(environ, start_response)
        finally:
            context.pop(token)
        if ctx.after_callbacks:
            if parent is not None:
                parent.after_callbacks.extend(ctx.after_callbacks)
            else:
                return ClosingIterator(iterable, functools.partial(_run_after, ctx.after_callbacks))
        return iterable

    # -- detecting an action -----------------------------------------------------------------

    def _post(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        client = ENVIRON_ACTION_ID in environ
        mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if not client and mimetype not in _FORM_TYPES:
            return self.call_app(environ, start_response)
        try:
            if client:
                call = self._decode_client(environ, mimetype)
            else:
                decoded = self._decode_form(environ, mimetype)
                if decoded is None:
                    return self.call_app(environ, start_response)
                call = decoded
        except _ActionError as e:
            return self._error(environ, start_response, e.code, e.message, client)
        return self._run(environ, start_response, call)

    def _check_origin(self, environ: WSGIEnvironment) -> None:
        if not security.is_same_origin(environ, self.allowed_origins, self.trust_forwarded):
            raise _ActionError(
                "cross_origin",
                "This action request comes from another site; add its origin to"
                " allowed_origins if it is yours.",
            )

    def _lookup(self, action_id: str) -> Action:
        found = self.registry.get(action_id)
        if found is None:
            raise _ActionError(
                "unknown_action", "No such action; the page may be older than the server."
            )
        return found

    def _read_body(self, environ: WSGIEnvironment) -> tuple[bytes, bool, t.Any]:
        """Read at most ``body_limit + 1`` bytes: (bytes read, whether that was all, stream)."""
        length = environ.get("CONTENT_LENGTH", "")
        if (
            length.isdigit()
            and int(length) <= self.body_limit
            and not environ.get("wsgi.input_terminated")
        ):
            # The usual form: its whole length, straight from the server's stream.
            want = int(length)
            raw = environ["wsgi.input"]
            body = raw.read(want) if want else b""
            while len(body) < want:  # a stream that answers with what has arrived so far
                more = raw.read(want - len(body))
                if not more:
                    raise _truncated()
                body += more
            return body, True, raw
        stream = get_input_stream(environ, max_content_length=None)
        limit = self.body_limit + 1
        chunks = []
        size = 0
        while size < limit:
            try:
                chunk = stream.read(min(65536, limit - size))
            except ClientDisconnected:
                raise _truncated() from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), size <= self.body_limit, stream

    def _too_large(self) -> _ActionError:
        return _ActionError(
            "body_too_large",
            f"The action request is larger than the limit of {self.body_limit} bytes.",
        )

    def _decode_client(self, environ: WSGIEnvironment, mimetype: str) -> _Call:
        """An ``Action-Id`` request: a JSON call, or a form submitted by the client script."""
        self._check_origin(environ)
        action = self._lookup(environ[ENVIRON_ACTION_ID].strip())
        page = self._page(environ)
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > self.body_limit:
            raise self._too_large()
        body, complete, _ = self._read_body(environ)
        if not complete:
            raise self._too_large()
        _rewind(environ, body)
        token = environ.get(ENVIRON_ACTION_BOUND)
        if mimetype in _FORM_TYPES:
            fields, form = _parse_form(environ, body, mimetype, self.body_limit)
            if token is None:
                token = next((str(v) for k, v in reversed(fields) if k == action.field_name), "")
            args: list[t.Any] = [form]
            form_or_none: MultiDict[str, t.Any] | None = form
        elif mimetype == "application/json" or (not body.strip() and not mimetype):
            args = _parse_json_args(body)
            form_or_none = None
        else:
            raise _ActionError(
                "bad_request",
                f"Unsupported content type {mimetype!r} for an action call; send"
                " application/json, application/x-www-form-urlencoded or multipart/form-data.",
            )
        bound = self._unseal(action, token or "")
        return _Call(action, [*bound, *args], form_or_none, page, True)

    def _decode_form(self, environ: WSGIEnvironment, mimetype: str) -> _Call | None:
        """A form posted by a browser without the script; ``None`` when it names no action.

        The body is read (at most ``body_limit + 1`` bytes) and, when it is not an action,
        handed back to the application as an equivalent stream.
        """
        body, complete, stream = self._read_body(environ)
        if not _FIELD_PATTERNS[mimetype].search(body):
            _restore_body(environ, body, complete, stream)
            return None
        self._check_origin(environ)
        if not complete:
            raise self._too_large()
        _rewind(environ, body)
        fields, form = _parse_form(environ, body, mimetype, self.body_limit)
        named = [(k, v) for k, v in fields if k.startswith(ACTION_FIELD_PREFIX)]
        if not named:  # the pattern matched inside a value, not a field name
            _restore_body(environ, body, complete, stream)
            return None
        field, token = named[-1]  # the clicked button's name comes after the hidden field
        action = self._lookup(field[len(ACTION_FIELD_PREFIX) :])
        bound = self._unseal(action, token)
        page = _request_page(environ)
        return _Call(action, [*bound, form], form, page, False)

    def _unseal(self, action: Action, token: str) -> list[t.Any]:
        try:
            return security.decrypt_args(action.id, token, security.resolve_key(self.secret_key))
        except security.BadToken as e:
            raise _ActionError("bad_request", str(e)) from None
        except security.SecretKeyMissing as e:
            logger.error("%s", e)
            raise _ActionError("bad_request", "Bound arguments cannot be read.") from None

    def _page(self, environ: WSGIEnvironment) -> str:
        """The page to render into a client answer: ``Action-Page``, else the request's URL."""
        page: str | None = environ.get(ENVIRON_ACTION_PAGE)
        if page is None:
            return _request_page(environ)
        if _local_path(page) is None:
            raise _ActionError(
                "bad_request",
                f"Action-Page must be a path on this site such as '/posts?page=2', not {page!r}.",
            )
        return page

    # -- running it --------------------------------------------------------------------------

    def _run(
        self, environ: WSGIEnvironment, start_response: StartResponse, call: _Call
    ) -> t.Iterable[bytes]:
        ctx = RequestContext(environ, cache=self.cache, secret_key=self.secret_key, in_action=True)
        token = context.push(ctx)
        result: t.Any = None
        redirect: RedirectSignal | None = None
        try:
            if self.action_wrapper is None:
                result = call.action.fn(*call.args)
            else:
                result = self.action_wrapper(environ, functools.partial(call.action.fn, *call.args))
        except RedirectSignal as signal:
            redirect = signal
        except HTTPSignal as signal:
            return self._answer_status(environ, start_response, ctx, call, signal.status)
        except HTTPException as e:
            if e.code is not None and e.code >= 400:
                return self._answer_status(environ, start_response, ctx, call, e.code)
            return self._crash(environ, start_response, call, ctx)
        except Exception:
            return self._crash(environ, start_response, call, ctx)
        finally:
            ctx.in_action = False
            context.pop(token)
            if call.form is not None:
                for _, value in call.form.items(multi=True):
                    if isinstance(value, FileStorage):
                        value.close()
        failed = isinstance(result, Failure)
        if call.client:
            return self._answer_client(environ, start_response, ctx, call, result, redirect)
        if redirect is not None:
            headers = [("Location", redirect.url), ("Content-Type", "text/html; charset=utf-8")]
            body = _html_page(redirect.status, f"Redirecting to {redirect.url}.")
            return self._respond(start_response, ctx, redirect.status, headers, body)
        state = _state(call, result)
        rendered = self._render(environ, call.page, ctx, state, use_cache=False)
        if rendered is None:  # the page is not ours to render: show the outcome plainly
            status = result.status if failed else 200
            rendered = Rendered(f"{status} {HTTP_STATUS_CODES[status]}", [], b"")
        status = rendered.status_code
        if failed and status == 200:
            status = result.status
        headers = [
            (k, v)
            for k, v in rendered.headers
            if k.lower() not in ("content-length", "cache-control", "etag", "last-modified")
        ]
        headers.append(("Cache-Control", "no-store"))
        return self._respond(start_response, ctx, status, headers, rendered.body)

    def _answer_client(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        ctx: RequestContext,
        call: _Call,
        result: t.Any,
        redirect: RedirectSignal | None,
    ) -> t.Iterable[bytes]:
        failed = isinstance(result, Failure)
        value = result.data if failed else result
        url = call.page
        redirect_json = None
        if redirect is not None:
            redirect_json = {"url": redirect.url, "type": redirect.type}
            url = redirect.url
        html_text = None
        page_cookies: list[tuple[str, str]] = []
        if redirect is not None or ctx.revalidated or ctx.set_cookies or call.form is not None:
            state = _state(call, result) if call.form is not None and redirect is None else None
            # A page showing someone's submission is never read from nor stored in the cache.
            rendered = self._render(environ, url, ctx, state, use_cache=state is None)
            if rendered is not None and 200 <= rendered.status_code < 300:
                html_text = rendered.body.decode("utf-8", "replace")
                # Cookies the page itself sets (a session refreshed) reach the browser too.
                page_cookies = [(k, v) for k, v in rendered.headers if k.lower() == "set-cookie"]
        answer = {
            "result": value,
            "failed": failed,
            "redirect": redirect_json,
            "html": html_text,
            "url": url,
            "revalidated": {"paths": ctx.revalidated_paths, "tags": ctx.revalidated_tags},
        }
        try:
            body = json.dumps(answer, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError):
            logger.error(
                "Action %s (%s) returned %r, which is not a JSON value.",
                call.action.name,
                call.action.id,
                value,
            )
            return self._crash(environ, start_response, call, ctx, logged=True)
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        headers += page_cookies
        status = result.status if failed else 200
        return self._respond(start_response, ctx, status, headers, body)

    def _answer_status(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        ctx: RequestContext,
        call: _Call,
        status: int,
    ) -> t.Iterable[bytes]:
        """``not_found()``, ``forbidden()``, ``unauthorized()`` (or an ``HTTPException``)."""
        code = _HTTP_CODES.get(status, "http_error")
        reason = HTTP_STATUS_CODES.get(status, "Error")
        if call.client:
            body = _error_json(code, reason)
            headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
            return self._respond(start_response, ctx, status, headers, body)
        rendered = self.error_page(status, environ) if self.error_page is not None else None
        if rendered is not None:
            headers = [(k, v) for k, v in rendered.headers if k.lower() != "content-length"]
            return self._respond(start_response, ctx, status, headers, rendered.body)
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        return self._respond(start_response, ctx, status, headers, _html_page(status, reason))

    def _crash(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        call: _Call,
        ctx: RequestContext,
        logged: bool = False,
    ) -> t.Iterable[bytes]:
        """Answer 500 for an action that raised: a digest to find the logged traceback by."""
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
        message = f"The action failed. Reference: {digest}."
        if call.client:
            error: dict[str, t.Any] = {"code": "action_failed", "digest": digest}
            if detail:
                error["traceback"] = detail
            body = json.dumps({"error": error}).encode()
            headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        else:
            body = _html_page(500, message, detail)
            headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        return self._respond(start_response, ctx, 500, headers, body)

    def _error(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        code: str,
        message: str,
        client: bool,
    ) -> t.Iterable[bytes]:
        status = ERROR_STATUS[code]
        if client:
            body = _error_json(code, message)
            headers = [("Content-Type", "application/json")]
        else:
            body = _html_page(status, message)
            headers = [("Content-Type", "text/html; charset=utf-8")]
        headers += [("Cache-Control", "no-store"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {HTTP_STATUS_CODES[status]}", headers)
        return [body]

    def _respond(
        self,
        start_response: StartResponse,
        ctx: RequestContext,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> t.Iterable[bytes]:
        headers = [*headers, *(("Set-Cookie", v) for v in ctx.set_cookies.values())]
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", headers)
        if ctx.after_callbacks:
            return ClosingIterator([body], functools.partial(_run_after, ctx.after_callbacks))
        return [body]

    # -- the page after an action ------------------------------------------------------------

    def _render(
        self,
        environ: WSGIEnvironment,
        url: str,
        ctx: RequestContext,
        state: ActionState | None,
        use_cache: bool,
    ) -> Rendered | None:
        """Render ``url`` as a ``GET`` with the action's cookies; ``None`` if it is elsewhere."""
        path = _local_path(url, environ, self.trust_forwarded)
        if path is None:
            return None
        script_name = environ.get("SCRIPT_NAME", "")
        path_info, _, query = path.partition("?")
        path_info = unquote_to_bytes(path_info).decode("latin-1")
        if script_name:
            if path_info != script_name and not path_info.startswith(script_name + "/"):
                return None
            path_info = path_info[len(script_name) :]
        page_environ = {
            k: v
            for k, v in environ.items()
            if not k.startswith("HTTP_ACTION_") and k not in ("CONTENT_TYPE", "CONTENT_LENGTH")
        }
        page_environ.update(
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": path_info,
                "QUERY_STRING": query,
                "wsgi.input": io.BytesIO(),
                "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8",
                "actionkit.action_state": state,
            }
        )
        cookie_header = _cookie_header(ctx.cookie_values)
        if cookie_header:
            page_environ["HTTP_COOKIE"] = cookie_header
        else:
            page_environ.pop("HTTP_COOKIE", None)
        app = functools.partial(self.call_app, state=state, parent=ctx)
        if self.cache is not None:
            return self.cache.render(app, page_environ, use_cache=use_cache)
        return render_app(app, page_environ)


# -- helpers --------------------------------------------------------------------------------


def _state(call: _Call, result: t.Any) -> ActionState:
    failed = isinstance(result, Failure)
    return ActionState(
        action=call.action,
        result=result.data if failed else result,
        form=call.form if call.form is not None else MultiDict(),
        failed=failed,
        status=result.status if failed else 200,
    )


def _run_after(callbacks: list[t.Callable[[], object]]) -> None:
    for fn in callbacks:
        try:
            fn()
        except Exception:
            logger.exception("after() callback %r raised", fn)


def _parse_form(
    environ: WSGIEnvironment, body: bytes, mimetype: str, limit: int
) -> tuple[list[tuple[str, t.Any]], MultiDict[str, t.Any]]:
    """Decode a form body: every field in order, and the action's form without ``$ACTION_*``."""
    if mimetype == "application/x-www-form-urlencoded":
        # What Werkzeug's form parser does for this type, without building one per request.
        try:
            items: list[tuple[str, t.Any]] = parse_qsl(
                body.decode(), keep_blank_values=True, errors="werkzeug.url_quote"
            )
        except ValueError as e:
            raise _ActionError("bad_request", f"The form body could not be decoded: {e}") from None
        reserved = RESERVED_FIELD_PREFIX
        return items, MultiDict([(k, v) for k, v in items if not k.startswith(reserved)])
    form_environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": environ.get("CONTENT_TYPE", mimetype),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    try:
        _, fields, files = parse_form_data(
            form_environ, silent=False, max_content_length=limit, max_form_parts=10_000
        )
    except (ValueError, HTTPException) as e:
        raise _ActionError("bad_request", f"The form body could not be decoded: {e}") from None
    if mimetype == "multipart/form-data" and not fields and not files and body.strip():
        raise _ActionError("bad_request", "The multipart body has no parts (wrong boundary?).")
    items = list(fields.items(multi=True))
    form: MultiDict[str, t.Any] = MultiDict(
        [(k, v) for k, v in items if not k.startswith(RESERVED_FIELD_PREFIX)]
    )
    for key, file in files.items(multi=True):
        form.add(key, file)
    return items, form


def _parse_json_args(body: bytes) -> list[t.Any]:
    if not body.strip():
        return []
    try:
        args = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise _ActionError("bad_request", f"The JSON body could not be decoded: {e}") from None
    if not isinstance(args, list):
        raise _ActionError(
            "bad_request",
            f"An action call's JSON body is an array of arguments, not {type(args).__name__}.",
        )
    return args


class _ReplayStream:
    """The bytes already read from a request body, then the rest of it, as one stream."""

    def __init__(self, head: bytes, rest: t.Any) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._head.read() + bytes(self._rest.read())
        return self._head.read(size) or bytes(self._rest.read(size))

    def readline(self, size: int | None = -1) -> bytes:
        line = self._head.readline(-1 if size is None else size)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        more = self._rest.readline(-1 if size is None or size < 0 else size - len(line))
        return line + bytes(more)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self.readline, b"")

    def close(self) -> None:
        close = getattr(self._rest, "close", None)
        if close is not None:
            close()


def _rewind(environ: WSGIEnvironment, body: bytes) -> None:
    """Let code running in the action (a framework's request object) read the body again."""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def _truncated() -> _ActionError:
    return _ActionError(
        "bad_request", "The request body ended before its Content-Length: the client went away?"
    )


def _restore_body(environ: WSGIEnvironment, body: bytes, complete: bool, stream: t.Any) -> None:
    """Give the application back the body the middleware read to look for an action field."""
    environ["wsgi.input"] = io.BytesIO(body) if complete else _ReplayStream(body, stream)
    if complete:
        environ["wsgi.input_terminated"] = True


def _request_page(environ: WSGIEnvironment) -> str:
    """The path and query of the request, as the browser sent it."""
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    path = path.encode("latin-1").decode("utf-8", "replace")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _local_path(
    url: str, environ: WSGIEnvironment | None = None, trust_forwarded: bool = False
) -> str | None:
    """``url`` as a path and query on this site, or ``None`` if it points elsewhere."""
    if any(c in url for c in "\\\r\n\t\0"):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        if environ is None or parts.scheme not in ("http", "https"):
            return None
        if parts.netloc.lower() != security.request_host(environ, trust_forwarded):
            return None
    elif not url.startswith("/") or url.startswith("//"):
        return None
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


_COOKIE_SAFE = re.compile(r"[A-Za-z0-9!#$%&'()*+\-./:<=>?@\[\]^_`{|}~]*")


def _cookie_header(values: dict[str, str]) -> str:
    parts = []
    for name, value in values.items():
        if not _COOKIE_SAFE.fullmatch(value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{name}={value}")
    return "; ".join(parts)


def _error_json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _html_page(status: int, message: str, detail: str | None = None) -> bytes:
    title = f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}"
    extra = f"<pre>{html.escape(detail)}</pre>" if detail else ""
    return (
        f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{extra}</html>"
    ).encode()
