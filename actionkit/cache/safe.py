"""A store that never fails a request: the page cache's view of its store.

A store that raises (Redis unreachable or paused, an SQLite file made unwritable) must not turn
pages or actions into errors, nor let anybody be served a page older than a write they were told
had succeeded. From its first failure, the process counts the store as *down*:

- every request bypasses the cache: nothing is read from the store or written to it, a lease is
  taken as granted (the request renders the page itself) and the generation is ``-1`` (nothing
  computed meanwhile may be stored), so pages are served fresh, never stale, without waiting on
  the store;
- a revalidation it cannot deliver returns as if it had been delivered, so the action that
  asked for it succeeds once it has committed its writes; it is kept, in order, in memory, for
  the store (every wrapper of one store object in the process shares them);
- at most every :attr:`SafeStore.retry_every` seconds one caller (a request, or a thread
  started while revalidations are waiting, so that they go out even if no request comes) tries
  the store again: it delivers the waiting revalidations in order, and only when all of them
  are delivered is the store *up* again;
- a lease it may have left in the store (one taken there and released while the store was
  down, or one whose acquire got no answer: a server paused or far away carries it out later)
  is let go with them, before the store is used again: otherwise other processes' misses of
  that page would wait for a render that is over. A lease granted while the store was down
  was never in it, and is not let go in it;
- back up, the process still reads nothing from the store for :attr:`SafeStore.settle`
  seconds (it writes to it): the other processes that saw the outage deliver their own waiting
  revalidations meanwhile, so none of them reads a page that one of those would have dropped.

Going down is logged as a warning on the ``actionkit`` logger, coming back as an info line.

What an outage cannot keep is read-your-writes *across* processes for the time a revalidation
waits: a process that can reach the store (the outage was another host's network, or it had
no request while the store was away) may read a page that another process's waiting
revalidation drops once it is delivered, within about ``retry_every`` of the store's return.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import typing as t

from .health import CLEAR, Revalidation, health_of, healths

if t.TYPE_CHECKING:
    from ..stores import Entry, Store

logger = logging.getLogger("actionkit")


class SafeStore:
    """Wraps ``store`` so that its failures never fail a request nor serve a stale page (see
    the module).

    :param store: the store to wrap.
    :param clock: the time source of the retries (tests pass a fake one).
    """

    __slots__ = ("_clock", "_health", "store")

    #: Seconds between two tries of a store that is down.
    retry_every = 0.2
    #: Seconds a store that came back is written to but not read from.
    settle = 0.4
    #: Revalidations kept while the store is down; past that, the store is cleared when it is
    #: back instead.
    max_pending = 10_000
    #: Seconds an exiting process (a graceful restart, ``max_requests``) waits for its stores
    #: to take the revalidations still waiting for them; past that they are lost, and said so.
    exit_patience = 10.0

    def __init__(self, store: Store, *, clock: t.Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._health = health_of(store)

    def __repr__(self) -> str:
        return f"<SafeStore {self.store!r}>"

    @property
    def up(self) -> bool:
        """Whether the store is in use (it may still be settling, see the module)."""
        return self._health.up

    @property
    def pending(self) -> list[Revalidation]:
        """The revalidations waiting for the store, oldest first."""
        with self._health.lock:
            return list(self._health.pending)

    # -- reads and writes: skipped while the store is down --------------------------------------

    def get(self, key: str) -> Entry | None:
        health = self._health
        # The hot path reads two attributes; settling or down, _usable decides.
        if (not health.up or health.read_after) and not self._usable(reading=True):
            return None
        try:
            return self.store.get(key)
        except Exception as e:
            self.failed(e)
            return None

    def set(self, key: str, entry: Entry, since: int) -> bool:
        if not self._health.up and not self._usable():
            return False
        try:
            return self.store.set(key, entry, since)
        except Exception as e:
            self.failed(e)
            return False

    def generation(self) -> int:
        """The store's generation, or ``-1`` (store nothing computed from now on)."""
        if not self._health.up and not self._usable():
            return -1
        try:
            return self.store.generation()
        except Exception as e:
            self.failed(e)
            return -1

    def acquire(self, key: str, ttl: float) -> bool:
        if not self._health.up and not self._usable():
            return True  # render it ourselves
        try:
            taken = self.store.acquire(key, ttl)
        except Exception as e:
            self.failed(e, lease=key)  # it may have been taken all the same
            return True
        if taken:
            health = self._health
            with health.lock:
                health.held[key] = health.held.get(key, 0) + 1
        return taken

    def release(self, key: str) -> None:
        health = self._health
        with health.lock:
            held = health.held.get(key, 0)
            if not held:
                return  # granted without the store (down), or owed already
            if held == 1:
                del health.held[key]
            else:
                health.held[key] = held - 1
            if not health.up:  # (what _try decides under the lock)
                self._owe(key)  # taken before the store went down: let go when it is back
                return
        try:
            self.store.release(key)
        except Exception as e:
            self.failed(e, lease=key)

    # -- revalidations: delivered, or kept until they can be -----------------------------------

    def revalidate_path(self, path: str, layout: bool) -> None:
        self._revalidate(("path", path, layout))

    def revalidate_tag(self, tag: str) -> None:
        self._revalidate(("tag", tag, False))

    @property
    def folds(self) -> bool:
        """Whether the store can revalidate and store in one step (``revalidate_and_set``)."""
        return hasattr(self.store, "revalidate_and_set")

    def revalidate_and_set(
        self,
        revalidations: list[Revalidation],
        key: str | None = None,
        entry: Entry | None = None,
        since: int = -1,
        *,
        started: float | None = None,
        written: float | None = None,
    ) -> bool:
        """Deliver ``revalidations``, in order, and store ``entry`` under ``key`` unless a
        revalidation before them concerns it (see :mod:`actionkit.stores`): in one step where
        the store can (see :meth:`folds`), else one revalidation at a time and nothing stored.
        Whether ``entry`` was stored; revalidations that cannot be delivered are kept, as
        :meth:`revalidate_path` keeps them."""
        combined = getattr(self.store, "revalidate_and_set", None)
        if combined is None or (not self._health.up and not self._usable()):
            for revalidation in revalidations:
                self._revalidate(revalidation)
            return False
        try:
            return bool(
                combined(revalidations, key, entry, since, started=started, written=written)
            )
        except Exception as e:
            self.failed(e, *revalidations)
            return False

    def _revalidate(self, revalidation: Revalidation) -> None:
        health = self._health
        with health.lock:
            kept = not health.up
            if kept:
                self._keep(revalidation)
        if kept:
            self._usable()  # delivered now if the store is due for a try and answers
            return
        try:
            self._deliver(revalidation)
        except Exception as e:
            self.failed(e, revalidation)

    def _deliver(self, revalidation: Revalidation) -> None:
        kind, name, layout = revalidation
        if kind == "tag":
            self.store.revalidate_tag(name)
        elif kind == "path":
            self.store.revalidate_path(name, layout)
        else:
            self.store.clear()

    def _keep(self, revalidation: Revalidation) -> None:
        """Keep ``revalidation`` until the store answers (under the lock)."""
        health = self._health
        pending = health.pending
        health.requests += 1
        if CLEAR in pending:
            pass  # everything is dropped anyway
        elif len(pending) >= self.max_pending:
            pending.clear()
            pending[CLEAR] = health.requests
        else:
            # Kept once, in the place of its latest request: asked again while it was being
            # delivered, it goes out again (a render may have read the data in between).
            pending.pop(revalidation, None)
            pending[revalidation] = health.requests
        self._start_delivering()

    def _owe(self, lease: str) -> None:
        """Let ``lease`` go once the store answers (under the lock)."""
        self._health.leases.add(lease)
        self._start_delivering()

    def _start_delivering(self) -> None:
        """Start the thread that tries the store while anything waits for it (under the lock)."""
        health = self._health
        if health.thread is None or not health.thread.is_alive():
            health.thread = threading.Thread(
                target=self._deliver_pending, name="actionkit-revalidations", daemon=True
            )
            health.thread.start()

    # -- going down and coming back ------------------------------------------------------------

    def failed(
        self, error: Exception, *revalidations: Revalidation, lease: str | None = None
    ) -> None:
        """Count the store as down after ``error``; keep ``revalidations`` for later, and
        ``lease`` to let go."""
        health = self._health
        with health.lock:
            went_down = health.up
            health.up = False
            health.read_after = 0.0
            health.retry_at = self._clock() + self.retry_every
            for revalidation in revalidations:
                self._keep(revalidation)
            if lease is not None:
                self._owe(lease)
        if went_down:
            logger.warning(
                "The cache store %r failed; serving uncached, and keeping revalidations for"
                " it, until it answers again: %s",
                self.store,
                error,
            )

    def _usable(self, reading: bool = False) -> bool:
        """Whether the store may be used now: it is up (and, for ``reading``, has settled), or
        it was due for a try, answered it and took every waiting revalidation."""
        health = self._health
        now = self._clock()
        if health.up:
            if not reading:
                return True
            if now >= health.read_after:
                health.read_after = 0.0  # settled: the hot path of get checks no clock
                return True
            return False
        with health.lock:
            if health.trying or now < health.retry_at:
                return False
            health.trying = True
        try:
            back = self._try()
        finally:
            health.trying = False
        return back and not reading

    def _try(self) -> bool:
        """Try the store: a generation, the leases to let go, then every waiting revalidation,
        oldest first."""
        health = self._health
        try:
            self.store.generation()
            while True:
                with health.lock:
                    lease = health.leases.pop() if health.leases else None
                    if lease is None and not health.pending:
                        health.up = True
                        health.read_after = self._clock() + self.settle
                        delivered, health.delivered = health.delivered, 0
                        break
                    if lease is None:
                        revalidation, request = next(iter(health.pending.items()))
                if lease is not None:
                    try:
                        self.store.release(lease)
                    except BaseException:
                        with health.lock:
                            health.leases.add(lease)
                        raise
                    continue
                self._deliver(revalidation)
                with health.lock:
                    if health.pending.get(revalidation) == request:  # not asked for again
                        del health.pending[revalidation]
                    health.delivered += 1
        except Exception:
            with health.lock:
                health.retry_at = self._clock() + self.retry_every
            return False
        logger.info(
            "The cache store %r answers again; %d waiting revalidation(s) delivered.",
            self.store,
            delivered,
        )
        return True

    def _deliver_pending(self) -> None:
        """While revalidations or leases wait, try the store now and then (a thread, so that
        they go out even when no request comes)."""
        health = self._health
        while True:
            with health.lock:
                if not health.pending and not health.leases and health.up:
                    health.thread = None
                    return
                wait = max(0.0, health.retry_at - self._clock())
            time.sleep(min(max(wait, 0.01), self.retry_every))
            self._usable()


def _deliver_at_exit() -> None:
    """At interpreter exit, deliver what still waits for a store (within
    ``SafeStore.exit_patience``), else log what is lost: the deliverer is a daemon thread, and
    the pages those revalidations drop would otherwise be served for good once the store is
    back."""
    deadline = time.monotonic() + SafeStore.exit_patience
    for store, health in healths():
        safe = SafeStore(store)
        while True:
            with health.lock:
                waiting = [r for r, n in health.pending.items() if n > health.inherited]
                leases = len(health.leases)
            if not waiting:  # (an owed lease expires in the store by itself: one try, no wait)
                if leases:
                    safe._usable()
                break
            if time.monotonic() >= deadline:
                logger.error(
                    "The cache store %r is still away as this process exits: %d revalidation(s)"
                    " it was keeping for it are lost (the pages they drop stay until"
                    " revalidated again or past their lifetime): %s",
                    store,
                    len(waiting),
                    ", ".join(f"{kind} {name!r}" for kind, name, _ in waiting[:20]),
                )
                break
            safe._usable()
            time.sleep(0.02)


atexit.register(_deliver_at_exit)
