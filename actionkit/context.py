"""Per-request state, and the functions an action or a page calls to read and change it.

Everything a request accumulates (the cookies an action sets, the paths it revalidates, the tags a
page render declares, the callbacks to run after the response) lives in one :class:`RequestContext`
held by a :class:`contextvars.ContextVar`. :class:`~actionkit.ActionMiddleware` sets it before it
calls an action or the wrapped application and resets it afterwards, so the threads of a threaded
server never see each other's state.

The functions that end an action (:func:`redirect`, :func:`not_found`, ...) raise a subclass of
:class:`ActionSignal`, which derives from :class:`BaseException` rather than :class:`Exception`:
a broad ``except Exception:`` in an action cannot swallow it by accident.
"""

from __future__ import annotations

import typing as t
from contextvars import ContextVar
from dataclasses import dataclass, field

from werkzeug.datastructures import EnvironHeaders, MultiDict
from werkzeug.http import dump_cookie, parse_cookie

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .cache import PageCache
    from .registry import Action

RedirectType = t.Literal["push", "replace"]
_REDIRECT_TYPES = ("push", "replace")


class ActionSignal(BaseException):
    """Ends an action early. Raised by :func:`redirect` and friends; never caught by user code."""


class RedirectSignal(ActionSignal):
    """Raised by :func:`redirect` and :func:`permanent_redirect`."""

    def __init__(self, url: str, type: RedirectType, status: int) -> None:
        super().__init__(url)
        self.url = url
        self.type = type
        self.status = status


class HTTPSignal(ActionSignal):
    """Raised by :func:`not_found`, :func:`forbidden` and :func:`unauthorized`."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(status)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Failure:
    """What :func:`fail` returns: a failed submission to answer with ``status``."""

    status: int
    data: t.Any


@dataclass(frozen=True)
class ActionState:
    """What :func:`action_state` returns while the page is re-rendered after an action."""

    #: The action that ran.
    action: Action
    #: Its return value, or the data given to :func:`fail`.
    result: t.Any
    #: The submitted form (``$ACTION_*`` fields removed); empty for a JSON call.
    form: MultiDict[str, t.Any]
    #: Whether the action returned :func:`fail`.
    failed: bool
    #: The status of the answer: 200, or the status given to :func:`fail`.
    status: int

    def value(self, name: str, default: str = "") -> str:
        """The submitted value of the field ``name``, to echo it back into a form."""
        value = self.form.get(name, default)
        return value if isinstance(value, str) else default

    def error(self, name: str) -> t.Any:
        """The ``fail()`` data's entry for ``name`` when that data is a mapping, else ``None``."""
        if self.failed and isinstance(self.result, t.Mapping):
            return self.result.get(name)
        return None


