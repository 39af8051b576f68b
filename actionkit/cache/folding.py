"""Storing an action's revalidations with the page rendered for its answer (see
:meth:`PageCache.render <actionkit.cache.PageCache.render>`): which renders do, the record a
page is stored with, and the turns such renders take by page in a process."""

from __future__ import annotations

import contextlib
import threading
import typing as t

from ..stores.base import is_below, mark_name, marks
from . import policy

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .safe import SafeStore


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
        if pending:
            revalidations = pending[:]
            pending.clear()
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
    def _turn(self, key: str) -> t.Iterator[None]:
        """Wait (at most ``wait`` seconds) for the render after an action of page ``key`` under
        way in another thread of this process, and hold the turn while rendering."""
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
