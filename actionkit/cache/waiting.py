"""Waiting for a page another request renders (see :meth:`PageCache._miss
<actionkit.cache.PageCache>`): polling the store for its page, and its lease."""

from __future__ import annotations

import threading
import time
import typing as t

if t.TYPE_CHECKING:
    from ..stores import Entry
    from .safe import SafeStore

# A miss waiting for another process's render reads the store after these pauses (seconds), the
# first doubled up to the last; from _LEASE_POLL on, it also asks for the lease (see
# Waiting._await_render).
_FIRST_POLL = 100e-6
_LEASE_POLL = 1e-3
_LAST_POLL = 5e-3

# A miss waits for another process's render of a page at most _PATIENCE times as long as its
# own last render of that page took (of any page, when it never rendered this one), and at
# least _LEAST_WAIT seconds (never more than the cache's ``wait``): the render may have died
# with its process, its lease left in the store.
_PATIENCE = 4.0
_LEAST_WAIT = 1.0


class Waiting:
    """The waits of :class:`~actionkit.cache.PageCache`, on ``safe``, ``clock``, ``lease``,
    ``wait`` and ``_shared`` of the cache."""

    safe: SafeStore
    clock: t.Callable[[], float]
    lease: float
    wait: float
    #: The pages this process stored for everyone, with how long their last render took here
    #: (seconds; ``None``: not known).
    _shared: dict[str, float | None]
    _lock: threading.Lock
    _rendering: dict[str, RenderUnderWay]

    def _await_underway(self, key: str, underway: RenderUnderWay) -> bool:
        """Wait for the render of ``key`` under way in this process: whether it ended within
        ``wait`` seconds or, when it is still under way then, ``wait`` more. (The request
        rendering it may have waited as long for another process's render, which never came:
        it renders the page itself now, and its waiters get its page instead of rendering
        too.)"""
        if underway.done.wait(self.wait):
            return True
        with self._lock:
            current = self._rendering.get(key)
        if current is not None and current is not underway:
            return underway.done.is_set()  # another render took its place: not waited for
        return underway.done.wait(self.wait)  # (gone: it ends at once)

    def _render_deadline(self, key: str) -> float:
        """When a miss of ``key`` stops waiting for another process's render of it
        (``time.monotonic()``; see _PATIENCE)."""
        took = self._shared.get(key)
        if took is None:  # served here only from the store: as long as any render here took
            # (a copy: threads serving other pages change the dict meanwhile)
            took = max(filter(None, tuple(self._shared.values())), default=0.0)
        return time.monotonic() + min(self.wait, max(_LEAST_WAIT, _PATIENCE * took))

    def _await_render(self, key: str, deadline: float) -> tuple[Entry | None, bool]:
        """Wait for the page of the render of ``key`` another process holds the lease for:
        ``(entry, False)`` once it is stored, or ``(None, True)`` once the lease was let go
        without it (that render's page was refused, or it failed) and this request took it;
        ``(None, False)`` at ``deadline`` (``time.monotonic()``).

        What is read here is what any later read of the store would give: a page the store
        took, which no revalidation completed before its render began concerns.
        """
        delay = _FIRST_POLL
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, False
            time.sleep(min(delay, left))
            entry = self.safe.get(key)
            if entry is not None and "vary" not in entry.meta and self.clock() < entry.expires:
                return entry, False
            if delay >= _LEASE_POLL and self.safe.acquire(key, self.lease):
                # (Asked only once a render had time to end: each ask is a write.)
                entry = self.safe.get(key)
                if entry is not None and "vary" not in entry.meta and self.clock() < entry.expires:
                    self.safe.release(key)
                    return entry, False
                return None, True
            delay = min(delay * 2, _LAST_POLL)

    def _await_fresh(self, key: str) -> Entry | None:
        """Wait for another request's regeneration of ``key``; ``None`` if it did not come
        (within the bound of a wait for another process's render: the process holding the
        lease may have been killed while regenerating, see _render_deadline)."""
        # A lease this process holds is a render alive here: waited for as long as ``wait``.
        held = key in self.safe._health.held
        deadline = time.monotonic() + self.wait if held else self._render_deadline(key)
        delay = 0.002
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            entry = self.safe.get(key)
            # (A Vary marker is no page: the regeneration now varies; the caller renders.)
            if entry is not None and "vary" not in entry.meta and self.clock() < entry.expires:
                return entry
            if self.safe.acquire(key, self.lease):  # the regenerating request is done, or gave up
                self.safe.release(key)
                entry = self.safe.get(key)
                if entry is not None and "vary" not in entry.meta and self.clock() < entry.expires:
                    return entry
                return None
        return None


class RenderUnderWay:
    """A render of a page under way in this process: its thread, and an event set when it is
    over."""

    __slots__ = ("done", "thread")

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.done = threading.Event()
