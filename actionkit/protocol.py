"""The wire protocol between the browser (or any client) and :class:`~actionkit.ActionMiddleware`.

Version 1. The same names are written in ``static/actionkit.js``; a test checks they agree.

Which action
    A ``POST`` with the header ``Action-Id: <id>``, or whose form body (urlencoded or multipart)
    has a field named ``$ACTION_ID_<id>``. The field's value is the encrypted token of the bound
    arguments (``Action.bind``), or empty. When several such fields are sent (the form's hidden
    field and the clicked button's name) the last one wins.

Arguments
    The bound arguments fill the function's leading parameters. A form body fills the others by
    name from its fields (a ``form`` parameter takes the whole form); ``Content-Type:
    application/json`` with a JSON array fills them in order, the bound token in the
    ``Action-Bound`` header. See :mod:`actionkit.params`.

Answer to the client (``Action-Id`` present)
    ``application/json``: ``{"result", "failed", "redirect", "html", "url", "revalidated"}``;
    ``html`` is the page named by ``Action-Page`` (or the redirect target) rendered after the
    action, when the action changed something a page could show; after a form's submission, a
    page that redirects or is an error is named in ``redirect`` instead (docs/protocol.rst).
"""

from __future__ import annotations

import typing as t

PROTOCOL_VERSION = 1

#: Request header naming the action (sent by the client script and any other program).
ACTION_ID_HEADER = "Action-Id"
#: Request header carrying the bound-arguments token of a JSON call.
ACTION_BOUND_HEADER = "Action-Bound"
#: Request header naming the page (same-origin path and query) to render into the answer.
ACTION_PAGE_HEADER = "Action-Page"

#: Prefix of the form field that names the action; the rest of the name is the ID.
ACTION_FIELD_PREFIX = "$ACTION_ID_"
#: Fields whose names start with this are protocol fields, removed from the action's form.
RESERVED_FIELD_PREFIX = "$ACTION_"

#: URL prefix under which the middleware serves the client script and its assets.
STATIC_PREFIX = "/_actionkit/"
#: The environ key of the mount point (``SCRIPT_NAME``) at which the middleware serves
#: :data:`STATIC_PREFIX`, as it was when the request reached it.
STATIC_ROOT_KEY = "actionkit.static_root"

#: Response header saying how the page cache answered.
CACHE_STATUS_HEADER = "Actionkit-Cache"

#: Error codes of the ``{"error": {"code": ...}}`` answers.
ErrorCode = t.Literal[
    "unknown_action",
    "cross_origin",
    "body_too_large",
    "bad_request",
    "action_failed",
    "not_found",
    "forbidden",
    "unauthorized",
    "http_error",
]

ERROR_STATUS: dict[str, int] = {
    "unknown_action": 404,
    "cross_origin": 403,
    "body_too_large": 413,
    "bad_request": 400,
    "action_failed": 500,
    "not_found": 404,
    "forbidden": 403,
    "unauthorized": 401,
}

#: The error code of an answer with an HTTP error status (``not_found()``, ``abort(404)``, ...).
STATUS_ERROR_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "body_too_large",
}


def error_code(status: int) -> str:
    """The error code of an answer with ``status``: ``"not_found"`` for 404, and so on;
    ``"http_error"`` for a status without a code of its own."""
    return STATUS_ERROR_CODES.get(status, "http_error")


# The WSGI environ keys of the headers above.
ENVIRON_ACTION_ID = "HTTP_ACTION_ID"
ENVIRON_ACTION_BOUND = "HTTP_ACTION_BOUND"
ENVIRON_ACTION_PAGE = "HTTP_ACTION_PAGE"
