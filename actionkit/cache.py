"""The page cache and the data cache, and the revalidation that keeps them honest.

Pages opt in while they render: call :func:`~actionkit.cache_tag` or
:func:`~actionkit.cache_life` from the view or the template, or answer with
``Cache-Control: s-maxage=N`` (plus an optional ``Cache-Tag: a, b`` header, removed before the
answer leaves). Only ``GET`` answers with status 200 are stored, and never one that sets a cookie,
answers a request with ``Authorization``, says ``Vary: *`` or shows somebody's
``action_state()``. ``Vary`` is part of the key. ``HEAD`` is answered from the ``GET`` entry.
Every answer says how it was served: ``Actionkit-Cache: HIT | MISS | STALE | BYPASS``.

.. code-block:: python

    @app.get("/posts")
    def posts():
        cache_tag("posts")  # kept until revalidate_tag("posts") or revalidate_path("/posts")
        return render_template("posts.html", posts=db.posts())

    @action
    def create_post(form):
        db.insert(form)
        revalidate_path("/posts")   # every later request, in any worker, sees the new list

A page tagged without a lifetime is kept until it is revalidated (or pushed out by
``max_bytes``). With ``cache_life(60, stale=30)`` it is fresh for 60 seconds; for 30 more it is
served ``STALE`` to concurrent readers while exactly one request renders it anew; with
``stale=0`` readers wait for that one render instead of all rendering at once.

The guarantees:

- **Read your writes.** ``revalidate_path`` / ``revalidate_tag`` drop the entries in the store
  before they return, so no later request in any thread or process sharing the store gets them.
- **No stale store.** The store's generation is read before a page or value is computed; if a
  revalidation of its path or tags happened meanwhile, the result is served but not stored.
- **A failing store never fails a request**: the page is served uncached and the error is
  logged once on the ``actionkit`` logger. (A failing *revalidation* does raise: silently
  keeping stale entries would break read-your-writes.)

The data cache is :func:`cached`, for values rather than pages: the same store, the same tags.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import typing as t
from dataclasses import dataclass

from . import context
from .protocol import CACHE_STATUS_HEADER
from .stores import Entry, Store, default_store
from .stores.base import INFINITY

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger("actionkit")

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

# Response headers that are never stored with a page.
_UNSTORED = frozenset(("cache-tag", "content-length", "connection", "transfer-encoding"))


@dataclass
class Rendered:
    """A page rendered to bytes (the re-render after an action)."""

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
    return Rendered(captured[0], captured[1], b"".join(chunks))


class PageCache:
    """Caches the pages of a WSGI application that opted in, in a store.

    :param store: see :mod:`actionkit.stores`; ``None`` is the process-wide
        :func:`~actionkit.stores.default_store`.
    :param clock: the time source for lifetimes (tests pass a fake one).
    :param lease: how long one request may take to regenerate a page before another may try.
    :param wait: how long a reader waits for a page being regenerated (``stale=0``).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        clock: t.Callable[[], float] = time.time,
        lease: float = 30.0,
        wait: float = 10.0,
    ) -> None:
        self.store: Store = default_store() if store is None else store
        self.clock = clock
        self.lease = lease
        self.wait = wait
        self._broken = False  # a store error has been logged

    def __repr__(self) -> str:
        return f"<PageCache {self.store!r}>"

    # -- serving -------------------------------------------------------------------------------

    def serve(
        self, app: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        """Answer a ``GET``/``HEAD`` from the cache, or from ``app`` (storing it if it opted in).

        ``app`` makes the request context current while it runs; the decision to store is taken
        when it calls ``start_response``.
        """
        if "HTTP_AUTHORIZATION" in environ:
            return self._pass(app, environ, start_response, lease=None)
        key = (
            f"page:{environ.get('HTTP_HOST', '')}{environ.get('SCRIPT_NAME', '')}"
            f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
        )
        try:
            entry = self.store.get(key)
        except Exception as e:
            self._failed(e)
            entry = None
        if entry is None:
            return self._pass(app, environ, start_response, lease=None)
        prepared = entry.prepared
        now = self.clock()
        if prepared is not None and now < entry.expires:
            # The hot path: a fresh page answered before (headers ready, no Vary).
            start_response(prepared[0], prepared[1][:])
            return () if environ["REQUEST_METHOD"] == "HEAD" else (entry.body,)
        if "vary" in entry.meta:
            key = _vary_key(key, entry.meta["vary"], environ)
            entry = self._get(key)
            if entry is None:
                return self._pass(app, environ, start_response, lease=None)
        if now < entry.expires:
            return _answer(entry, environ, start_response, 0)
        if self._acquire(key):
            # Another request may have regenerated it between our read and the lease.
            fresh = self._get(key)
            if fresh is not None and self.clock() < fresh.expires:
                self._release(key)
                return _answer(fresh, environ, start_response, 0)
            return self._pass(app, environ, start_response, lease=key)
        if now < entry.stale_until:
            return _answer(entry, environ, start_response, 1)
        fresh = self._await_fresh(key)
        if fresh is not None:
            return _answer(fresh, environ, start_response, 0)
        return self._pass(app, environ, start_response, lease=None)

    def render(
        self, app: WSGIApplication, environ: WSGIEnvironment, *, use_cache: bool
    ) -> Rendered:
        """Render a ``GET`` to bytes; read and store the cache only when ``use_cache``."""
        if not use_cache:
            return render_app(app, environ)
        return render_app(functools.partial(self.serve, app), environ)

    def _pass(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        lease: str | None,
    ) -> t.Iterable[bytes]:
        """Call ``app``; store its answer if it opts in; release ``lease`` when done."""
        since = self._generation() if environ.get("REQUEST_METHOD") == "GET" else None
        plan: list[_Plan] = []

        def intercept(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            decided = self._plan(environ, status, headers, since)
            if decided is not None:
                plan.append(decided)
            label = "MISS" if decided is not None else "BYPASS"
            sent = [(k, v) for k, v in headers if k.lower() != "cache-tag"]
            sent.append((CACHE_STATUS_HEADER, label))
            return start_response(status, sent, exc_info)

        try:
            iterable = app(environ, intercept)
        except BaseException:
            if lease is not None:
                self._release(lease)
            raise
        if not plan:
            if lease is None:
                return iterable
            return _Recorder(iterable, None, functools.partial(self._release, lease))
        return _Recorder(
            iterable, functools.partial(self._store, environ, plan[0]), self._closer(lease)
        )

    def _closer(self, lease: str | None) -> t.Callable[[], None] | None:
        return None if lease is None else functools.partial(self._release, lease)

    def _plan(
        self,
        environ: WSGIEnvironment,
        status: str,
        headers: list[tuple[str, str]],
        since: int | None,
    ) -> _Plan | None:
        """Whether and how to store an answer: decided from its status, headers and context."""
        if since is None or since < 0 or not status.startswith("200"):
            return None
        ctx = context.current()
        if ctx is not None and ctx.state is not None:
            return None  # a page showing somebody's submission
        ttl: float | None = None
        stale: float | None = None
        tags: set[str] = set()
        vary: list[str] = []
        for name, value in headers:
            lower = name.lower()
            if lower == "set-cookie":
                return None
            if lower == "vary":
                for part in value.split(","):
                    part = part.strip()
                    if part == "*":
                        return None
                    if part:
                        vary.append(part)
            elif lower == "cache-control":
                directives = _cache_control(value)
                if "no-store" in directives or "private" in directives:
                    return None
                if "s-maxage" in directives:
                    ttl = _seconds(directives["s-maxage"])
                    if "stale-while-revalidate" in directives:
                        stale = _seconds(directives["stale-while-revalidate"])
            elif lower == "cache-tag":
                tags.update(tag.strip() for tag in value.split(",") if tag.strip())
        if ctx is not None:
            tags.update(ctx.cache_tags)
            if ctx.cache_ttl is not None:
                ttl, stale = ctx.cache_ttl, ctx.cache_stale
        opted_in = ttl is not None or tags
        if not opted_in:
            return None
        stored = [(k, v) for k, v in headers if k.lower() not in _UNSTORED]
        return _Plan(status, stored, sorted(tags), ttl, stale, sorted(set(vary)), since)

    def _store(self, environ: WSGIEnvironment, plan: _Plan, body: bytes) -> None:
        now = self.clock()
        if plan.ttl is None:
            expires = stale_until = INFINITY
        else:
            expires = now + plan.ttl
            stale_until = expires + (plan.ttl if plan.stale is None else plan.stale)
        path = _path(environ)
        key = _key(environ)
        meta = {"status": plan.status, "headers": plan.headers}
        if plan.vary:
            marker = Entry(b"", {"vary": plan.vary}, tags=plan.tags, path=path)
            self._set(key, marker, plan.since)
            key = _vary_key(key, plan.vary, environ)
        entry = Entry(
            body, meta, tags=plan.tags, path=path, expires=expires, stale_until=stale_until
        )
        self._set(key, entry, plan.since)

    def _await_fresh(self, key: str) -> Entry | None:
        """Wait for another request's regeneration of ``key``; ``None`` if it did not come."""
        deadline = time.monotonic() + self.wait
        delay = 0.002
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            entry = self._get(key)
            if entry is not None and self.clock() < entry.expires:
                return entry
            if self._acquire(key):  # the regenerating request is done, or gave up
                self._release(key)
                entry = self._get(key)
                if entry is not None and self.clock() < entry.expires:
                    return entry
                return None
        return None

    # -- revalidation --------------------------------------------------------------------------

    def revalidate_path(self, path: str, type: t.Literal["page", "layout"] = "page") -> None:
        """Drop the pages of ``path`` (any query); ``type="layout"``: and every path below."""
        self.store.revalidate_path(path, type == "layout")

    def revalidate_tag(self, tag: str) -> None:
        """Drop every page and data entry tagged ``tag``."""
        self.store.revalidate_tag(tag)

    # -- a store that fails never fails the request -------------------------------------------

    def _failed(self, error: Exception) -> None:
        if not self._broken:
            self._broken = True
            logger.error("The cache store %r failed; serving uncached: %s", self.store, error)

    def _get(self, key: str) -> Entry | None:
        try:
            return self.store.get(key)
        except Exception as e:
            self._failed(e)
            return None

    def _set(self, key: str, entry: Entry, since: int) -> bool:
        try:
            return self.store.set(key, entry, since)
        except Exception as e:
            self._failed(e)
            return False

    def _generation(self) -> int:
        try:
            return self.store.generation()
        except Exception as e:
            self._failed(e)
            return -1  # nothing computed from here on is stored (see _Recorder)

    def _acquire(self, key: str) -> bool:
        try:
            return self.store.acquire(key, self.lease)
        except Exception as e:
            self._failed(e)
            return True  # render it ourselves

    def _release(self, key: str) -> None:
        try:
            self.store.release(key)
        except Exception as e:
            self._failed(e)


@dataclass
class _Plan:
    status: str
    headers: list[tuple[str, str]]
    tags: list[str]
    ttl: float | None
    stale: float | None
    vary: list[str]
    since: int


class _Recorder:
    """Streams the app's answer through and, once it was sent whole, stores it."""

    def __init__(
        self,
        iterable: t.Iterable[bytes],
        on_complete: t.Callable[[bytes], None] | None,
        on_close: t.Callable[[], None] | None,
    ) -> None:
        self._iterable = iterable
        self._on_complete = on_complete
        self._on_close = on_close
        self._chunks: list[bytes] | None = [] if on_complete is not None else None
        self._complete = False

    def __iter__(self) -> t.Iterator[bytes]:
        chunks = self._chunks
        for chunk in self._iterable:
            if chunks is not None:
                chunks.append(chunk)
            yield chunk
        self._complete = True

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            try:
                if self._complete and self._on_complete is not None and self._chunks is not None:
                    self._on_complete(b"".join(self._chunks))
            finally:
                if self._on_close is not None:
                    self._on_close()


def _answer(
    entry: Entry, environ: WSGIEnvironment, start_response: StartResponse, label: int
) -> t.Iterable[bytes]:
    """Answer from a stored entry (``label`` 0: HIT, 1: STALE)."""
    headers = [(str(k), str(v)) for k, v in entry.meta["headers"]]
    headers.append(("Content-Length", str(len(entry.body))))
    status = entry.meta["status"]
    if label == 0:
        headers.append((CACHE_STATUS_HEADER, "HIT"))
        # Later hits on this (in-process) entry reuse the ready status and headers.
        entry.prepared = (status, headers[:])
    else:
        headers.append((CACHE_STATUS_HEADER, "STALE"))
    start_response(status, headers)
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    return [entry.body]


def _path(environ: WSGIEnvironment) -> str:
    return str(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"


def _key(environ: WSGIEnvironment) -> str:
    return (
        f"page:{environ.get('HTTP_HOST', '')}{environ.get('SCRIPT_NAME', '')}"
        f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
    )


def _vary_key(key: str, names: list[str], environ: WSGIEnvironment) -> str:
    values = [
        environ.get("HTTP_" + name.upper().replace("-", "_"), "")
        if name.lower() not in ("content-type", "content-length")
        else environ.get(name.upper().replace("-", "_"), "")
        for name in names
    ]
    return key + "\0" + "\0".join(values)


def _cache_control(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            directives[name.lower()] = arg.strip().strip('"')
    return directives


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        return None


# -- the default cache, revalidation from anywhere, and the data cache ----------------------------

_default: PageCache | None = None


def default_cache() -> PageCache:
    """The cache over the process-wide default store, used outside requests."""
    global _default
    if _default is None:
        _default = PageCache()
    return _default


def _cache() -> PageCache:
    ctx = context.current()
    if ctx is not None and ctx.cache is not None:
        return ctx.cache
    return default_cache()


def revalidate_path(path: str, type: t.Literal["page", "layout"] = "page") -> None:
    """Drop the cached pages of ``path`` with any query; ``type="layout"``: and every path
    below it.

    Works inside actions and anywhere else (a webhook view, a CLI command, a job): inside a
    request it uses that middleware's store, elsewhere the process-wide default store.
    """
    if type not in ("page", "layout"):
        raise ValueError(f"Unknown revalidate type {type!r}; use 'page' or 'layout'.")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"revalidate_path() takes a path starting with '/', not {path!r}.")
    _cache().revalidate_path(path, type)
    ctx = context.current()
    if ctx is not None:
        ctx.revalidated_paths.append(path)


def revalidate_tag(tag: str) -> None:
    """Drop every cached page and data entry tagged ``tag``."""
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"revalidate_tag() takes a non-empty string, not {tag!r}.")
    _cache().revalidate_tag(tag)
    ctx = context.current()
    if ctx is not None:
        ctx.revalidated_tags.append(tag)


TagSpec = str | t.Iterable[str] | t.Callable[..., str | t.Iterable[str]]


def cached(tags: TagSpec = (), ttl: float | None = None) -> t.Callable[[F], F]:
    """Cache a function's result by its arguments (the data cache).

    Arguments and results must be JSON values. ``tags`` may be format strings filled from the
    arguments, or a callable taking the same arguments, so one entry can be revalidated alone::

        @cached(tags=["posts", "post:{0}"])
        def get_post(post_id):
            return db.fetch_post(post_id)

        revalidate_tag("post:42")   # drops get_post(42) only; "posts" drops them all

    :param ttl: seconds before the value is computed again; ``None``: until revalidated.
    """
    if ttl is not None and ttl < 0:
        raise ValueError(f"ttl must be >= 0 seconds or None, not {ttl!r}.")

    def decorator(fn: F) -> F:
        name = f"{fn.__module__}.{fn.__qualname__}"

        @functools.wraps(fn)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                key = "data:" + name + ":" + _json([args, kwargs])
            except (TypeError, ValueError):
                raise TypeError(
                    f"The cached function {name} takes JSON values as arguments, not"
                    f" {args!r} {kwargs!r}."
                ) from None
            cache = _cache()
            entry = cache._get(key)
            if entry is not None and cache.clock() < entry.expires:
                return json.loads(entry.body)
            since = cache._generation()
            value = fn(*args, **kwargs)
            try:
                body = _json(value).encode()
            except (TypeError, ValueError):
                raise TypeError(
                    f"The cached function {name} must return a JSON value, not {value!r}."
                ) from None
            expires = INFINITY if ttl is None else cache.clock() + ttl
            entry = Entry(
                body, {}, tags=_tags(tags, args, kwargs), expires=expires, stale_until=expires
            )
            if since >= 0:
                cache._set(key, entry, since)
            return json.loads(body)

        wrapper.uncached = fn  # type: ignore[attr-defined]
        return t.cast(F, wrapper)

    return decorator


def _json(value: t.Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _tags(spec: TagSpec, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> list[str]:
    if callable(spec):
        spec = spec(*args, **kwargs)
    if isinstance(spec, str):
        spec = [spec]
    return [tag.format(*args, **kwargs) for tag in spec]
