"""The answers the middleware sends for actions: plain values, then written out by :func:`send`.

Each builder returns an :class:`Answer` (status, headers, body); :func:`send` adds what the
action asked for (its cookies, its ``after()`` callbacks) and hands it to ``start_response``.
An answer to the client script is JSON (see :mod:`actionkit.protocol`); an answer to a browser
without JavaScript is a redirect, the page rendered again, or a short HTML page. Tracebacks are
shown only with ``debug``.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import typing as t

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.urls import iri_to_uri
from werkzeug.wsgi import ClosingIterator

from .navigation import Failure
from .rendering import near

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

    from .context import RequestContext
    from .exceptions import RedirectSignal, RequestRefused
    from .rendering import Rendered

logger = logging.getLogger("actionkit")

JSON = "application/json"
HTML = "text/html; charset=utf-8"
# Headers of a rendered page that do not describe the answer to an action.
_PAGE_ONLY = ("content-length", "cache-control", "etag", "last-modified")

Headers = list[tuple[str, str]]


class Answer(t.NamedTuple):
    """An answer to send: status code, headers (without ``Content-Length``) and body."""

    status: int
    headers: Headers
    body: bytes


def status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}"


def send(
    answer: Answer, start_response: StartResponse, ctx: RequestContext | None = None
) -> t.Iterable[bytes]:
    """Send ``answer`` with the action's cookies; run its ``after()`` callbacks on close."""
    headers = list(answer.headers)
    if ctx is not None and ctx.set_cookies:
        # One Set-Cookie per name: the page's own, when it sets one the action set too.
        own = {v.partition("=")[0].strip() for k, v in headers if k.lower() == "set-cookie"}
        headers.extend(("Set-Cookie", v) for k, v in ctx.set_cookies.items() if k not in own)
    if ctx is not None and ctx.more_headers:
        names = {name.lower() for name, _ in headers}
        headers.extend((k, v) for k, v in ctx.more_headers if k.lower() not in names)
    headers.append(("Content-Length", str(len(answer.body))))
    start_response(status_line(answer.status), headers)
    if ctx is not None and ctx.after_callbacks:
        return ClosingIterator([answer.body], functools.partial(run_after, ctx.after_callbacks))
    return [answer.body]


def run_after(callbacks: list[t.Callable[[], object]]) -> None:
    """Run ``after()`` callbacks; one that raises is logged and the others still run."""
    for fn in callbacks:
        try:
            fn()
        except Exception:
            logger.exception("after() callback %r raised", fn)


# -- the builders ------------------------------------------------------------------------------


def refused(error: RequestRefused, client: bool) -> Answer:
    """A request refused before its action ran (unknown action, cross-site, too large, ...)."""
    if client:
        return Answer(error.status, _no_store(JSON), error_json(error.code, error.message))
    return Answer(error.status, _no_store(HTML), html_page(error.status, error.message))


def redirected(signal: RedirectSignal) -> Answer:
    """An action's redirect without JavaScript: ``303`` (``permanent_redirect()`` too: a
    ``308`` would post the form again to the new URL), or a Flask ``before_request``
    function's ``308`` that moved the page before the action ran."""
    # A header holds latin-1 only: a URL with other text is sent as its URI, as Werkzeug's
    # redirect() sends it (/tags/thé → /tags/th%C3%A9).
    headers = [("Location", iri_to_uri(signal.url)), ("Content-Type", HTML)]
    return Answer(signal.status, headers, html_page(signal.status, f"Redirecting to {signal.url}."))


def page(rendered: Rendered | None, result: t.Any) -> Answer:
    """The page rendered again after a form submission without JavaScript, with the status of
    ``fail()`` when the action failed; a bare page when the page is not the app's to render."""
    failed = isinstance(result, Failure)
    if rendered is None:
        status = result.status if failed else 200
        return Answer(status, [("Cache-Control", "no-store")], b"")
    status = rendered.status_code
    headers = [(k, v) for k, v in rendered.headers if k.lower() not in _PAGE_ONLY]
    if 300 <= status < 400 and any(k.lower() == "location" for k, _ in headers):
        # The page is elsewhere (a route that adds a trailing slash, a login page): the browser
        # goes there with a GET, as after redirect(); a 307 or 308 would post the form again.
        status = 303
    elif failed and status == 200:
        status = result.status
    headers.append(("Cache-Control", "no-store"))
    return Answer(status, headers, rendered.body)


