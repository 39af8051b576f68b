"""The page cache and the data cache, and the revalidation that keeps them honest.

Pages opt in while they render: call :func:`~actionkit.cache_tag` or
:func:`~actionkit.cache_life` from the view or the template, or answer with
``Cache-Control: s-maxage=N`` (plus an optional ``Cache-Tag: a, b`` header, removed before the
answer leaves). Only ``GET`` answers with status 200 are stored, and never one that sets a cookie,
says ``Cache-Control: private`` or ``no-store`` or ``Vary: *``, or shows somebody's
``action_state()``; a request with ``Authorization`` is neither answered from the cache nor
stored. The key is the host, the path and the query string, plus the request headers the answer
``Vary``-s on. ``HEAD`` is answered from the ``GET`` entry. Every answer says how it was served:
``Actionkit-Cache: HIT | MISS | STALE | BYPASS``. Answers that did not opt in stream through
unbuffered; the others are sent as they are produced and stored once they were sent whole.

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
``max_bytes``), as Next.js keeps a static page until it is revalidated. With
``cache_life(60, stale=30)`` it is fresh for 60 seconds; for 30 more it is served ``STALE`` to
concurrent readers while exactly one request renders it anew (``s-maxage=60,
stale-while-revalidate=30`` says the same); with ``stale=0`` readers wait for that one render
instead of all rendering at once. ``cache_life(0)`` stores nothing.

The guarantees:

- **Read your writes.** ``revalidate_path`` / ``revalidate_tag`` drop the entries in the store
  before they return, so no later request in any thread or process sharing the store gets them.
- **No stale store.** The store's generation is read before a page or value is computed; if a
  revalidation of its path or tags happened meanwhile, the result is served but not stored.
- **A failing store never fails a request**: the page is served uncached and the error is
  logged once on the ``actionkit`` logger. (A failing *revalidation* does raise: silently
  keeping stale entries would break read-your-writes.)

The data cache is :func:`cached`, for values rather than pages: the same store, the same tags.
A cached page that used cached values carries their tags too.

Inside a request, :func:`revalidate_path`, :func:`revalidate_tag` and :func:`cached` use the
store of the middleware handling it; anywhere else (a CLI command, a job, a webhook handled
outside the middleware) the process-wide :func:`~actionkit.stores.default_store`, which is also
the store of every middleware made with ``cache=None``.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import string
import threading
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
# How many pages PageCache remembers as stored for everyone (see PageCache._miss).
_SHARED_KEYS = 10_000
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
        # Misses of one page in this process wait for the render already under way, when the
        # page's last render was stored for everyone (no Vary): see _miss.
        self._lock = threading.Lock()
        self._rendering: dict[str, threading.Event] = {}
        self._shared: dict[str, None] = {}

    def __repr__(self) -> str:
        return f"<PageCache {self.store!r}>"

    # -- serving -------------------------------------------------------------------------------

    def serve(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        *,
        join: bool = True,
    ) -> t.Iterable[bytes]:
        """Answer a ``GET``/``HEAD`` from the cache, or from ``app`` (storing it if it opted in).

        ``app`` makes the request context current while it runs; the decision to store is taken
        when it calls ``start_response``. ``join=False``: on a miss, render rather than wait for
        a render of the page another thread has under way.
        """
        if "HTTP_AUTHORIZATION" in environ:
            # Somebody's own page: neither read nor stored (see _pass).
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
            return self._miss(app, environ, start_response, key, join)
        prepared = entry.prepared
        if prepared is not None and (entry.expires == INFINITY or self.clock() < entry.expires):
            # The hot path: a fresh page answered before (headers ready, no Vary).
            start_response(prepared[0], prepared[1][:])
            return () if environ["REQUEST_METHOD"] == "HEAD" else (entry.body,)
        now = self.clock()
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
        # After an action: another request's render may predate the action's writes, so do not
        # wait for one (those that start later may wait for this one).
        return render_app(functools.partial(self.serve, app, join=False), environ)

    def _miss(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        key: str,
        join: bool,
    ) -> t.Iterable[bytes]:
        """A page not in the cache: render it, or wait for the render of it under way.

        Right after a revalidation, every request for a popular page misses at once; in this
        process, one renders and the others wait for it, then read the cache again. That read
        is as fresh as any: the store refuses the render's page if a revalidation touching it
        completed after the render began, and the waiting request then renders itself.
        Only pages whose last render was stored for everyone take part (a page that is not
        cached, or varies with a header, would make requests wait for nothing).
        """
        if environ.get("REQUEST_METHOD") != "GET" or key not in self._shared:
            return self._pass(app, environ, start_response, lease=None)
        with self._lock:
            underway = self._rendering.get(key)
            if underway is None:
                done = self._rendering[key] = threading.Event()
        if underway is None:
            finish = functools.partial(self._finish, key, done)
            return self._pass(app, environ, start_response, lease=None, done=finish)
        if join and underway.wait(self.wait):
            entry = self._get(key)
            if entry is not None and "vary" not in entry.meta and self.clock() < entry.expires:
                return _answer(entry, environ, start_response, 0)
            # Its page was refused: render, as the one the next misses wait for if none is.
            return self._miss(app, environ, start_response, key, join=False)
        return self._pass(app, environ, start_response, lease=None)

    def _finish(self, key: str, done: threading.Event) -> None:
        with self._lock:
            if self._rendering.get(key) is done:
                del self._rendering[key]
        done.set()

    def _pass(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        lease: str | None,
        done: t.Callable[[], None] | None = None,
    ) -> t.Iterable[bytes]:
        """Call ``app``; store its answer if it opts in; release ``lease`` and call ``done``
        when that is over."""
        since: int | None = None
        if environ.get("REQUEST_METHOD") == "GET" and "HTTP_AUTHORIZATION" not in environ:
            # Taken before the render starts: a revalidation during the render is newer.
            since = self._generation()
        capture = _Capture()

        def intercept(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            # Called again with exc_info when the app fails after starting: that answer is
            # an error page, never stored.
            plan = None if exc_info is not None else self._plan(environ, status, headers, since)
            capture.plan = plan
            capture.started = True
            sent = [(k, v) for k, v in headers if k.lower() != "cache-tag"]
            sent.append((CACHE_STATUS_HEADER, "BYPASS" if plan is None else "MISS"))
            write = start_response(status, sent, exc_info)
            if plan is None:
                return write

            def recording_write(data: bytes) -> object:
                # The legacy write() callable: its bytes are part of the page too.
                capture.chunks.append(data)
                return write(data)

            return recording_write

        try:
            iterable = app(environ, intercept)
        except BaseException:
            if lease is not None:
                self._release(lease)
            if done is not None:
                done()
            raise
        if done is not None:
            done = functools.partial(self._rendered, environ, capture, done)
        if lease is None and (since is None or (capture.started and capture.plan is None)):
            if done is not None:
                done()
            return iterable  # nothing to store nor release: streamed through untouched
        on_close: t.Callable[[], None] | None = None
        if lease is not None:
            on_close = functools.partial(self._release, lease)
        if done is not None:
            on_close = done if on_close is None else _both(on_close, done)
        return _Recorder(iterable, capture, functools.partial(self._store, environ), on_close)

    def _rendered(
        self, environ: WSGIEnvironment, capture: _Capture, done: t.Callable[[], None]
    ) -> None:
        if capture.plan is None:
            self._shared.pop(_key(environ), None)  # not stored for everyone any more
        done()

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
            if ctx.cookies_read and not any(part.lower() == "cookie" for part in vary):
                return None  # it showed this request's cookies to everyone
            tags.update(ctx.cache_tags)
            if ctx.cache_ttl is not None:
                ttl, stale = ctx.cache_ttl, ctx.cache_stale
        if ttl is None and not tags:
            return None  # did not opt in
        if ttl == 0 and not stale:
            return None  # out of date as soon as stored
        stored = [(k, v) for k, v in headers if k.lower() not in _UNSTORED]
        return _Plan(status, stored, sorted(tags), ttl, stale, sorted(set(vary)), since)

    def _store(self, environ: WSGIEnvironment, plan: _Plan, body: bytes) -> None:
        now = self.clock()
        tags = plan.tags
        expires = INFINITY if plan.ttl is None else now + plan.ttl
        used: _Used | None = environ.get(_USED)
        if used is not None:
            # The page shows data from cached() functions: it carries their tags, and it is
            # not fresh for longer than they are.
            tags = sorted(used.tags.union(tags))
            expires = min(expires, used.expires)
        if expires == INFINITY:
            stale_until = INFINITY
        else:
            stale_until = expires + (expires - now if plan.stale is None else plan.stale)
        path = _path(environ)
        key = _key(environ)
        meta = {"status": plan.status, "headers": plan.headers}
        if plan.vary:
            self._shared.pop(key, None)
            marker = Entry(b"", {"vary": plan.vary}, tags=tags, path=path)
            self._set(key, marker, plan.since)
            key = _vary_key(key, plan.vary, environ)
        elif key not in self._shared:
            if len(self._shared) >= _SHARED_KEYS:
                self._shared.clear()
            self._shared[key] = None
        entry = Entry(body, meta, tags=tags, path=path, expires=expires, stale_until=stale_until)
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


class _Capture:
    """What the app's ``start_response`` decided, and the bytes it wrote through ``write()``."""

    __slots__ = ("chunks", "plan", "started")

    def __init__(self) -> None:
        self.plan: _Plan | None = None
        self.started = False
        self.chunks: list[bytes] = []


