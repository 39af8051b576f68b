"""Storing an action's revalidations with the page rendered for its answer (see
:meth:`PageCache.render <actionkit.cache.PageCache.render>`): which renders do, the record a
page is stored with, the turns such renders take by page in a process, and the watch that sends
the revalidations of a render that takes long on their own."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import typing as t

from ..stores.base import INFINITY, is_below, mark_name, marks
from . import policy

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .safe import SafeStore

logger = logging.getLogger("actionkit")

#: How long (seconds) an action's revalidations wait for the page rendered after the action, to
#: be stored with it; past that they are sent on their own. They are the only record of the
#: action's writes the cache gets: a process killed while rendering (out of memory, a host
#: lost) loses those not sent yet, and the old page would stay. (The page is then stored by
#: the rule of its store: see :mod:`actionkit.stores`.)
FOLD_PATIENCE = 0.05

# How long (seconds) the watch (see Watch) goes on looking with no render to watch.
_WATCH_SLEEPS_AFTER = 1.0

# Takes of an action's revalidations (take()), one at a time: the render that stores its page
# and the watch may both reach for them.
_taking = threading.Lock()


def take(pending: list[tuple[str, str, bool]]) -> list[tuple[str, str, bool]]:
    """Empty ``pending`` and return what it held."""
    with _taking:
        taken = pending[:]
        pending.clear()
    return taken


class Folding:
    """The part of :class:`~actionkit.cache.PageCache` that sends an action's revalidations,
    on ``safe``, ``wait``, ``_lock`` and ``_turns`` of the cache."""

    safe: SafeStore
    wait: float
    _lock: threading.Lock
    _turns: dict[str, Turn]

    def flush(self, pending: list[tuple[str, str, bool]], written: float | None = None) -> None:
        """Send the revalidations in ``pending``, in order and in one write where the store
        can, and empty it. ``written``: the ``time.monotonic()`` time by which the data they
        are about was written (``None``: now)."""
        revalidations = take(pending)
        if revalidations:
            self.safe.revalidate_and_set(revalidations, written=written)

    def _folds_into(self, environ: WSGIEnvironment, pending: list[tuple[str, str, bool]]) -> bool:
        """Whether the render of ``environ`` after an action should store its page with the
        action's revalidations: the store can, and the cached page, if any, is one of them
        drops (else it is read as usual, once they are sent)."""
        if not self.safe.folds or "HTTP_AUTHORIZATION" in environ:
            return False
        path = policy.page_path(environ)
        for kind, name, layout in pending:
            if kind == "path" and (is_below(path, name) if layout else path == name):
                return True  # known without reading the page
        entry = self.safe.get(policy.page_key(environ))
        if entry is None:
            return True
        if "vary" in entry.meta:
            return False
        names = {mark_name(*revalidation) for revalidation in pending}
        return not names.isdisjoint(marks(entry))

    @contextlib.contextmanager
    def _turn(self, key: str, fold: Fold) -> t.Iterator[None]:
        """Wait (at most ``wait`` seconds) for the render after an action of page ``key`` under
        way in another thread of this process, and hold the turn while rendering; meanwhile,
        ``fold``'s revalidations are sent on their own once they have waited ``FOLD_PATIENCE``
        seconds."""
        watched = _watch.add(fold, self.flush)
        try:
            with self._take_turn(key):
                yield
        finally:
            _watch.discard(watched)

    @contextlib.contextmanager
    def _take_turn(self, key: str) -> t.Iterator[None]:
        with self._lock:
            turn = self._turns.get(key)
            if turn is None:
                turn = self._turns[key] = Turn()
            turn.users += 1
        held = turn.lock.acquire(timeout=self.wait)
        try:
            yield
        finally:
            if held:
                turn.lock.release()
            with self._lock:
                turn.users -= 1
                if not turn.users:
                    del self._turns[key]


class Fold:
    """What a page is stored with: the revalidations of the action it follows (if any) and
    when that action's writes were in (``written``), and when its render began (``started``,
    read after the generation), both ``time.monotonic()``."""

    __slots__ = ("pending", "started", "written")

    def __init__(self, pending: list[tuple[str, str, bool]], written: float) -> None:
        self.pending = pending
        self.written = written
        self.started: float | None = None


class Turn:
    """The turn of the renders after actions of one page (see PageCache.render): a re-entrant
    lock, so that a render of the page inside its own render does not wait for itself."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users = 0


class Watch:
    """The renders after actions under way in this process whose revalidations wait to be
    stored with their page (see FOLD_PATIENCE), and the thread that sends those that waited
    long enough. The thread starts at the first such render in a process, looks again at the
    next deadline or every half FOLD_PATIENCE, and sleeps once a second has passed with no
    render to watch; a render wakes it only if it is due before the thread looks again (a
    steady stream of actions does not wake it for each)."""

    def __init__(self) -> None:
        self.after_fork()

    def after_fork(self) -> None:
        # Another thread may have held the lock at the fork; the thread did not follow.
        self.cond = threading.Condition(threading.Lock())
        self.folds: dict[int, tuple[float, Fold, t.Callable[..., None]]] = {}
        # The folds whose revalidations the thread is sending, with what it sets once sent.
        self.sending: dict[int, threading.Event] = {}
        self.thread: threading.Thread | None = None
        self.wake_at = 0.0
        self.count = 0

    def add(self, fold: Fold, flush: t.Callable[..., None]) -> int:
        """Watch ``fold``, whose revalidations ``flush(pending, written)`` sends."""
        due = time.monotonic() + FOLD_PATIENCE
        with self.cond:
            self.count += 1
            self.folds[self.count] = (due, fold, flush)
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="actionkit-fold-watch", daemon=True
                )
                self.thread.start()
            elif due < self.wake_at:
                self.cond.notify()
            return self.count

    def discard(self, number: int) -> None:
        """Stop watching fold ``number`` (its render is over), once the thread is done sending
        its revalidations if it is at it: the action may not answer before they are sent."""
        with self.cond:
            self.folds.pop(number, None)
            sent = self.sending.get(number)
        if sent is not None:
            sent.wait()

    def _run(self) -> None:
        quiet_since = time.monotonic()
        with self.cond:
            while True:
                now = time.monotonic()
                due = [number for number, (at, _, _) in self.folds.items() if at <= now]
                if due:
                    sending = [(number, *self.folds.pop(number)) for number in due]
                    self.sending.update((number, threading.Event()) for number in due)
                    self.cond.release()
                    try:
                        self._send(sending)
                    finally:
                        self.cond.acquire()
                    continue
                if self.folds:
                    quiet_since = now
                    self.wake_at = min(at for at, _, _ in self.folds.values())
                elif now - quiet_since >= _WATCH_SLEEPS_AFTER:
                    self.wake_at = INFINITY
                else:
                    self.wake_at = now + FOLD_PATIENCE / 2
                self.cond.wait(None if self.wake_at == INFINITY else self.wake_at - now)

    def _send(self, sending: list[tuple[int, float, Fold, t.Callable[..., None]]]) -> None:
        for number, _, fold, flush in sending:
            try:
                flush(fold.pending, fold.written)
            except Exception:  # the store's own failures are handled in flush
                logger.exception("actionkit: sending an action's revalidations failed")
            finally:
                with self.cond:
                    sent = self.sending.pop(number)
                sent.set()


_watch = Watch()
os.register_at_fork(after_in_child=_watch.after_fork)
