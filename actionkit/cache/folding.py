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

from ..rendering import Rendered, render_app
from ..stores.base import INFINITY, is_below, mark_name, marks
from . import policy

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

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

    def _send(self, fold: Fold) -> None:
        """Send the revalidations ``fold`` holds, with the time by which their data was written
        read in the same step (a render taking over others' revalidations moves it on)."""
        with _taking:
            revalidations = fold.pending[:]
            fold.pending.clear()
            written = fold.written
        if revalidations:
            self.safe.revalidate_and_set(revalidations, written=written)

    def _folds_into(self, environ: WSGIEnvironment, pending: list[tuple[str, str, bool]]) -> bool:
        """Whether the render of ``environ`` after an action should store its page with the
        action's revalidations: the store can, and the cached page, if any, is one of them
        drops (else it is read as usual, once they are sent)."""
        if not self.safe.folds or policy.personal(environ):
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

    def _render_in_turn(
        self, app: WSGIApplication, environ: WSGIEnvironment, fold: Fold
    ) -> Rendered:
        """Render ``environ`` after an action, storing its page with the revalidations of
        ``fold``, in the turn of the page's renders after actions (see _turn)."""
        with self._turn(policy.page_key(environ), fold) as page:
            if page is not None:
                return Rendered(page.status, page.headers[:], page.body)
            try:
                rendered = render_app(app, environ)
            finally:
                self._send(fold)  # with those it took over, before they answer
            if fold.shared:
                fold.page = rendered
            return rendered

    @contextlib.contextmanager
    def _turn(self, key: str, fold: Fold) -> t.Iterator[Rendered | None]:
        """Take the turn of the renders after actions of page ``key`` in this process, waiting
        (at most ``wait`` seconds) for the render that holds it: the next render begins once
        the page before is stored, so it shows that action's writes and neither page is
        refused for the other's revalidation (see :mod:`actionkit.stores`). Meanwhile,
        ``fold``'s revalidations are sent on their own once they have waited
        ``FOLD_PATIENCE`` seconds.

        The render that takes the turn takes over the revalidations of the renders waiting for
        it and stores them with its page: their actions are over, so it begins after their
        writes. When that page is one for everyone (stored without ``Vary``; a page showing
        an action's state never takes turns: it is neither read from nor stored in the
        cache), it is their page too, as a ``GET`` that hits the cache would be: this
        yields it to them once their revalidations are sent (they neither render it nor run
        its ``after()`` callbacks), and ``None`` to a render that is to render.
        """
        with self._lock:
            turn = self._turns.get(key)
            if turn is None:
                turn = self._turns[key] = Turn()
            turn.users += 1
        watched = _watch.add(fold, self._send)
        held = False
        try:
            held = self._wait_turn(turn, fold)
            yield None if fold.by is None else fold.by.page
        finally:
            _watch.discard(watched)  # what the watch is sending of it (the taken over too)
            with turn.cond:
                fold.over = True
                if held:
                    turn.depth -= 1
                    if not turn.depth:
                        turn.holder = None
                turn.cond.notify_all()
            with self._lock:
                turn.users -= 1
                if not turn.users:
                    del self._turns[key]

    def _wait_turn(self, turn: Turn, fold: Fold) -> bool:
        """Wait for ``turn`` and take it (``True``), unless a render that took it meanwhile took
        over ``fold``'s revalidations (then wait for that render to be over) or ``wait``
        seconds passed. The thread that holds the turn takes it again: a render of the page
        inside its own render does not wait for itself."""
        me = threading.get_ident()
        deadline = time.monotonic() + self.wait
        with turn.cond:
            turn.waiting.append(fold)
            while fold.by is None:
                if turn.holder is None or turn.holder == me:
                    turn.holder = me
                    turn.depth += 1
                    turn.waiting.remove(fold)
                    fold.take_over(turn.waiting)
                    turn.waiting.clear()
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    turn.waiting.remove(fold)
                    return False
                turn.cond.wait(left)
            while not fold.by.over:  # it sends what it took over before it is over
                turn.cond.wait()
        return False


class Fold:
    """What a page is stored with: the revalidations of the action it follows (if any) and
    when that action's writes were in (``written``), and when its render began (``started``,
    read after the generation), both ``time.monotonic()``.

    For the renders after actions that take turns (see Folding._turn): ``shared``, set once
    the page opted into the store for everyone; ``page``, that page;
    ``by``, the render that took over these revalidations; ``over``, once this render is
    done and its revalidations are sent.
    """

    __slots__ = ("by", "over", "page", "pending", "shared", "started", "written")

    def __init__(self, pending: list[tuple[str, str, bool]], written: float) -> None:
        self.pending = pending
        self.written = written
        self.started: float | None = None
        self.shared = False
        self.page: Rendered | None = None
        self.by: Fold | None = None
        self.over = False

    def take_over(self, others: list[Fold]) -> None:
        """Take the revalidations of ``others`` (renders after actions that are over) into
        this one's, to send with its page; their writes are in by ``written``'s new value."""
        with _taking:
            for other in others:
                self.pending.extend(other.pending)
                other.pending.clear()
                self.written = max(self.written, other.written)
                other.by = self


class Turn:
    """The turn of the renders after actions of one page in this process (see
    Folding._turn): the thread that holds it and how many times (``depth``), the renders
    waiting for it, and how many requests use it."""

    __slots__ = ("cond", "depth", "holder", "users", "waiting")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.holder: int | None = None
        self.depth = 0
        self.users = 0
        self.waiting: list[Fold] = []


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
        self.folds: dict[int, tuple[float, Fold, t.Callable[[Fold], None]]] = {}
        # The folds whose revalidations the thread is sending, with what it sets once sent.
        self.sending: dict[int, threading.Event] = {}
        self.thread: threading.Thread | None = None
        self.wake_at = 0.0
        self.count = 0

    def add(self, fold: Fold, send: t.Callable[[Fold], None]) -> int:
        """Watch ``fold``, whose revalidations ``send(fold)`` sends."""
        due = time.monotonic() + FOLD_PATIENCE
        with self.cond:
            self.count += 1
            self.folds[self.count] = (due, fold, send)
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

    def _send(self, sending: list[tuple[int, float, Fold, t.Callable[[Fold], None]]]) -> None:
        for number, _, fold, send in sending:
            try:
                send(fold)
            except Exception:  # the store's own failures are handled in flush
                logger.exception("actionkit: sending an action's revalidations failed")
            finally:
                with self.cond:
                    sent = self.sending.pop(number)
                sent.set()


_watch = Watch()
os.register_at_fork(after_in_child=_watch.after_fork)
