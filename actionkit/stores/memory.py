"""The in-process store: a dict in least-recently-used order, checked lazily against a log of
revalidations.

A revalidation does not look for the entries it concerns: it records its *mark* (``tag:posts``,
``path:/posts``, ``layout:/blog``) with a new generation number, in constant time whatever the
size of the store or of the tag. Each entry carries a stamp, the generation at which it was last
known to be valid. A read whose entry's stamp is the current generation (nothing was revalidated
since) costs nothing more; otherwise the entry's few marks are looked up once, and it is either
dropped or stamped valid again. Out-of-date entries that are never read again go out with the
least recently used ones, and count against ``max_bytes`` until then.
"""

from __future__ import annotations

import threading
import time
import typing as t
from collections import OrderedDict

from .base import INFINITY, MAX_MARKS, Entry, mark_name, marks


class MemoryStore:
    """Keeps entries in this process's memory (the default store).

    Thread-safe; every thread of a threaded server shares it, but other processes do not — use
    :class:`~actionkit.stores.SQLiteStore` for several gunicorn workers.

    :param max_bytes: bound on the bytes held (see :attr:`Entry.size`); the least recently used
        entries go first.
    """

    #: How many revalidation marks to remember (see :data:`~actionkit.stores.base.MAX_MARKS`).
    max_marks = MAX_MARKS

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}.")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._generation = 0
        # The generation of the last revalidation of each "tag:", "path:" and "layout:" name,
        # oldest first; at most max_marks of them, the forgotten ones summed up by _floor.
        self._touched: dict[str, int] = {}
        # By the same names: the latest time.monotonic() by which the data any of its
        # revalidations was about had been written (see revalidate_and_set).
        self._written: dict[str, float] = {}
        self._floor = 0
        self._leases: dict[str, float] = {}
        self._bytes = 0
        # Every change is made under the lock; reads take none (each dict operation they do
        # is atomic under the GIL), so the hit path stays cheap.
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.stamp != self._generation and not self._still_valid(entry):
            with self._lock:
                if self._entries.get(key) is entry:
                    self._drop(key)
            return None
        try:
            self._entries.move_to_end(key)
        except KeyError:  # dropped by another thread meanwhile
            return None
        return entry

    def _still_valid(self, entry: Entry) -> bool:
        """Whether no revalidation since ``entry.stamp`` concerns it; if so, stamp it anew."""
        generation = self._generation  # read first: a revalidation after it is checked later
        touched = self._touched
        stamp = entry.stamp
        for name in marks(entry):
            if touched.get(name, 0) > stamp:
                return False
        # Read last: _mark raises the floor before it forgets marks, so a mark missed above
        # because it was just forgotten shows here.
        if stamp < self._floor:
            return False
        entry.stamp = generation
        return True

    def set(self, key: str, entry: Entry, since: int) -> bool:
        with self._lock:
            if not self._may_store(entry, since):
                return False
            return self._put(key, entry)

    def revalidate_and_set(
        self,
        revalidations: t.Sequence[tuple[str, str, bool]],
        key: str | None = None,
        entry: Entry | None = None,
        since: int = -1,
        *,
        started: float | None = None,
        written: float | None = None,
    ) -> bool:
        """See :mod:`actionkit.stores` (in one step under the lock)."""
        names = [mark_name(*revalidation) for revalidation in revalidations]
        now = time.monotonic()
        written = now if written is None else min(written, now)
        with self._lock:
            storing = (
                key is not None and entry is not None and self._may_store(entry, since, started)
            )
            for name in names:
                self._mark(name, written)
            if not storing:
                return False
            assert key is not None and entry is not None
            return self._put(key, entry)

    def _may_store(self, entry: Entry, since: int, started: float | None = None) -> bool:
        """Whether no revalidation since ``since`` concerns ``entry`` (under the lock); with
        ``started``, none whose data may have been written after that (see
        :mod:`actionkit.stores`)."""
        if self._generation == since:
            return True
        if since < self._floor:
            return False
        if started is None:
            return not self._touched_since(entry, since)
        touched, written = self._touched, self._written
        return not any(
            touched.get(name, 0) > since and written.get(name, INFINITY) >= started
            for name in marks(entry)
        )

    def _put(self, key: str, entry: Entry) -> bool:
        """Store ``entry`` as valid now (under the lock)."""
        size = entry.size
        self._drop(key)
        if size > self.max_bytes:
            return False  # it would push out everything else, and then itself
        entry.stamp = self._generation
        self._entries[key] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            # popitem, not next(iter(...)): readers move entries without the lock.
            self._bytes -= self._entries.popitem(last=False)[1].size
        return key in self._entries

    def _touched_since(self, entry: Entry, since: int) -> bool:
        touched = self._touched
        return any(touched.get(name, 0) > since for name in marks(entry))

    def _mark(self, name: str, written: float) -> None:
        """Record a revalidation of ``name`` about data written by ``written`` (under the
        lock)."""
        generation = self._generation + 1
        self._touched.pop(name, None)  # re-inserted last: the dict stays ordered by generation
        self._touched[name] = generation
        self._written[name] = max(written, self._written.get(name, written))
        if len(self._touched) > self.max_marks:
            forget = list(self._touched)[: max(1, self.max_marks // 2)]
            self._floor = self._touched[forget[-1]]
            for old in forget:
                del self._touched[old]
                del self._written[old]
        # Last: a reader that sees the new generation also sees the mark.
        self._generation = generation

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def generation(self) -> int:
        return self._generation

    def revalidate_tag(self, tag: str) -> None:
        with self._lock:
            self._mark(f"tag:{tag}", time.monotonic())

    def revalidate_path(self, path: str, layout: bool = False) -> None:
        name = mark_name("path", path, layout)
        with self._lock:
            self._mark(name, time.monotonic())

    def acquire(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._leases.get(key, 0.0) > now:
                return False
            self._leases[key] = now + ttl
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._leases.pop(key, None)

    def delete(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._leases.clear()
            self._bytes = 0

    def __len__(self) -> int:
        """The entries held, counting out-of-date ones not read since their revalidation."""
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes held now."""
        return self._bytes

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._entries)} entries, {self._bytes}/{self.max_bytes} bytes>"