def _both(first: t.Callable[[], None], then: t.Callable[[], None]) -> t.Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            then()

    return both


class _Recorder:
    """Streams the app's answer through and, once it was sent whole, stores it (when
    ``start_response`` decided so); closes the app's iterable, then runs ``on_close``.
    """

    def __init__(
        self,
        iterable: t.Iterable[bytes],
        capture: _Capture,
        on_complete: t.Callable[[_Plan, bytes], None],
        on_close: t.Callable[[], None] | None,
    ) -> None:
        self._iterable = iterable
        self._capture = capture
        self._on_complete = on_complete
        self._on_close = on_close
        self._complete = False

    def __iter__(self) -> t.Iterator[bytes]:
        capture = self._capture
        chunks = capture.chunks
        for chunk in self._iterable:
            # A generator app calls start_response at its first step: look each time.
            if capture.plan is not None:
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
                plan = self._capture.plan
                if self._complete and plan is not None:
                    self._on_complete(plan, b"".join(self._capture.chunks))
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
_default_lock = threading.Lock()


def default_cache() -> PageCache:
    """The cache over the process-wide default store, used outside requests."""
    global _default
    if _default is None:
        with _default_lock:
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

# The environ key under which a page render collects what its cached() calls used.
_USED = "actionkit.cache.used"


