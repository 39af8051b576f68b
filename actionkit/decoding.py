"""Decoding an action request: environ in, a :class:`Call` (or a refusal) out.

:func:`decode` answers in order: is this ``POST`` an action (an ``Action-Id`` header, or a
``$ACTION_ID_<id>`` field name in a form body; anything else goes back to the application with
its body intact), may it run (origin, size, a known action ID, a valid bound-arguments token),
and with which arguments. A request that may not run raises
:class:`~actionkit.exceptions.RequestRefused`. Nothing the client sends becomes a Python object
other than JSON values and form fields.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import typing as t
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  registers the "werkzeug.url_quote" codec error handler
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Epilogue, Field, File, MultipartDecoder, NeedData

from . import security
from .body import Peek, content_length, peek_body, unreadable
from .exceptions import BadToken, RequestRefused, SecretKeyMissing
from .protocol import (
    ACTION_FIELD_PREFIX,
    ENVIRON_ACTION_BOUND,
    ENVIRON_ACTION_ID,
    ENVIRON_ACTION_PAGE,
    RESERVED_FIELD_PREFIX,
)
from .rendering import local_path, request_page

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .registry import Action, Registry

logger = logging.getLogger("actionkit")

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORM_PARTS = 10_000  #: The most parts (fields and files) of a multipart form: 413 beyond.


def _escapable(text: str) -> bytes:
    """A pattern of ``text`` where any character may be percent-escaped, as a form's keys are
    read (``%24ACTION_ID_`` and ``%24%41CTION%5FID_`` are ``$ACTION_ID_``)."""
    hexa = (
        "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{ord(c):02X}") for c in text
    )
    return "".join(f"(?:{re.escape(c)}|%{h})" for c, h in zip(text, hexa, strict=True)).encode()


# An action field's name at a key position of an urlencoded body (values cannot hold a bare "&").
_URLENCODED_FIELD = re.compile(rb"(?:^|&)" + _escapable(ACTION_FIELD_PREFIX))
_FIELD_BYTES = ACTION_FIELD_PREFIX.encode()


class Options(t.Protocol):
    """The settings decoding needs (an :class:`~actionkit.ActionMiddleware` has them)."""

    registry: Registry
    body_limit: int
    allowed_origins: tuple[str, ...]
    trust_forwarded: bool
    secret_key: t.Any


class Call(t.NamedTuple):
    """A decoded action request."""

    action: Action
    #: The arguments sealed in the bound-arguments token (``Action.bind``).
    bound: list[t.Any]
    #: A form's fields and files (``$ACTION_*`` fields removed); ``None`` for a JSON call.
    form: MultiDict[str, t.Any] | None
    #: A JSON call's positional arguments; ``None`` for a form submission.
    json_args: list[t.Any] | None
    #: The path and query of the page to render after the action.
    page: str
    #: Sent by the client script (an ``Action-Id`` header).
    client: bool

    @property
    def args(self) -> list[t.Any]:
        """The positional arguments: the bound ones, then the form or the JSON array's items."""
        if self.form is not None:
            return [*self.bound, self.form]
        return [*self.bound, *(self.json_args or ())]


def mimetype(environ: WSGIEnvironment) -> str:
    """The request's content type, without parameters, in lower case."""
    return str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()


def decode(environ: WSGIEnvironment, options: Options) -> Call | None:
    """The action call a ``POST`` makes, or ``None`` when it is not an action request.

    :raises RequestRefused: an action request that may not run.
    """
    client = ENVIRON_ACTION_ID in environ
    kind = mimetype(environ)
    if client:
        return _decode_client(environ, kind, options)
    if kind in FORM_TYPES:
        return _decode_form(environ, kind, options)
    return None


def _check_origin(environ: WSGIEnvironment, options: Options) -> None:
    if not security.is_same_origin(environ, options.allowed_origins, options.trust_forwarded):
        raise RequestRefused(
            "cross_origin",
            "This action request comes from another site; add its origin to"
            " allowed_origins if it is yours.",
        )