def client(
    result: t.Any,
    redirect: RedirectSignal | None,
    url: str,
    rendered: Rendered | None,
    ctx: RequestContext,
    json_default: t.Callable[[t.Any], t.Any] | None = None,
    form: bool = False,
) -> Answer:
    """The JSON answer to the client script: result, redirect, the page at ``url`` and what was
    revalidated. ``form``: a form's submission, answered as the browser would end it without
    JavaScript when its page redirects or is an error (a call from a script has no such page).

    A pydantic model in the result is answered as its ``model_dump(mode="json")``; other values
    JSON cannot hold as ``json_default`` makes them (a framework's own: Flask's dates).

    :raises TypeError: the action's result is not a JSON value.
    :raises ValueError: it holds ``NaN`` or an infinity.
    """
    failed = isinstance(result, Failure)
    value = result.data if failed else result
    html_text = None
    headers = _no_store(JSON)
    moved = None if redirect is None else {"url": redirect.url, "type": redirect.type}
    status = 0 if rendered is None else rendered.status_code
    location = None if rendered is None else _location(rendered)
    if 200 <= status < 300 or (form and failed and status == result.status):
        # (A failed form's page may answer the failure's status: it shows the errors, and
        # the client keeps what was typed.)
        assert rendered is not None
        html_text = rendered.body.decode("utf-8", "replace")
    elif form and moved is None and (location or status >= 400):
        # The page posted to is not there to show after the action: it redirects (a log-out
        # on a page for members sends to the login page) or is an error (the item deleted on
        # its own page is a 404, a page of its own making). The client goes there, as the
        # browser does without JavaScript.
        moved = {"url": near(url, location or url), "type": "push"}
    answer = {
        "result": value,
        "failed": failed,
        "redirect": moved,
        "html": html_text,
        "url": url,
        "revalidated": {"paths": ctx.revalidated_paths, "tags": ctx.revalidated_tags},
    }
    default = as_json if json_default is None else functools.partial(as_json, json_default)
    body = json.dumps(answer, separators=(",", ":"), allow_nan=False, default=default).encode()
    return Answer(result.status if failed else 200, headers, body)


def _location(rendered: Rendered) -> str | None:
    """The ``Location`` of a page that redirects, else ``None``."""
    if not 300 <= rendered.status_code < 400:
        return None
    return next((v for k, v in rendered.headers if k.lower() == "location"), None) or None


def http_error(
    status: int, code: str, client: bool, rendered: Rendered | None, message: str | None = None
) -> Answer:
    """``not_found()``, ``forbidden()``, ``unauthorized()`` (or a framework's error answer):
    JSON for the client, with ``message`` or the reason phrase; else the app's page for it
    (``rendered``), or a short page."""
    reason = HTTP_STATUS_CODES.get(status, "Error")
    if client:
        return Answer(status, _no_store(JSON), error_json(code, message or reason))
    if rendered is not None:
        headers = [(k, v) for k, v in rendered.headers if k.lower() != "content-length"]
        return Answer(status, headers, rendered.body)
    return Answer(status, _no_store(HTML), html_page(status, reason))


def crashed(digest: str, client: bool, detail: str | None) -> Answer:
    """``500`` for an action that raised: a digest to find the logged traceback by."""
    if client:
        error: dict[str, t.Any] = {"code": "action_failed", "digest": digest}
        if detail:
            error["traceback"] = detail
        return Answer(500, _no_store(JSON), json.dumps({"error": error}).encode())
    message = f"The action failed. Reference: {digest}."
    return Answer(500, _no_store(HTML), html_page(500, message, detail))


def described(error: HTTPException) -> str | None:
    """The message an ``HTTPException`` was raised with (``abort(404, "No such post.")``,
    Flask-WTF's ``The CSRF token is missing.``), which its page shows; ``None`` when it was
    raised without one (its class's description is generic)."""
    given = vars(error)
    text = given.get("description", given.get("_description"))  # (BadRequestKeyError's)
    return text if isinstance(text, str) and text else None


def as_json(*given: t.Any) -> t.Any:
    """``json.dumps``'s ``default``: a pydantic model as JSON, else what the framework's own
    ``default`` (the first argument, if given) makes of the value."""
    value = given[-1]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    refused = TypeError(f"{type(value).__name__} is not a JSON value")
    if len(given) > 1:
        try:
            return given[0](value)
        except TypeError as e:  # not the framework's (Flask's provider: Enum, set)
            refused = e
    # What pydantic gives actions (dates, Decimal, UUID, Enum, dataclasses, sets), as pydantic
    # writes them in JSON (as DjangoJSONEncoder and Flask's provider do most of them).
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        raise refused from None


def _no_store(content_type: str) -> Headers:
    return [("Content-Type", content_type), ("Cache-Control", "no-store")]


def error_json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def html_page(status: int, message: str, detail: str | None = None) -> bytes:
    title = f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}"
    extra = f"<pre>{html.escape(detail)}</pre>" if detail else ""
    return (
        f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{extra}</html>"
    ).encode()