@dataclass(slots=True)
class RequestContext:
    """The state of one request passing through the middleware."""

    environ: WSGIEnvironment
    #: The page cache of the middleware handling the request (``None`` when caching is off).
    cache: PageCache | None = None
    #: The secret key of the middleware (bound arguments made during the request use it).
    secret_key: str | bytes | None = None
    #: ``True`` while an action runs: only then may cookies be set.
    in_action: bool = False
    #: Set during the re-render that follows an action.
    state: ActionState | None = None
    #: Cookies as the request sent them, then as the action changed them.
    _cookies: dict[str, str] | None = None
    #: ``Set-Cookie`` header values the action produced, by cookie name (last one wins).
    set_cookies: dict[str, str] = field(default_factory=dict)
    revalidated_paths: list[str] = field(default_factory=list)
    revalidated_tags: list[str] = field(default_factory=list)
    #: Filled by :func:`cache_tag` / :func:`cache_life` while a page renders.
    cache_tags: set[str] = field(default_factory=set)
    cache_ttl: float | None = None
    cache_stale: float | None = None
    #: Set when the page read :func:`cookies` while it rendered: it is stored only if it varies
    #: with ``Cookie``.
    cookies_read: bool = False
    after_callbacks: list[t.Callable[[], object]] = field(default_factory=list)

    @property
    def cookie_values(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = dict(parse_cookie(self.environ.get("HTTP_COOKIE", "")))
        return self._cookies

    def add_set_cookie(self, header: str) -> None:
        """Send a ``Set-Cookie`` header made elsewhere (a framework's session) with the answer;
        the page rendered after the action sees the cookie as changed.
        """
        name, _, rest = header.partition("=")
        name = name.strip()
        value, _, attributes = rest.partition(";")
        self.set_cookies[name] = header
        lowered = attributes.lower().replace(" ", "")
        if "max-age=0" in lowered or "expires=thu,01jan197000:00:00" in lowered:
            self.cookie_values.pop(name, None)
        else:
            self.cookie_values[name] = value.strip().strip('"')

    @property
    def revalidated(self) -> bool:
        return bool(self.revalidated_paths or self.revalidated_tags)


_current: ContextVar[RequestContext | None] = ContextVar("actionkit.request", default=None)


def current() -> RequestContext | None:
    """The context of the request being handled in this thread, or ``None``."""
    return _current.get()


def push(ctx: RequestContext) -> t.Any:
    """Make ``ctx`` current; returns the token for :func:`pop`."""
    return _current.set(ctx)


def pop(token: t.Any) -> None:
    _current.reset(token)


def _require(what: str) -> RequestContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError(
            f"{what} needs a request: call it from an action or a page rendered through"
            " ActionMiddleware."
        )
    return ctx


def _require_action(what: str) -> RequestContext:
    ctx = _require(what)
    if not ctx.in_action:
        raise RuntimeError(f"{what} can only be called while an action runs.")
    return ctx


# -- ending an action ------------------------------------------------------------------------


def redirect(url: str, type: RedirectType = "push") -> t.NoReturn:
    """End the action and send the browser to ``url``.

    Without JavaScript the answer is ``303 See Other``; the client script navigates with
    ``history.pushState`` (``type="push"``) or ``replaceState`` (``type="replace"``) and shows
    the page at ``url`` from the same answer.

    .. code-block:: python

        @action
        def create_post(form):
            post = db.insert(form["title"])
            revalidate_path("/posts")
            redirect(f"/posts/{post.id}")
    """
    if type not in _REDIRECT_TYPES:
        raise ValueError(f"Unknown redirect type {type!r}; use 'push' or 'replace'.")
    _require_action("redirect()")
    raise RedirectSignal(str(url), type, 303)


def permanent_redirect(url: str, type: RedirectType = "push") -> t.NoReturn:
    """Like :func:`redirect`, answered with ``308 Permanent Redirect`` without JavaScript."""
    if type not in _REDIRECT_TYPES:
        raise ValueError(f"Unknown redirect type {type!r}; use 'push' or 'replace'.")
    _require_action("permanent_redirect()")
    raise RedirectSignal(str(url), type, 308)


def not_found() -> t.NoReturn:
    """End the action with ``404 Not Found``."""
    _require_action("not_found()")
    raise HTTPSignal(404, "not_found")


def forbidden() -> t.NoReturn:
    """End the action with ``403 Forbidden``."""
    _require_action("forbidden()")
    raise HTTPSignal(403, "forbidden")


def unauthorized() -> t.NoReturn:
    """End the action with ``401 Unauthorized``."""
    _require_action("unauthorized()")
    raise HTTPSignal(401, "unauthorized")


def fail(status: int = 422, data: t.Any = None) -> Failure:
    """The return value of a failed submission, such as a form with validation errors.

    The page is rendered again with ``status`` and :func:`action_state` gives the template the
    ``data`` and the submitted form, so the errors show next to the fields and nothing typed is
    lost. The client script never resets a form whose action failed.

    .. code-block:: python

        @action
        def create_post(form):
            if not form.get("title"):
                return fail(422, {"title": "A title is required."})
    """
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"fail() takes a 4xx or 5xx status, not {status!r}; 422 is usual.")
    return Failure(status, data)


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
        ctx.cookies_read = True  # a page showing them is somebody's (see PageCache._plan)
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
        ctx = _require_action("cookies().set()")
        if not isinstance(value, str):
            raise TypeError(f"Cookie values are strings, not {type(value).__name__} ({value!r}).")
        ctx.set_cookies[name] = _dump_cookie(ctx, name, value, options)
        ctx.cookie_values[name] = value

    def delete(self, name: str, **options: t.Any) -> None:
        """Delete a cookie (``path`` and ``domain`` must match the ones it was set with)."""
        ctx = _require_action("cookies().delete()")
        options = {**options, "max_age": 0, "expires": 0}
        ctx.set_cookies[name] = _dump_cookie(ctx, name, "", options)
        ctx.cookie_values.pop(name, None)

    def __repr__(self) -> str:
        return f"<Cookies {sorted(self._ctx.cookie_values)!r}>"


_COOKIE_OPTIONS = frozenset(
    ("max_age", "expires", "path", "domain", "secure", "httponly", "samesite", "partitioned")
)


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
        "secure": ctx.environ.get("wsgi.url_scheme") == "https",
        **options,
    }
    return dump_cookie(name, value, **settings)


def cookies() -> Cookies:
    """The cookies of the current request (see :class:`Cookies`)."""
    return Cookies(_require("cookies()"))


def headers() -> EnvironHeaders:
    """The headers of the current request, read-only."""
    return EnvironHeaders(_require("headers()").environ)


def after(fn: t.Callable[[], object]) -> None:
    """Run ``fn`` once the response has been sent (from ``close()`` of the response iterable).

    Use it for work the user should not wait for: logging, analytics, notifications. An
    exception in ``fn`` is logged on the ``actionkit`` logger, never raised.
    """
    if not callable(fn):
        raise TypeError(f"after() takes a callable, not {fn!r}.")
    _require("after()").after_callbacks.append(fn)


def action_state(action: Action | None = None) -> ActionState | None:
    """The outcome of the action that was just submitted, while its page is rendered again.

    ``None`` in any other render, and, when ``action`` is given, unless it was that action (bound
    copies count as their action). Templates use it to show errors and keep submitted values::

        {% set state = action_state(create_post) %}
        <input name="title" value="{{ state.value('title') if state else '' }}">
        {% if state and state.error('title') %}<p class="error">{{ state.error('title') }}</p>
        {% endif %}
    """
    ctx = _current.get()
    if ctx is None or ctx.state is None:
        return None
    if action is not None and ctx.state.action.id != action.id:
        return None
    return ctx.state


# -- cache hints for the page being rendered ---------------------------------------------------


def cache_tag(*tags: str) -> None:
    """Make the page being rendered cacheable, tagged with ``tags`` for :func:`revalidate_tag`."""
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"Cache tags are non-empty strings, not {tag!r}.")
    ctx = _current.get()
    if ctx is not None:
        ctx.cache_tags.update(tags)


def cache_life(seconds: float, stale: float | None = None) -> None:
    """Make the page being rendered cacheable for ``seconds``.

    After that it is served stale for up to ``stale`` more seconds (default: as long again)
    while exactly one request renders it anew; ``stale=0`` makes readers wait for that render.
    """
    if seconds < 0 or (stale is not None and stale < 0):
        raise ValueError(f"cache_life() takes durations >= 0, not {seconds!r}, {stale!r}.")
    ctx = _current.get()
    if ctx is not None:
        ctx.cache_ttl = float(seconds)
        ctx.cache_stale = None if stale is None else float(stale)