class _Used:
    """The tags and the earliest expiry of the cached() values a page render used."""

    __slots__ = ("expires", "tags")

    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.expires = INFINITY


def cached(tags: TagSpec = (), ttl: float | None = None) -> t.Callable[[F], F]:
    """Cache a function's result by its arguments (the data cache, like Next.js's
    ``unstable_cache``).

    Arguments and results must be JSON values (the result comes back as JSON gives it: tuples
    as lists). ``tags`` may be format strings filled from the arguments, by position or by
    name, or a callable taking the same arguments, so one entry can be revalidated alone::

        @cached(tags=["posts", "post:{post_id}"])
        def get_post(post_id):
            return db.fetch_post(post_id)

        revalidate_tag("post:42")   # drops get_post(42) only; "posts" drops them all

    ``get_post(42)`` and ``get_post(post_id=42)`` share one entry. A cached page that calls a
    cached function carries that function's tags, and stays fresh no longer than its value,
    so ``revalidate_tag("post:42")`` also drops the pages that showed post 42.

    The function stays callable as before; ``fn.uncached`` calls it without the cache.

    :param tags: the tags of every entry (see above).
    :param ttl: seconds before the value is computed again; ``None``: until revalidated.
    """
    if ttl is not None and (not isinstance(ttl, int | float) or ttl < 0):
        raise ValueError(f"ttl must be a number of seconds >= 0 or None, not {ttl!r}.")
    if not callable(tags):
        specs = [tags] if isinstance(tags, str) else list(tags)
        for spec in specs:
            if not isinstance(spec, str) or not spec:
                raise ValueError(f"Cache tags are non-empty strings, not {spec!r}.")

    def decorator(fn: F) -> F:
        name = f"{fn.__module__}.{fn.__qualname__}"
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins
            signature = None
        if not callable(tags):
            _check_fields(name, specs, signature)

        @functools.wraps(fn)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            call = _bind(signature, args, kwargs)
            if call is None:
                return fn(*args, **kwargs)  # raises the usual TypeError for a bad call
            key = "data:" + name + ":" + _json_arguments(name, call[2])
            cache = _cache()
            now = cache.clock()
            entry = cache._get(key)
            if entry is not None and now < entry.expires:
                _record_use(entry.tags, entry.expires)
                return json.loads(entry.body)
            since = cache._generation()
            value = fn(*args, **kwargs)
            try:
                body = _json(value).encode()
            except (TypeError, ValueError):
                raise TypeError(
                    f"The cached function {name} must return a JSON value (str, int, float,"
                    f" bool, None, list, dict), not {value!r}."
                ) from None
            entry_tags = _tags(name, tags, args, kwargs, call)
            expires = INFINITY if ttl is None else cache.clock() + ttl
            _record_use(entry_tags, expires)
            if since >= 0 and ttl != 0:
                entry = Entry(body, {}, tags=entry_tags, expires=expires, stale_until=expires)
                cache._set(key, entry, since)
            return json.loads(body)

        wrapper.uncached = fn  # type: ignore[attr-defined]
        return t.cast(F, wrapper)

    return decorator