def _lookup(action_id: str, options: Options, environ: WSGIEnvironment) -> Action:
    found = options.registry.get(action_id)
    if found is not None and found.under is not None and not _is_under(environ, found.under):
        # A scoped action posted elsewhere would skip the guards of its pages.
        raise RequestRefused("not_found", f"This action runs only under {found.under}.")
    if found is None:
        # After a deploy, pages rendered by the old code name actions the new one lacks.
        logger.warning(
            "Unknown action ID %r posted to %s: a page older than the server, or a client"
            " guessing.",
            action_id,
            request_page(environ),
        )
        raise RequestRefused(
            "unknown_action", "No such action; the page may be older than the server."
        )
    return found


def _is_under(environ: WSGIEnvironment, under: str) -> bool:
    """Whether the request's path is ``under`` or below it (``/admin/`` and ``/admin`` alike)."""
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    return not (root := under.rstrip("/")) or path == root or path.startswith(root + "/")


def _too_large(options: Options) -> RequestRefused:
    message = f"The action request is larger than the limit of {options.body_limit} bytes."
    return RequestRefused("body_too_large", message)


def _decode_client(environ: WSGIEnvironment, kind: str, options: Options) -> Call:
    """An ``Action-Id`` request: a JSON call, or a form submitted by the client script."""
    _check_origin(environ, options)
    named = environ[ENVIRON_ACTION_ID].strip()
    if "," in named:  # several Action-Id fields, joined by the server (RFC 9110, 5.3)
        raise RequestRefused("bad_request", "A request names one action: one Action-Id.")
    action = _lookup(named, options, environ)
    page = _page(environ)
    length = content_length(environ)
    if length.isdigit() and int(length) > options.body_limit:
        raise _too_large(options)
    if unreadable(environ):  # the action would run without the arguments it was sent
        message = "This server gives no body sent without a Content-Length (chunked): send one."
        raise RequestRefused("bad_request", message)
    peek = peek_body(environ, options.body_limit)
    body = _whole(peek, options)
    token = environ.get(ENVIRON_ACTION_BOUND)
    form_or_none: MultiDict[str, t.Any] | None = None
    if kind in FORM_TYPES:
        fields, form_or_none = parse_form(environ, body, kind)
        if token is None:
            token = next((str(v) for k, v in reversed(fields) if k == action.field_name), "")
        json_args = None
    elif kind == "application/json" or (not body.strip() and not kind):
        json_args = parse_json_args(body)
    else:
        raise RequestRefused(
            "bad_request",
            f"Unsupported content type {kind!r} for an action call; send"
            " application/json, application/x-www-form-urlencoded or multipart/form-data.",
        )
    try:
        bound = unseal(action, token or "", options)
    except RequestRefused:
        close_files(form_or_none)
        raise
    return Call(action, bound, form_or_none, json_args, page, True)


def _decode_form(environ: WSGIEnvironment, kind: str, options: Options) -> Call | None:
    """A form posted by a browser without the script; ``None`` when it names no action.

    Whether it does is decided from its first ``body_limit`` bytes, by a field *name* (an
    urlencoded key, a multipart part's name; never a value or a file's content), before any
    other check: a form that is not an action reaches the application whatever its origin or
    size, with its body as it came.
    """
    peek = peek_body(environ, options.body_limit)
    if not _names_an_action(peek.body, kind, environ):
        return None
    _check_origin(environ, options)
    body = _whole(peek, options)
    fields, form = parse_form(environ, body, kind)
    try:  # a request refused once its form was read: its uploads are closed
        named = [(k, v) for k, v in fields if k.startswith(ACTION_FIELD_PREFIX)]
        if not named:  # sent as a file, or beyond a broken part: the form cannot be read
            raise RequestRefused("bad_request", "The form's action field could not be decoded.")
        field, token = named[-1]  # the clicked button's name comes after the hidden field
        action_id = field[len(ACTION_FIELD_PREFIX) :]
        if action_id[-2:] in (".x", ".y") and options.registry.get(action_id) is None:
            action_id = action_id[:-2]  # an image button: name.x and name.y, and a point
            token = next((str(v) for k, v in named if k == ACTION_FIELD_PREFIX + action_id), "")
        action = _lookup(action_id, options, environ)
        bound = unseal(action, token, options)
    except RequestRefused:
        close_files(form)
        raise
    return Call(action, bound, form, None, request_page(environ), False)


