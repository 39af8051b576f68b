"""The page cache: answers ``GET`` and ``HEAD`` from the store, renders and stores the rest.

See :mod:`actionkit.cache` for the rules and guarantees; :mod:`.policy` decides what is stored,
:mod:`.recording` streams answers through while recording them, :mod:`.safe` keeps a failing
store from failing a request.
"""

from __future__ import annotations

import functools
import threading
import time
import typing as t

from .. import context
from ..protocol import CACHE_STATUS_HEADER
from ..rendering import Rendered, canonical_paths, render_app
from ..stores import Entry, Store, default_store
from ..stores.base import INFINITY
from . import policy
from .folding import Fold, Folding, Turn, take
from .recording import BYPASS, HIT, MISS, STALE, Capture, Recorder, answer_entry, both
from .safe import SafeStore
from .waiting import RenderUnderWay, Waiting

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


_SHARED_KEYS = 10_000  # how many pages PageCache remembers as stored for everyone (_miss)


class PageCache(Waiting, Folding):
    """Caches the pages of a WSGI application that opted in, in a store.

    :param store: see :mod:`actionkit.stores`; ``None`` is the process-wide
        :func:`~actionkit.stores.default_store`.
    :param clock: the time source for lifetimes (tests pass a fake one).
    :param lease: how long one request may take to regenerate a page before another may try.
    :param wait: how long a reader waits for a page another thread or process renders (past
        its lifetime with ``stale=0``, or after a revalidation); another process's, as it may
        have died with the lease: four times this process's last render of it, at least 1 s.
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
        #: The store as the cache uses it: its failures never fail a request.
        self.safe = SafeStore(self.store)
        self.clock = clock
        self.lease = lease
        self.wait = wait
        # Misses of one page in this process wait for the render already under way, when the
        # page's last render was stored for everyone (no Vary), with how long it took: _miss.
        self._lock = threading.Lock()
        self._rendering: dict[str, RenderUnderWay] = {}
        self._shared: dict[str, float | None] = {}
        # The renders after actions take turns by page (see render).
        self._turns: dict[str, Turn] = {}

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
        if policy.personal(environ):
            # Somebody's own page: neither read nor stored (see _pass).
            return self._pass(app, environ, start_response, lease=None)
        key = policy.page_key(environ)
        entry = self.safe.get(key)
        if entry is None:
            return self._miss(app, environ, start_response, key, join)
        prepared = entry.prepared
        if prepared is not None and (entry.expires == INFINITY or self.clock() < entry.expires):
            # The hot path: a fresh page answered before (headers ready, no Vary).
            start_response(prepared[0], prepared[1][:])
            return () if environ["REQUEST_METHOD"] == "HEAD" else (entry.body,)
        now = self.clock()
        vary: list[str] | None = None
        if "vary" in entry.meta:
            vary = entry.meta["vary"]
            key = policy.vary_key(key, vary, environ)
            entry = self.safe.get(key)
            if entry is None:
                return self._pass(app, environ, start_response, lease=None, vary=vary)
        elif key not in self._shared:  # for everyone, rendered elsewhere: misses wait too
            if len(self._shared) >= _SHARED_KEYS:
                self._shared.clear()
            self._shared[key] = None
        if now < entry.expires:
            return answer_entry(entry, environ, start_response, HIT)
        if environ.get("REQUEST_METHOD") != "GET":
            # A HEAD's render is never stored: its lease would hold GETs up (stale=0) for nothing.
            if now < entry.stale_until:
                return answer_entry(entry, environ, start_response, STALE)
            return self._pass(app, environ, start_response, lease=None)
        if self.safe.acquire(key, self.lease):
            # Another request may have regenerated it between our read and the lease.
            fresh = self.safe.get(key)
            if fresh is not None and "vary" not in fresh.meta and self.clock() < fresh.expires:
                self.safe.release(key)
                return answer_entry(fresh, environ, start_response, HIT)
            return self._pass(app, environ, start_response, lease=key, vary=vary)
        if now < entry.stale_until:
            return answer_entry(entry, environ, start_response, STALE)
        fresh = self._await_fresh(key)
        if fresh is not None:
            return answer_entry(fresh, environ, start_response, HIT)
        return self._pass(app, environ, start_response, lease=None, vary=vary)

    def render(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        *,
        use_cache: bool,
        pending: list[tuple[str, str, bool]] | None = None,
    ) -> Rendered:
        """Render a ``GET`` to bytes; read and store the cache only when ``use_cache``.

        ``pending``: the revalidations of the action this render follows, not sent yet (see
        :attr:`~actionkit.context.RequestContext.pending`); they are sent by the time this
        returns. Where the store can, and they concern the page, they go in the one write that
        stores the page rendered here (:meth:`SafeStore.revalidate_and_set`): no process ever
        misses the page after the action, the old page is served until the new one replaces
        it, and nobody renders it but this request. (The action has not answered yet: nobody
        has been told of its writes while the old page is served.)

        Such renders of one page in this process take turns, each for every action waiting for
        it (see :meth:`Folding._turn`); across processes the times of the writes tell.
        """
        if pending:
            # Called once the action is over: its writes are in by now.
            written = time.monotonic()
            try:
                if use_cache and self._folds_into(environ, pending):
                    fold = Fold(pending, written)
                    pass_ = functools.partial(self._pass, app, lease=None, fold=fold)
                    return self._render_in_turn(pass_, environ, fold)
            finally:
                self.flush(pending, written)  # what the render did not store them with
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
        Only pages whose last render was stored for everyone take part (one not cached, too big
        for the store or varying with a header would make requests wait for nothing).

        A render is over when its answer has been iterated whole (it is stored then), closed,
        or has failed. A request never waits for a render started in its own thread: that one
        is not being iterated while it waits (a test client holding an answer it has not
        read); the new render takes its place.

        Across processes and hosts, the one render of a process takes the page's lease in the
        store (as the regeneration of a stale page does) for as long as it runs, and a miss
        that finds the lease taken waits for that render's page instead of rendering too (see
        _await_render), for at most four times as long as its own last render of the page
        took, at least a second, and never more than ``wait`` seconds: a lease outlives a
        process killed while rendering. The render after an action takes the lease but never
        waits for one: the render holding it may predate the action's writes.
        """
        if environ.get("REQUEST_METHOD") != "GET" or key not in self._shared:
            return self._pass(app, environ, start_response, lease=None)
        thread = threading.get_ident()
        with self._lock:
            underway = self._rendering.get(key)
            replaced = underway is not None and underway.thread == thread
            if underway is None or replaced:
                mine = self._rendering[key] = RenderUnderWay(thread)
                underway = None
        if underway is None:
            finish = functools.partial(self._finish, key, mine)
            leased = self.safe.acquire(key, self.lease)
            if not leased and join and not replaced:
                # Another process renders it (a lease held in this thread is a render nobody
                # iterates: not waited for).
                entry, leased = self._await_render(key, self._render_deadline(key))
                if entry is not None:
                    finish()
                    return answer_entry(entry, environ, start_response, HIT)
            lease = key if leased else None
            return self._pass(app, environ, start_response, lease=lease, done=finish)
        if join and self._await_underway(key, underway):
            entry = self.safe.get(key)
            if entry is not None and "vary" not in entry.meta and self.clock() < entry.expires:
                return answer_entry(entry, environ, start_response, HIT)
            # Its page was refused: render, as the one the next misses wait for if none is.
            return self._miss(app, environ, start_response, key, join=False)
        return self._pass(app, environ, start_response, lease=None)

    def _finish(self, key: str, render: RenderUnderWay) -> None:
        with self._lock:
            if self._rendering.get(key) is render:
                del self._rendering[key]
        render.done.set()

    def _pass(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        lease: str | None,
        done: t.Callable[[], None] | None = None,
        fold: Fold | None = None,
        vary: list[str] | None = None,
    ) -> t.Iterable[bytes]:
        """Call ``app``; store its answer if it opts in (with the revalidations in ``fold``,
        see :meth:`render`, and varying on ``vary`` too: an answer without the stored page's
        ``Vary`` must not replace its variants); release ``lease``, call ``done`` when over."""
        since: int | None = None
        began = 0.0
        if environ.get("REQUEST_METHOD") == "GET" and not policy.personal(environ):
            # Taken before the render starts: a revalidation during the render is newer.
            since = self.safe.generation()
            began = time.monotonic()  # read after since (see stores)
        capture = Capture()
        looked_up = policy.page_key(environ), policy.page_url(environ)

        def intercept(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            # Called again with exc_info when the app fails after starting: never stored.
            ctx = context.current()  # the page's own: intercept runs inside the app
            # (An authentication middleware inside may have set REMOTE_USER meanwhile.)
            mine = exc_info is not None or policy.personal(environ)
            plan = None if mine else policy.plan_for(ctx, status, headers, since)
            if vary and plan is not None:
                plan.vary = sorted(set(vary).union(plan.vary))
            capture.hints = None if ctx is None else ctx.hints
            capture.ctx = ctx
            if ctx is not None:
                ctx.hints.planned = True
            capture.plan = plan
            capture.started = True
            sent = [(k, v) for k, v in headers if k.lower() != "cache-tag"]
            sent.append((CACHE_STATUS_HEADER, BYPASS if plan is None else MISS))
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
                self.safe.release(lease)
            if done is not None:
                done()
            raise
        if done is not None:
            done = functools.partial(self._rendered, looked_up[0], capture, done)
        if lease is None and (since is None or (capture.started and capture.plan is None)):
            if done is not None:
                done()
            return iterable  # nothing to store nor release: streamed through untouched
        on_close: t.Callable[[], None] | None = None
        if lease is not None:
            on_close = functools.partial(self.safe.release, lease)
        if done is not None:
            on_close = done if on_close is None else both(on_close, done)
        if fold is None:
            fold = Fold([], 0.0)
        fold.started = began
        # The page's key and path now: a framework may give its environ other paths later.
        where = policy.key_after(environ, *looked_up), policy.page_path(environ)
        store = functools.partial(self._store, environ, where, capture, fold=fold)
        return Recorder(iterable, capture, store, on_close)

    def _rendered(self, key: str, capture: Capture, done: t.Callable[[], None]) -> None:
        if capture.plan is None:
            self._shared.pop(key, None)  # not stored for everyone any more (key: as looked up)
        done()

    def _store(
        self,
        environ: WSGIEnvironment,
        where: tuple[str, str],
        capture: Capture,
        plan: policy.Plan,
        body: bytes,
        fold: Fold,
    ) -> None:
        hints = capture.hints
        if hints is not None and policy.read_cookies(hints, plan.vary):
            capture.plan = None  # (streamed, it read them once its plan was made) see _rendered
            return
        now = self.clock()
        tags = plan.tags
        expires = INFINITY if plan.ttl is None else now + plan.ttl
        started = fold.started
        if hints is not None and hints.data_tags:
            # The page shows data from cached() functions: it carries their tags, and is not
            # fresh longer than they are. That data is new once a revalidation of it is
            # delivered, not once it was written: the render's start proves nothing.
            tags = sorted(hints.data_tags.union(tags))
            started = None
        if hints is not None:
            expires = min(expires, hints.data_expires)
        if expires == INFINITY:
            stale_until = INFINITY
        else:
            stale_until = expires + (expires - now if plan.stale is None else plan.stale)
        if stale_until <= now:  # it shows a cached() value that is not kept (ttl=0): nor is it
            capture.plan = None  # (see _rendered)
            return
        key, path = where
        meta = {"status": plan.status, "headers": plan.headers}
        entry = Entry(body, meta, tags=tags, path=path, expires=expires, stale_until=stale_until)
        fold.shared = not plan.vary
        if plan.vary:
            self.flush(fold.pending, fold.written)
            self._shared.pop(key, None)
            marker = Entry(b"", {"vary": plan.vary}, tags=tags, path=path)
            self.safe.set(key, marker, plan.since)
            key = policy.vary_key(key, plan.vary, environ)
        elif entry.size > getattr(self.safe.store, "max_bytes", entry.size):
            self._shared.pop(key, None)  # never held: its misses must not wait for it
        else:
            if len(self._shared) >= _SHARED_KEYS and key not in self._shared:
                self._shared.clear()
            self._shared[key] = time.monotonic() - fold.started if fold.started else None
        if fold.pending or self.safe.folds:
            # Stored by the rule for values whose computation's start is known (see stores):
            # a revalidation made during the render about data written before it began does
            # not keep the page out.
            self.safe.revalidate_and_set(
                take(fold.pending),
                key,
                entry,
                plan.since,
                started=started,
                written=fold.written,
            )
        else:
            self.safe.set(key, entry, plan.since)

    # -- revalidation, and the store as the data cache uses it ---------------------------------

    def revalidate_path(self, path: str, type: t.Literal["page", "layout"] = "page") -> None:
        """Drop the pages of ``path`` (any query); ``type="layout"``: and every path below."""
        for each in canonical_paths(path):
            self.safe.revalidate_path(each, type == "layout")

    def revalidate_tag(self, tag: str) -> None:
        """Drop every page and data entry tagged ``tag``."""
        self.safe.revalidate_tag(tag)

    def lookup(self, key: str) -> Entry | None:
        """The entry under ``key``, or ``None`` (also when the store fails)."""
        return self.safe.get(key)

    def generation(self) -> int:
        """The store's generation, to pass to :meth:`put`; ``-1`` when the store fails."""
        return self.safe.generation()

    def put(self, key: str, entry: Entry, since: int) -> bool:
        """Store ``entry`` unless a revalidation since generation ``since`` concerns it."""
        return since >= 0 and self.safe.set(key, entry, since)