def _json(value: t.Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


_Call = tuple[tuple[t.Any, ...], dict[str, t.Any], dict[str, t.Any]]


def _bind(
    signature: inspect.Signature | None, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
) -> _Call | None:
    """``(positional, named, key arguments)`` of a call, defaults filled in, so that ``f(1)``
    and ``f(x=1)`` make one key; ``None`` when the call does not fit the signature.
    """
    if signature is None:
        return args, kwargs, {"args": args, "kwargs": kwargs}
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return bound.args, {**bound.arguments, **bound.kwargs}, bound.arguments


def _json_arguments(name: str, arguments: dict[str, t.Any]) -> str:
    try:
        return _json(arguments)
    except (TypeError, ValueError):
        pass
    for param, value in arguments.items():
        try:
            _json(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"The cached function {name} got {value!r} for {param!r}; its arguments must"
                " be JSON values (str, int, float, bool, None, list, dict) to make the key."
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _check_fields(name: str, specs: list[str], signature: inspect.Signature | None) -> None:
    """Refuse at decoration time a tag naming an argument the function does not have."""
    if signature is None:
        return
    params = signature.parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()):
        return
    for spec in specs:
        for _, field, _, _ in string.Formatter().parse(spec):
            if field is None:
                continue
            first = field.split(".", 1)[0].split("[", 1)[0]
            if first == "" or (first.isdigit() and int(first) >= len(params)):
                raise ValueError(
                    f"The tag {spec!r} of {name} refers to argument {{{first}}}, but the"
                    f" function takes {list(params)!r}; use their names or positions."
                )
            if not first.isdigit() and first not in params:
                raise ValueError(
                    f"The tag {spec!r} of {name} refers to {first!r}, which is not one of its"
                    f" arguments {list(params)!r}."
                )


def _tags(
    name: str,
    spec: TagSpec,
    args: tuple[t.Any, ...],
    kwargs: dict[str, t.Any],
    call: _Call,
) -> list[str]:
    if callable(spec):
        spec = spec(*args, **kwargs)
        if isinstance(spec, str):
            spec = [spec]
        tags = list(spec)
        for tag in tags:
            if not isinstance(tag, str) or not tag:
                raise ValueError(
                    f"The tags function of {name} returned {tag!r}; tags are non-empty strings."
                )
        return tags
    if isinstance(spec, str):
        spec = [spec]
    positional, named, _ = call
    return [tag.format(*positional, **named) for tag in spec]


def _record_use(tags: t.Iterable[str], expires: float) -> None:
    """Tell the page being rendered (if any) that it shows this cached value."""
    ctx = context.current()
    if ctx is None or ctx.in_action:
        return
    used: _Used | None = ctx.environ.get(_USED)
    if used is None:
        used = ctx.environ[_USED] = _Used()
    used.tags.update(tags)
    if expires < used.expires:
        used.expires = expires