def close_files(form: MultiDict[str, t.Any] | None) -> None:
    """Close the uploaded files of ``form``."""
    if form is not None:
        for _, value in form.items(multi=True):
            if isinstance(value, FileStorage):
                value.close()


def _whole(peek: Peek, options: Options) -> bytes:
    """The body of an action request, refused when it was cut short or is too large."""
    if peek.truncated:
        message = "The request body ended before its Content-Length: the client went away?"
        raise RequestRefused("bad_request", message)
    if not peek.complete:
        raise _too_large(options)
    return peek.body


def _names_an_action(head: bytes, kind: str, environ: WSGIEnvironment) -> bool:
    """Whether the start of a form body has a field whose name starts with ``$ACTION_ID_``."""
    if kind == "application/x-www-form-urlencoded":
        if b"$" not in head and b"%24" not in head:
            return False  # no "$" to begin a field's name with: no need for the pattern
        return _URLENCODED_FIELD.search(head) is not None
    boundary = parse_options_header(environ.get("CONTENT_TYPE", ""))[1].get("boundary")
    if not boundary:
        return False
    delimiter = b"--" + boundary.encode("latin-1")
    if not _headers_may_name_an_action(head, delimiter):
        return False  # the usual upload: no need to walk its parts
    decoder = MultipartDecoder(delimiter[2:], max_form_memory_size=None)
    decoder.receive_data(head)
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData | Epilogue):
                return False
            if isinstance(event, Field | File) and (event.name or "").startswith(
                ACTION_FIELD_PREFIX
            ):
                return True
    except ValueError:  # a broken body: the application's to answer
        return False


def _headers_may_name_an_action(head: bytes, delimiter: bytes) -> bool:
    """Whether the headers of a part in ``head`` may name it ``$ACTION_ID_...``: as written, as
    an RFC 2231 parameter (``name*=UTF-8''%24ACTION_ID_x``, ``name*0="$ACT"; name*1=...``),
    with a backslash escape (``name="$\\ACTION_ID_x"``), which the parser reads otherwise, or
    beyond the first 8 KiB of long headers. Only the parts' headers are looked at (one pass
    over the body), not what a file holds."""
    at = head.find(delimiter)
    while at != -1:
        end = head.find(b"\r\n\r\n", at, at + 8192)
        if end == -1:
            return True
        headers = head[at:end]
        if _FIELD_BYTES in headers or b"*" in headers or b"\\" in headers:
            return True
        at = head.find(delimiter, at + len(delimiter))
    return False


def unseal(action: Action, token: str, options: Options) -> list[t.Any]:
    """The bound arguments sealed in ``token`` for ``action``."""
    try:
        return security.decrypt_args(action.id, token, security.resolve_key(options.secret_key))
    except BadToken as e:
        raise RequestRefused("bad_request", str(e)) from None
    except SecretKeyMissing as e:
        logger.error("%s", e)
        raise RequestRefused("bad_request", "Bound arguments cannot be read.") from None


def _page(environ: WSGIEnvironment) -> str:
    """The page to render into a client answer: ``Action-Page``, else the request's URL."""
    page: str | None = environ.get(ENVIRON_ACTION_PAGE)
    if page is None:
        return request_page(environ)
    if local_path(page) is None:
        message = f"Action-Page must be a path on this site such as '/posts?page=2', not {page!r}."
        raise RequestRefused("bad_request", message)
    return page


