"""Rendering a page in-process: the ``GET`` that shows the page after an action.

The page shown after an action is rendered by calling the wrapped application with a ``GET`` of
the same URL (or of the redirect target), never by an HTTP request to a host the client named:
:func:`local_path` refuses any URL that is not on the request's own site.
"""

from __future__ import annotations

import io
import re
import typing as t
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urljoin, urlsplit, urlunsplit

from werkzeug.urls import iri_to_uri

from . import security
from .context import url_path
from .protocol import ENVIRON_ACTION_ID

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment


@dataclass
class Rendered:
    """A page rendered to bytes."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_code(self) -> int:
        return int(self.status.split(None, 1)[0])


def render_app(app: WSGIApplication, environ: WSGIEnvironment) -> Rendered:
    """Call a WSGI app and collect its whole answer (closing its iterable)."""
    captured: list[t.Any] = []
    chunks: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Callable[[bytes], object]:
        captured[:] = [status, list(headers)]
        return chunks.append

    iterable = app(environ, start_response)
    try:
        chunks.extend(iterable)
    finally:
        if hasattr(iterable, "close"):
            iterable.close()
    if not captured:
        raise RuntimeError(f"{app!r} gave its body without calling start_response() (PEP 3333).")
    return Rendered(captured[0], captured[1], b"".join(chunks))


#: Set in the environ of the page rendered in-process after an action.
AFTER_ACTION_KEY = "actionkit.after_action"

_NOT_COPIED = frozenset(("CONTENT_TYPE", "CONTENT_LENGTH", "werkzeug.debug.preserve_context"))


def page_environ(
    environ: WSGIEnvironment,
    url: str,
    cookies: t.Callable[[str], dict[str, str]],
    trust_forwarded: bool,
) -> WSGIEnvironment | None:
    """The environ of a ``GET`` of ``url`` made from the action request ``environ``, with the
    cookies as the action left them (``cookies(path)``: those sent to the URL path ``path``);
    ``None`` when ``url`` is not a page of this application.
    """
    if not url.isascii():
        # A URL given as text (redirect("/search?q=thé")): its query is sent as the browser
        # sends it, UTF-8 escaped, as the path is (the app decodes the query's bytes as UTF-8).
        try:
            url = iri_to_uri(url)
        except ValueError:
            return None
    path = local_path(url, environ, trust_forwarded)
    if path is None:
        return None
    script_name = environ.get("SCRIPT_NAME", "")
    path_info, _, query = path.partition("?")
    path_info = unquote_to_bytes(path_info).decode("latin-1")
    if script_name:
        if path_info != script_name and not path_info.startswith(script_name + "/"):
            return None
        path_info = path_info[len(script_name) :]
    # Flask's test client keeps the contexts of the action's request, not of this one.
    page = {
        k: v
        for k, v in environ.items()
        if not k.startswith("HTTP_ACTION_") and k not in _NOT_COPIED
    }
    page.update(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "wsgi.input": io.BytesIO(),
            "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8",
        }
    )
    # Not a request of the client's: the page shown after an action (a rate limiter counts
    # the action alone; see actionkit.flask.is_page_after_action).
    page[AFTER_ACTION_KEY] = True
    if ENVIRON_ACTION_ID in environ:
        # The client script's answer holds the page as text: not compressed (Flask-Compress).
        page["HTTP_ACCEPT_ENCODING"] = "identity"
    header = cookie_header(cookies(path.partition("?")[0]))
    if header:
        page["HTTP_COOKIE"] = header
    else:
        page.pop("HTTP_COOKIE", None)
    return page


def canonical_paths(path: str) -> list[str]:
    """A path given by the application (``/tag/café``, ``url_for()``'s ``/tag/caf%C3%A9``)
    as :func:`url_path` writes the path of a request for it: escapes read, then written
    again the one way.

    A ``?`` or ``#`` begins a query or a fragment in a URL (``url_for("posts", page=2)``),
    which is left out (a path's pages are named with any query), but may be a character of a
    path written as text (``"/tag/" + name`` for the tag ``C#``): both readings are given.
    """
    cut = path.partition("#")[0].partition("?")[0]
    paths = [url_path(unquote_to_bytes(cut).decode("latin-1"))]
    if cut != path:
        paths.append(url_path(unquote_to_bytes(path).decode("latin-1")))
    return paths


def request_page(environ: WSGIEnvironment) -> str:
    """The path and query of the request, as in its URL."""
    path = url_path((environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def resolved(url: str, environ: WSGIEnvironment) -> str:
    """``url`` resolved against the URL of the request, as a browser resolves a redirect's
    ``Location`` against the URL it posted to: ``done``, ``?page=2`` and ``#top`` name places
    near the form's ``action``, not near the page the form is on. A path or a URL with a
    scheme is returned as it is."""
    return near(request_page(environ), url)


def near(page: str, url: str) -> str:
    """``url`` resolved against ``page`` (a path and query) as a browser resolves it; a path
    or a URL with a scheme is returned as it is, a relative one as a path."""
    try:
        if url.startswith("/") or urlsplit(url).scheme:
            return url
        # Against an absolute URL: a path-only base leaves "../../x" relative.
        joined = urlsplit(urljoin("http://host" + page, url))
    except ValueError:  # not a URL (local_path refuses it)
        return url
    return urlunsplit(("", "", joined.path, joined.query, joined.fragment))


def local_path(
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


_COOKIE_SAFE = re.compile(r"[\w!#$%&'()*+\-./:<=>?@\[\]^`{|}~]*", re.ASCII)
# The bytes a quoted cookie value writes as octal escapes (as Werkzeug's dump_cookie does).
_COOKIE_ESCAPE = re.compile(rb'[\x00-\x19",;\\\x7f-\xff]')


def _escape(match: re.Match[bytes]) -> bytes:
    char = match.group()
    return b"\\" + char if char in b'"\\' else b"\\%03o" % char[0]


def cookie_header(values: dict[str, str]) -> str:
    """A ``Cookie`` request header sending ``values`` as a browser sends back the cookies it
    was given: values that need it quoted, their UTF-8 bytes past ASCII as octal escapes."""
    parts = []
    for name, value in values.items():
        if not _COOKIE_SAFE.fullmatch(value):
            quoted = _COOKIE_ESCAPE.sub(_escape, value.encode("utf-8", "replace"))
            value = '"' + quoted.decode("ascii") + '"'
        parts.append(f"{name}={value}")
    return "; ".join(parts)
