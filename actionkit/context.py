"""Per-request state: the context of the request being handled, its cookies, headers and
``after()`` callbacks.

Everything a request accumulates (the cookies an action sets, the paths it revalidates, what a
page render declares about caching, the callbacks to run after the response) lives in one
:class:`RequestContext` held by a :class:`contextvars.ContextVar`.
:class:`~actionkit.ActionMiddleware` sets it before it calls an action or the wrapped application
and resets it afterwards, so the threads of a threaded server never see each other's state.

This module is the plumbing every other one builds on; it imports nothing else of the package.
The functions that end an action live in :mod:`actionkit.navigation`, the cache hints
(:func:`~actionkit.cache_tag`, :func:`~actionkit.cache_life`) in :mod:`actionkit.cache`.
"""

from __future__ import annotations

import re
import time
import typing as t
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import quote

from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import dump_cookie, parse_date
from werkzeug.sansio.http import parse_cookie

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

INFINITY = float("inf")
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(slots=True)
class RenderHints:
    """What a page said about caching itself while it rendered, read by the page cache."""

    #: Tags given to :func:`~actionkit.cache_tag`.
    tags: set[str] = field(default_factory=set)
    #: The lifetime given to :func:`~actionkit.cache_life` (``None``: not given).
    ttl: float | None = None
    stale: float | None = None
    #: Set when the page read :func:`cookies`: it is stored only if it varies with ``Cookie``.
    cookies_read: bool = False
    #: Whether the page read a framework's state that comes from the cookies (Flask's
    #: ``session``): each asked again when the page is stored, since a streamed page reads it
    #: after its headers, once the framework decided whether to say ``Vary: Cookie``.
    readers: list[t.Callable[[], bool]] = field(default_factory=list)
    #: Why the page must not be stored, when a framework's adapter found a reason while it
    #: rendered (Flask-WTF's CSRF token, which expires).
    refusal: str | None = None
    #: Set once the page's answer started: cache_tag() and cache_life() come too late then.
    planned: bool = False
    #: The tags of the ``cached()`` values the page showed, and the earliest of their expiries.
    data_tags: set[str] = field(default_factory=set)
    data_expires: float = INFINITY


