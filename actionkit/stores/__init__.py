"""Where the page cache and the data cache keep their entries.

Three stores ship with actionkit:

- :class:`MemoryStore` (the default): one process; fastest.
- :class:`SQLiteStore`: several worker processes on one host (gunicorn ``-w 4``), embedded, no
  server to run.
- :class:`RedisStore`: several hosts sharing one Redis server.

The store interface
-------------------

A store holds :class:`Entry` objects by key, indexes them by tag and by path, and keeps a
*generation* counter that every revalidation increments. Writing your own store means
implementing :class:`Store`; these are the rules the cache relies on:

``get(key) -> Entry | None``
    The entry, or ``None``. Never an entry that a completed ``revalidate_*`` dropped.

``set(key, entry, since) -> bool``
    Store ``entry`` unless a revalidation that happened after generation ``since`` (read with
    ``generation()`` before the value was computed) touched one of ``entry.tags`` or
    ``entry.path`` (directly, or through a ``layout`` revalidation of a parent path). Check and
    write atomically; return whether the entry was stored. This is what keeps a render that
    started before a revalidation from being stored as fresh. Entries over ``max_bytes`` in
    total push out the least recently used ones.

``generation() -> int``
    The number of revalidations so far (any monotonic counter shared by every process using the
    store).

``revalidate_tag(tag)``, ``revalidate_path(path, layout)``
    Increment the generation, record it for the tag / path, and drop every entry with that tag /
    that path (``layout``: that path and every path below it). When they return, no reader in
    any thread or process may get a dropped entry. Cost should grow with the number of matching
    entries, not with the size of the store.

``acquire(key, ttl) -> bool``, ``release(key)``
    A lease: exactly one caller at a time gets ``True`` for a key until it releases it or ``ttl``
    seconds pass (so a crashed worker does not block regeneration forever).

``delete(key)``, ``clear()``
    Drop one entry, or everything.

Entries hold bytes and a small JSON-able ``meta`` dict; nothing is ever pickled.
"""

from __future__ import annotations

import typing as t

from .base import Entry, Store, ancestors
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "Entry",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "ancestors",
    "default_store",
]

_default: MemoryStore | None = None


def default_store() -> MemoryStore:
    """The process-wide store used by middlewares and ``cached`` functions given none."""
    global _default
    if _default is None:
        _default = MemoryStore()
    return _default


def __getattr__(name: str) -> t.Any:
    # RedisStore needs the optional ``redis`` package: import it only when asked for.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