def parse_form(
    environ: WSGIEnvironment, body: bytes, kind: str
) -> tuple[list[tuple[str, t.Any]], MultiDict[str, t.Any]]:
    """Decode a form body: every field in order, and the action's form without ``$ACTION_*``."""
    if kind == "application/x-www-form-urlencoded":
        # What Werkzeug's form parser does for this type, without building one per request.
        try:
            items: list[tuple[str, t.Any]] = parse_qsl(
                body.decode(), keep_blank_values=True, errors="werkzeug.url_quote"
            )
        except ValueError as e:
            message = f"The form body could not be decoded: {e}"
            raise RequestRefused("bad_request", message) from None
        reserved = RESERVED_FIELD_PREFIX
        return items, MultiDict([(k, v) for k, v in items if not k.startswith(reserved)])
    boundary = parse_options_header(environ.get("CONTENT_TYPE", ""))[1].get("boundary", "")
    # Werkzeug's parser given the whole body at once: read in chunks, it loses empty fields
    # whose part straddles two (Werkzeug 3.1).
    parser = MultiPartParser(max_form_parts=FORM_PARTS, buffer_size=max(1, len(body)))
    try:
        if not boundary.isascii():
            raise ValueError(f"Invalid boundary {boundary!r}")
        fields, files = parser.parse(io.BytesIO(body), boundary.encode(), len(body))
    except RequestEntityTooLarge:  # within body_limit: too many parts
        raise RequestRefused("body_too_large", f"The form has over {FORM_PARTS:,} parts.") from None
    except (ValueError, HTTPException) as e:
        raise RequestRefused("bad_request", f"The form body could not be decoded: {e}") from None
    if kind == "multipart/form-data" and not fields and not files and body.strip():
        raise RequestRefused("bad_request", "The multipart body has no parts (wrong boundary?).")
    items = list(fields.items(multi=True))
    if any(key is None for key, _ in items) or any(key is None for key in files):
        for _, file in files.items(multi=True):
            file.close()
        raise RequestRefused(
            "bad_request", "A part of the multipart body has no name (Content-Disposition)."
        )
    form: MultiDict[str, t.Any] = MultiDict(
        [(k, v) for k, v in items if not k.startswith(RESERVED_FIELD_PREFIX)]
    )
    for key, file in files.items(multi=True):
        form.add(key, file)
    return items, form


def parse_json_args(body: bytes) -> list[t.Any]:
    """The positional arguments of a JSON call: its body, a JSON array."""
    if not body.strip():
        return []
    try:
        args = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestRefused(
            "bad_request", f"The JSON body could not be decoded: {_said(e)}"
        ) from None
    except RecursionError:
        raise RequestRefused("bad_request", "The JSON body is nested too deeply.") from None
    if not isinstance(args, list):
        raise RequestRefused(
            "bad_request",
            f"An action call's JSON body is an array of arguments, not {type(args).__name__}.",
        )
    return args


def _finite(text: str) -> float:
    """A JSON number as a float, refused when it overflows to an infinity (``1e309``)."""
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{_shown(text)} is too large for a number")
    return number


# Python's error for an integer past the digits it reads (sys.set_int_max_str_digits()).
_TOO_MANY_DIGITS = re.compile(r"Exceeds the limit \(\d+ digits\).* value has (\d+) digits")


def _said(error: Exception) -> str:
    """The decoding error for the client (Python's for a long integer advises the server)."""
    found = _TOO_MANY_DIGITS.search(str(error))
    return f"an integer of {int(found[1]):,} digits is too long" if found else str(error)


def _shown(text: str) -> str:
    """A number quoted in a message, shortened when long (it may be most of the body)."""
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]}"


def _refuse_constant(name: str) -> t.NoReturn:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, whatever Python's parser allows."""
    raise ValueError(f"{name} is not a JSON value")