@dataclass(slots=True)
class RequestContext:
    """The state of one request passing through the middleware."""

    environ: WSGIEnvironment
    #: The page cache of the middleware handling the request (``None`` when caching is off).
    cache: object | None = None
    #: The secret key(s) of the middleware (bound arguments made during the request use it).
    secret_key: t.Any = None
    #: The middleware's ``trust_forwarded``: ``X-Forwarded-Proto`` tells the request's scheme.
    trust_forwarded: bool = False
    #: ``True`` while an action runs: only then may cookies be set.
    in_action: bool = False
    #: The :class:`~actionkit.Action` the request runs, if it is an action request.
    action: object | None = None
    #: The last :func:`~actionkit.fail` made while the action ran (to notice one not returned).
    failure: object | None = None
    #: The outcome of the action (an :class:`~actionkit.ActionState`) during the re-render that
    #: follows it.
    state: object | None = None
    #: Cookies as the request sent them, then as the action changed them.
    _cookies: dict[str, str] | None = None
    #: ``Set-Cookie`` header values the action produced, by cookie name (last one wins).
    set_cookies: dict[str, str] = field(default_factory=dict)
    #: The ``Path`` of each cookie in :attr:`set_cookies`: where a browser sends it back.
    cookie_paths: dict[str, str] = field(default_factory=dict)
    #: Other headers for the action's answer (a framework's ``after_request`` functions'
    #: ``Access-Control-*``, security headers), each sent unless the answer has its own.
    more_headers: list[tuple[str, str]] | None = None
    revalidated_paths: list[str] = field(default_factory=list)
    revalidated_tags: list[str] = field(default_factory=list)
    #: What the page being rendered said about caching itself.
    hints: RenderHints = field(default_factory=RenderHints)
    after_callbacks: list[t.Callable[[], object]] = field(default_factory=list)
    #: The revalidations the action asked for, not yet sent to the store: ``("path", path,
    #: layout)`` or ``("tag", tag, False)``. ``None``: revalidations go out at once. The
    #: middleware sends them when the action is over, in one write with the page rendered
    #: after it where it can (see :meth:`actionkit.cache.PageCache.render`); the render shares
    #: the list, and a ``cached()`` value read meanwhile sends them first.
    pending: list[tuple[str, str, bool]] | None = None
    #: Set when the page after the action may show what its request does not carry (a
    #: framework's session saved after the answer, a message for the user): that page is then
    #: neither read from nor stored in the page cache.
    page_uncached: bool = False
    #: Set when the action itself changed what the page after it shows without revalidating
    #: or setting a cookie (a message, the session): the client script's answer carries it.
    page_changed: bool = False

    @property
    def cookie_values(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = self._sent_cookies()
        return self._cookies

    def _sent_cookies(self) -> dict[str, str]:
        # The header's bytes (a WSGI string holds them as latin-1) are UTF-8; a byte that is
        # not (a client's junk) is replaced rather than failing the request.
        raw = self.environ.get("HTTP_COOKIE", "")
        return dict(parse_cookie(raw.encode("latin-1", "replace").decode("utf-8", "replace")))

    def add_set_cookie(self, header: str) -> None:
        """Send a ``Set-Cookie`` header made elsewhere (a framework's session) with the answer;
        the page rendered after the action sees the cookie as changed, as a browser would send
        it back (its value unquoted; sent only below its ``Path``).
        """
        pair, *attributes = header.split(";")
        name, _, value = pair.partition("=")
        name = name.strip()
        value = parse_cookie(pair.strip()).get(name, value.strip())  # "a\073b" is a;b
        self.set_cookies[name] = header
        attrs = {}
        for attribute in attributes:
            key, _, text = attribute.partition("=")
            attrs[key.strip().lower()] = text.strip()
        scope = attrs.get("path", "")
        if not scope.startswith("/"):  # the default (RFC 6265, 5.1.4): the page's directory
            page = self.environ.get("SCRIPT_NAME", "") + self.environ.get("PATH_INFO", "")
            page = url_path(page)  # as in its URL
            scope = (page[: page.rindex("/")] or "/") if page.startswith("/") else "/"
        self.cookie_paths[name] = scope
        if _INTEGER.fullmatch(attrs.get("max-age", "")):
            gone = int(attrs["max-age"]) <= 0  # Max-Age wins over Expires
        else:
            expires = parse_date(attrs.get("expires"))
            gone = expires is not None and expires.timestamp() <= time.time()
        if gone:
            self.cookie_values.pop(name, None)
        else:
            self.cookie_values[name] = value

    def cookies_at(self, path: str) -> dict[str, str]:
        """The cookies a browser would send to ``path`` (as in the URL) after the action: the
        action's changes of cookies whose ``Path`` does not cover it are not among them."""
        values = self.cookie_values
        if all(scope == "/" for scope in self.cookie_paths.values()):
            return values
        values, sent = dict(values), self._sent_cookies()
        for name, scope in self.cookie_paths.items():
            if not path_matches(path, scope):
                if name in sent:
                    values[name] = sent[name]
                else:
                    values.pop(name, None)
        return values

    @property
    def revalidated(self) -> bool:
        return bool(self.revalidated_paths or self.revalidated_tags)


_current: ContextVar[RequestContext | None] = ContextVar("actionkit.request", default=None)

#: The key of the WSGI environ under which a middleware that is asked to (a framework's
#: extension) leaves the context of the request, for :data:`lookups`.
ENVIRON_KEY = "actionkit.context"

#: Where :func:`current` looks when no context is set: a framework whose request outlives the
#: middleware's call of the app (a response streamed by Flask) finds the context there.
lookups: list[t.Callable[[], RequestContext | None]] = []


def current() -> RequestContext | None:
    """The context of the request being handled in this thread, or ``None``."""
    ctx = _current.get()
    if ctx is None and lookups:
        for lookup in lookups:
            ctx = lookup()
            if ctx is not None:
                break
    return ctx


def push(ctx: RequestContext) -> t.Any:
    """Make ``ctx`` current; returns the token for :func:`pop`."""
    return _current.set(ctx)


def pop(token: t.Any) -> None:
    _current.reset(token)


def require(what: str) -> RequestContext:
    ctx = current()
    if ctx is None:
        raise RuntimeError(
            f"{what} needs a request: call it from an action or a page rendered through"
            " ActionMiddleware."
        )
    return ctx


def require_action(what: str) -> RequestContext:
    ctx = require(what)
    if not ctx.in_action:
        raise RuntimeError(f"{what} can only be called while an action runs.")
    return ctx


# -- reading the request ------------------------------------------------------------------------


class Cookies:
    """The request's cookies; inside an action, also the cookies of the answer.

    Reads see the action's own changes, so a value set is read back at once. A page that reads
    them while it renders is not stored in the page cache unless it answers ``Vary: Cookie``
    (as a Next.js page that calls ``cookies()`` is rendered for each request).
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx

    def _values(self) -> dict[str, str]:
        ctx = self._ctx
        ctx.hints.cookies_read = True  # a page showing them is somebody's (see cache.policy)
        return ctx.cookie_values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values().get(name, default)

    def has(self, name: str) -> bool:
        return name in self._values()

    def all(self) -> dict[str, str]:
        return dict(self._values())

    def __contains__(self, name: object) -> bool:
        return name in self._values()

    def __getitem__(self, name: str) -> str:
        return self._values()[name]

    def set(self, name: str, value: str, **options: t.Any) -> None:
        """Set a cookie in the answer. Defaults: ``Path=/; HttpOnly; SameSite=Lax``, and
        ``Secure`` on https; ``options`` are those of Werkzeug's ``set_cookie`` (``max_age``,
        ``expires``, ``path``, ``domain``, ``secure``, ``httponly``, ``samesite``,
        ``partitioned``) and override the defaults.
        """
        ctx = require_action("cookies().set()")
        if not isinstance(value, str):
            raise TypeError(f"Cookie values are strings, not {type(value).__name__} ({value!r}).")
        ctx.set_cookies[name] = _dump_cookie(ctx, name, value, options)
        ctx.cookie_paths[name] = options.get("path") or "/"
        ctx.cookie_values[name] = value

    def delete(self, name: str, **options: t.Any) -> None:
        """Delete a cookie (``path`` and ``domain`` must match the ones it was set with)."""
        ctx = require_action("cookies().delete()")
        options = {**options, "max_age": 0, "expires": 0}
        ctx.set_cookies[name] = _dump_cookie(ctx, name, "", options)
        ctx.cookie_paths[name] = options.get("path") or "/"
        ctx.cookie_values.pop(name, None)

    def __repr__(self) -> str:
        return f"<Cookies {sorted(self._ctx.cookie_values)!r}>"


_COOKIE_OPTIONS = frozenset(
    ("max_age", "expires", "path", "domain", "secure", "httponly", "samesite", "partitioned")
)


def request_scheme(environ: WSGIEnvironment, trust_forwarded: bool) -> str:
    """The scheme the browser used (``X-Forwarded-Proto`` only when trusted)."""
    if trust_forwarded:
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        if proto:
            return str(proto).split(",", 1)[0].strip().lower()
    return str(environ.get("wsgi.url_scheme", "http"))


def _dump_cookie(ctx: RequestContext, name: str, value: str, options: dict[str, t.Any]) -> str:
    unknown = set(options) - _COOKIE_OPTIONS
    if unknown:
        raise TypeError(
            f"Unknown cookie option(s) {sorted(unknown)!r}; valid: {sorted(_COOKIE_OPTIONS)!r}."
        )
    settings: dict[str, t.Any] = {
        "path": "/",
        "httponly": True,
        "samesite": "Lax",
        "secure": request_scheme(ctx.environ, ctx.trust_forwarded) == "https",
        **options,
    }
    return dump_cookie(name, value, **settings)


# What a path keeps as it is when written as in a URL (quote() keeps letters, digits and "_.-~").
_PATH_SAFE = "/!$&'()*+,;=:@"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.\-~/!$&'()*+,;=:@]*")


def url_path(path: str) -> str:
    """A WSGI path (its bytes as latin-1 characters) written as in a URL: ``/tag/café`` is
    ``/tag/caf%C3%A9``, and a ``%`` of the path is ``%25``."""
    if _PLAIN_PATH.fullmatch(path):
        return path
    try:
        raw = path.encode("latin-1")
    except UnicodeEncodeError:  # a server that put text past latin-1 in the environ
        raw = path.encode("utf-8", "surrogatepass")
    return quote(raw, safe=_PATH_SAFE)


def path_matches(path: str, scope: str) -> bool:
    """Whether a browser sends a cookie of ``Path=scope`` to ``path`` (RFC 6265, 5.1.4)."""
    if path == scope:
        return True
    return path.startswith(scope) and (scope.endswith("/") or path[len(scope)] == "/")


def cookies() -> Cookies:
    """The cookies of the current request (see :class:`Cookies`)."""
    return Cookies(require("cookies()"))


class _Headers(EnvironHeaders):
    """The request's headers; reading ``Cookie`` through them counts as reading the cookies
    (see :class:`Cookies`): a page showing them is somebody's."""

    def __init__(self, ctx: RequestContext) -> None:
        super().__init__(ctx.environ)
        self._ctx = ctx

    def _get_key(self, key: str) -> str:  # (what [], get() and getlist() read through)
        if isinstance(key, str) and key.lower() == "cookie":
            self._ctx.hints.cookies_read = True
        return super()._get_key(key)

    def __iter__(self) -> t.Iterator[tuple[str, str]]:
        for name, value in super().__iter__():
            if name.lower() == "cookie":
                self._ctx.hints.cookies_read = True
            yield name, value


def headers() -> EnvironHeaders:
    """The headers of the current request, read-only (reading ``Cookie`` counts as reading
    :func:`cookies`)."""
    return _Headers(require("headers()"))


def after(fn: t.Callable[[], object]) -> None:
    """Run ``fn`` once the response has been sent (from ``close()`` of the response iterable).

    Use it for work the user should not wait for: logging, analytics, notifications. An
    exception in ``fn`` is logged on the ``actionkit`` logger, never raised.
    """
    if not callable(fn):
        raise TypeError(f"after() takes a callable, not {fn!r}.")
    ctx = require("after()")
    for keep in keepers:
        fn = keep(fn)
    ctx.after_callbacks.append(fn)


#: Functions an adapter adds that give an ``after()`` callback, which runs once the response
#: is sent, what it needs of the framework's state when it was given (Flask's app context).
keepers: list[t.Callable[[t.Callable[[], object]], t.Callable[[], object]]] = []
