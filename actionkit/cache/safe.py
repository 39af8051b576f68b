"""A store that never fails a request: the page cache's view of its store.

A store that raises (Redis unreachable, an SQLite file made unwritable) must not turn pages into
errors: reads answer "not cached", writes are skipped, a lease is taken as granted (the request
renders the page itself), and a generation of ``-1`` tells the caller that nothing computed from
here on may be stored. The error is logged once on the ``actionkit`` logger. Revalidations raise
to their caller: silently keeping entries a revalidation should have dropped would break the
read-your-writes promise.
"""

from __future__ import annotations

import logging
import typing as t

if t.TYPE_CHECKING:
    from ..stores import Entry, Store

logger = logging.getLogger("actionkit")


class SafeStore:
    """Wraps ``store`` so that its failures are logged and answered safely (see the module)."""

    __slots__ = ("_broken", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._broken = False  # an error has been logged

    def __repr__(self) -> str:
        return f"<SafeStore {self.store!r}>"

    def failed(self, error: Exception) -> None:
        """Log ``error`` (once per store)."""
        if not self._broken:
            self._broken = True
            logger.error("The cache store %r failed; serving uncached: %s", self.store, error)

    def get(self, key: str) -> Entry | None:
        try:
            return self.store.get(key)
        except Exception as e:
            self.failed(e)
            return None

    def set(self, key: str, entry: Entry, since: int) -> bool:
        try:
            return self.store.set(key, entry, since)
        except Exception as e:
            self.failed(e)
            return False

    def generation(self) -> int:
        """The store's generation, or ``-1`` (store nothing computed from now on)."""
        try:
            return self.store.generation()
        except Exception as e:
            self.failed(e)
            return -1

    def acquire(self, key: str, ttl: float) -> bool:
        try:
            return self.store.acquire(key, ttl)
        except Exception as e:
            self.failed(e)
            return True  # render it ourselves

    def release(self, key: str) -> None:
        try:
            self.store.release(key)
        except Exception as e:
            self.failed(e)

    def revalidate_path(self, path: str, layout: bool) -> None:
        self.store.revalidate_path(path, layout)

    def revalidate_tag(self, tag: str) -> None:
        self.store.revalidate_tag(tag)
