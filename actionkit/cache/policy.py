"""Whether and how to store a page: a pure function of its status, headers and render hints.

The rules (see :mod:`actionkit.cache`): only status 200 opts in, by a tag or a lifetime given
while it rendered (:func:`~actionkit.cache_tag`, :func:`~actionkit.cache_life`) or by
``Cache-Control: s-maxage=N`` plus an optional ``Cache-Tag`` header; never an answer that sets a
cookie, says ``private`` or ``no-store``, varies on ``*``, shows somebody's ``action_state()`` or
read the request's cookies without varying on ``Cookie``. Also here: the keys of pages.
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass

from ..context import url_path

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..context import RenderHints, RequestContext

logger = logging.getLogger("actionkit")

# Response headers that are never stored with a page.
UNSTORED_HEADERS = frozenset(("cache-tag", "content-length", "connection", "transfer-encoding"))


@dataclass
class Plan:
    """How to store an answer: what :func:`plan` decided when the app started its answer."""

    status: str
    #: The headers to store (those of :data:`UNSTORED_HEADERS` left out).
    headers: list[tuple[str, str]]
    tags: list[str]
    ttl: float | None
    stale: float | None
    #: The request headers the answer varies on (sorted, without duplicates).
    vary: list[str]
    #: The store's generation read before the render began.
    since: int


def plan(
    status: str,
    headers: list[tuple[str, str]],
    hints: RenderHints | None,
    since: int | None,
    *,
    shows_state: bool = False,
) -> Plan | str | None:
    """How to store an answer: a :class:`Plan`; ``None`` when the page did not opt in; or, when
    it opted in but must not be stored, a string saying why (for the log).

    :param status: the WSGI status line.
    :param headers: the answer's headers.
    :param hints: what the page declared while it rendered (``None``: rendered outside the
        middleware's context).
    :param since: the store's generation before the render began; ``None`` when nothing may be
        stored (not a ``GET``, a request with ``Authorization``), negative when the store is
        unavailable.
    :param shows_state: the page shows the outcome of somebody's action.
    """
    ttl: float | None = None
    stale: float | None = None
    tags: set[str] = set()
    vary: list[str] = []
    refusal: str | None = None
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            refusal = refusal or "it sets a cookie"
        elif lower == "vary":
            for part in value.split(","):
                part = part.strip()
                if part == "*":
                    refusal = refusal or "it varies on *"
                elif part:
                    vary.append(part)
        elif lower == "cache-control":
            directives = cache_control(value)
            if "no-store" in directives or "private" in directives:
                refusal = refusal or f"Cache-Control: {value}"
            if "s-maxage" in directives:
                ttl = seconds(directives["s-maxage"])
                if "stale-while-revalidate" in directives:
                    stale = seconds(directives["stale-while-revalidate"])
        elif lower in ("content-security-policy", "content-security-policy-report-only"):
            # A nonce must be unique to each response (CSP 3, 7.1): such a page is everyone's
            # own, as Next.js renders every page dynamically once it reads the nonce.
            if "'nonce-" in value.lower():
                refusal = refusal or "its Content-Security-Policy has a nonce"
        elif lower == "cache-tag":
            tags.update(tag.strip() for tag in value.split(",") if tag.strip())
    if hints is not None:
        tags.update(hints.tags)
        if hints.ttl is not None:
            ttl, stale = hints.ttl, hints.stale
        if read_cookies(hints, vary):
            refusal = refusal or "it read the request's cookies without Vary: Cookie"
        if hints.refusal is not None:
            refusal = refusal or hints.refusal
    if ttl is None and not tags:
        return None  # did not opt in
    if not status.startswith("200"):
        return f"its status is {status!r}"
    if since is None:
        return "the request is not a GET, or carries Authorization"
    if since < 0:
        return "the store is unavailable"
    if shows_state:
        return "it shows the outcome of an action"
    if refusal is not None:
        return refusal
    if ttl == 0 and not stale:
        return "its lifetime is 0"
    stored = [(k, v) for k, v in headers if k.lower() not in UNSTORED_HEADERS]
    return Plan(status, stored, sorted(tags), ttl, stale, sorted(set(vary)), since)


def cache_control(value: str) -> dict[str, str]:
    """The directives of a ``Cache-Control`` header, by lower-case name."""
    directives = {}
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            directives[name.lower()] = arg.strip().strip('"')
    return directives


def seconds(value: str) -> float | None:
    """A ``Cache-Control`` duration, or ``None`` when it is not a number."""
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        return None


def plan_for(
    ctx: RequestContext | None, status: str, headers: list[tuple[str, str]], since: int | None
) -> Plan | None:
    """:func:`plan` for the answer of a page rendered with the request context ``ctx``; a page
    that opted in but is not stored says why in the log (debug level)."""
    if ctx is None:
        decided = plan(status, headers, None, since)
    else:
        decided = plan(status, headers, ctx.hints, since, shows_state=ctx.state is not None)
    if isinstance(decided, str):
        if logger.isEnabledFor(logging.DEBUG):
            path = None if ctx is None else page_path(ctx.environ)
            logger.debug("%s BYPASS: not stored because %s.", path, decided)
        return None
    return decided


def read_cookies(hints: RenderHints, vary: list[str]) -> bool:
    """Whether a page read the request's cookies without varying on ``Cookie``: somebody's. (A
    streamed page may read them after its plan was made: checked again when it is stored.)"""
    read = hints.cookies_read or any(reader() for reader in hints.readers)
    return read and not any(part.lower() == "cookie" for part in vary)


# -- keys -------------------------------------------------------------------------------------


#: The environ key of what else a page depends on, which a framework's adapter sets before the
#: cache looks the page up (Django: the language LocaleMiddleware chose); part of its key.
VARIANT_KEY = "actionkit.cache_variant"


def page_key(environ: WSGIEnvironment) -> str:
    """The store key of the page a ``GET`` asks for: scheme, host, mount point, path and query
    string (and :data:`VARIANT_KEY`). An ``http`` and an ``https`` page differ (absolute URLs
    in them), and so do a path below a mount point and the same path without one."""
    return (
        f"page:{environ.get('wsgi.url_scheme', 'http')}://{_host(environ.get('HTTP_HOST', ''))}"
        f"{environ.get('SCRIPT_NAME', '')}\0{_unambiguous(environ.get('PATH_INFO', ''))}"
        f"?{environ.get('QUERY_STRING', '')}{environ.get(VARIANT_KEY, '')}"
    )


def _host(host: str) -> str:
    """A ``Host`` header as it goes in a key: a ``/`` in it (which a client may send, and a
    server passes on) escaped, so that ``Host: example.com/blog`` asking for ``/page`` does not
    name the page ``/page`` of the application mounted at ``/blog`` of ``example.com``."""
    if "/" not in host and "%" not in host:
        return host
    return host.replace("%", "%25").replace("/", "%2F")


def _unambiguous(path: str) -> str:
    """A PATH_INFO with its "?" escaped (and so its "%"): a decoded path may hold one (from
    ``%3F``), which in the key would read as the start of the query (``/tag/what%3F`` and
    ``/tag/what??`` had one key)."""
    if "?" not in path and "%" not in path:
        return path
    return path.replace("%", "%25").replace("?", "%3F")


def personal(environ: WSGIEnvironment) -> bool:
    """Whether a request is somebody's own: it carries ``Authorization``, or a server or proxy
    in front authenticated it (``REMOTE_USER``: Apache/mod_wsgi, which by default does not pass
    ``Authorization`` on, Shibboleth, Kerberos...). Neither read from nor stored in the cache."""
    return "HTTP_AUTHORIZATION" in environ or bool(environ.get("REMOTE_USER"))


def page_url(environ: WSGIEnvironment) -> tuple[str, ...]:
    """What names a page whatever part of its path is the mount point's (see :func:`key_after`):
    scheme, host, the whole path, query and variant."""
    return (
        str(environ.get("wsgi.url_scheme", "http")),
        str(environ.get("HTTP_HOST", "")),
        str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")),
        str(environ.get("QUERY_STRING", "")),
        str(environ.get(VARIANT_KEY, "")),
    )


_moved: list[str] = []  # the first key a page was looked up by and then stored elsewhere


def key_after(environ: WSGIEnvironment, looked_up: str, url: tuple[str, ...]) -> str:
    """The key to store a page under, once the application has run: the key it was looked up by
    (``looked_up``, of the URL ``url``) when only the split between ``SCRIPT_NAME`` and
    ``PATH_INFO`` moved (Werkzeug's ``DispatcherMiddleware`` inside the middleware); else its key
    now, and a warning the first time it is not the one looked up: a middleware inside this one
    rewrote the host or scheme (``ProxyFix`` applied before ``ActionKit(app)``), and the page
    would be stored where no request looks (storing it under the key looked up would let
    ``X-Forwarded-Host`` choose another host's page)."""
    key = page_key(environ)
    if key == looked_up or page_url(environ) == url:
        return looked_up
    if not _moved:
        _moved.append(looked_up)
        logger.warning(
            "The page cache looked %r up but the application changed its environ to %r (a"
            " ProxyFix inside ActionMiddleware?): such pages are never served from the cache."
            " Wrap ActionMiddleware in that middleware instead.",
            looked_up,
            key,
        )
    return key


def page_path(environ: WSGIEnvironment) -> str:
    """The path a page is stored under, for ``revalidate_path``: as in its URL (see
    :func:`~actionkit.context.url_path`)."""
    return url_path(str(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/")


def vary_key(key: str, names: list[str], environ: WSGIEnvironment) -> str:
    """The key of the variant of ``key`` for the values of the request headers ``names``."""
    values = [
        environ.get("HTTP_" + name.upper().replace("-", "_"), "")
        if name.lower() not in ("content-type", "content-length")
        else environ.get(name.upper().replace("-", "_"), "")
        for name in names
    ]
    return key + "\0" + "\0".join(values)
