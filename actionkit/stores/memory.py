"""The in-process store: a dict with tag and path indexes, least recently used out first."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from .base import MAX_MARKS, Entry, is_below, marks


class MemoryStore:
    """Keeps entries in this process's memory (the default store).

    Thread-safe; every thread of a threaded server shares it, but other processes do not — use
    :class:`~actionkit.stores.SQLiteStore` for several gunicorn workers.

    :param max_bytes: bound on the bytes held (bodies plus a little per entry); the least
        recently used entries go first.
    """

    #: How many revalidation marks to remember (see :data:`~actionkit.stores.base.MAX_MARKS`).
    max_marks = MAX_MARKS

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}.")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self._by_path: dict[str, set[str]] = {}
        self._generation = 0
        # The generation of the last revalidation of each "tag:", "path:" and "layout:" name,
        # oldest first; at most max_marks of them, the forgotten ones summed up by _floor.
        self._touched: dict[str, int] = {}
        self._floor = 0
        self._leases: dict[str, float] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        # No lock: the hit path stays cheap. Both calls are atomic under the GIL, and every
        # change of the dict happens under the lock, so a read after revalidate_* has returned
        # cannot see a dropped entry.
        entry = self._entries.get(key)
        if entry is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:  # dropped by another thread meanwhile
                return None
        return entry

    def set(self, key: str, entry: Entry, since: int) -> bool:
        size = entry.size
        with self._lock:
            if self._generation != since and (
                since < self._floor or self._touched_since(entry, since)
            ):
                return False
            self._drop(key)
            if size > self.max_bytes:
                return False  # it would push out everything else, and then itself
            self._entries[key] = entry
            self._bytes += size
            for tag in entry.tags:
                self._by_tag.setdefault(tag, set()).add(key)
            self._by_path.setdefault(entry.path, set()).add(key)
            while self._bytes > self.max_bytes:
                # popitem, not next(iter(...)): readers move entries without the lock.
                self._unindex(*self._entries.popitem(last=False))
            return key in self._entries

    def _touched_since(self, entry: Entry, since: int) -> bool:
        return any(self._touched.get(name, 0) > since for name in marks(entry))

    def _mark(self, name: str) -> None:
        """Record a revalidation of ``name`` (under the lock)."""
        self._generation += 1
        self._touched.pop(name, None)  # re-inserted last: the dict stays ordered by generation
        self._touched[name] = self._generation
        if len(self._touched) > self.max_marks:
            forget = list(self._touched)[: max(1, self.max_marks // 2)]
            self._floor = self._touched[forget[-1]]
            for old in forget:
                del self._touched[old]

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._unindex(key, entry)

    def _unindex(self, key: str, entry: Entry) -> None:
        """Forget an entry already taken out of ``_entries`` (under the lock)."""
        self._bytes -= entry.size
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
        keys = self._by_path.get(entry.path)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_path[entry.path]

    def generation(self) -> int:
        return self._generation

    def revalidate_tag(self, tag: str) -> None:
        with self._lock:
            self._mark(f"tag:{tag}")
            entries = self._entries
            for key in self._by_tag.pop(tag, ()):
                entry = entries.pop(key, None)
                if entry is not None:
                    self._unindex(key, entry)

    def revalidate_path(self, path: str, layout: bool = False) -> None:
        with self._lock:
            self._mark(f"{'layout' if layout else 'path'}:{path}")
            paths = [p for p in self._by_path if is_below(p, path)] if layout else [path]
            for p in paths:
                for key in list(self._by_path.get(p, ())):
                    self._drop(key)

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
            self._by_tag.clear()
            self._by_path.clear()
            self._leases.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes held now."""
        return self._bytes

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._entries)} entries, {self._bytes}/{self.max_bytes} bytes>"
