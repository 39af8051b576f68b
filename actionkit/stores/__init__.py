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
    total (counted with :attr:`Entry.size`) push out the least recently used ones; an entry
    bigger than ``max_bytes`` alone is not stored. A store may forget old revalidation marks
    (:data:`~actionkit.stores.base.MAX_MARKS`) if it then refuses every ``since`` older than
    the newest mark it forgot.

``generation() -> int``
    The number of revalidations so far (any monotonic counter shared by every process using the
    store), never negative. A store whose state can be lost while its users run on (a Redis
    server restarted empty or flushed, an SQLite file made again) would count from zero again,
    and a value computed before the loss would pass the check of ``set``: such a store makes
    the generation name its incarnation too (:func:`~actionkit.stores.base.make_generation`)
    and refuses every ``since`` of another incarnation.

``revalidate_tag(tag)``, ``revalidate_path(path, layout)``
    Increment the generation, record it for the tag / path, and drop every entry with that tag /
    that path (``layout``: that path and every path below it). A page is its exact path
    (``/posts/`` is not ``/posts``); a layout is the same with or without a trailing slash
    (:func:`~actionkit.stores.base.layout_root`: ``/posts/`` means ``/posts``, which covers
    ``/posts``, ``/posts/`` and ``/posts/1``, not ``/postsx``). When they return, no reader in
    any thread or process may get a dropped entry. Cost must not grow with the size of the
    store: drop the matching entries through an index (``SQLiteStore``, ``RedisStore``), or only
    record the mark and let ``get`` check an entry's marks when the generation has moved since
    it last did (``MemoryStore``: constant-time revalidation).

``revalidate_and_set(revalidations, key, entry, since, *, started, written) -> bool`` (optional)
    Apply ``revalidations`` (``("path", path, layout)`` or ``("tag", tag, False)``), in order,
    and store ``entry`` under ``key`` unless a revalidation *before* them concerns it, as one
    atomic step: no reader ever sees the revalidations without the entry. The page after an
    action is stored with the action's revalidations this way: a process reading meanwhile
    gets the old page, then the new one, never a miss.

    ``written`` is the ``time.monotonic()`` time by which the data the revalidations are
    about had been written (``None``: now). ``started`` is when the computation of ``entry``
    began, read after ``since``: with it, a revalidation since ``since`` keeps the entry out
    only if its data may have been written after ``started`` (the entry shows the data of an
    action in another worker that was over before the render began, even when that action's
    revalidation came during the render); without it, as ``set``. A revalidation with no
    ``written`` counts as written when it was made. The clock is the host's, which the other
    hosts sharing a store cannot compare with theirs: ``RedisStore`` ignores both times and
    stores by the rule of ``set``; ``MemoryStore`` and ``SQLiteStore`` follow them. Without
    the method, the revalidations are sent first, one by one, and the page is then rendered
    and stored as any other.

``acquire(key, ttl) -> bool``, ``release(key)``
    A lease: exactly one caller at a time gets ``True`` for a key until it releases it or ``ttl``
    seconds pass (so a crashed worker does not block regeneration forever). ``SQLiteStore``
    and ``RedisStore`` also let a key's lease go when ``set`` or ``revalidate_and_set`` stores
    or refuses an entry under it: the render that held it is over, or died with its process.

``delete(key)``, ``clear()``
    Drop one entry, or everything.

``get`` is on the path of every cache hit: keep it to one lookup (one query, one round trip).
Every method may raise. The page cache then counts the store as down in that process
(:mod:`actionkit.cache.safe`): its requests bypass the cache, served fresh, and the revalidations
the store could not take wait in memory, in order, to be delivered before the process reads from
the store again.

Entries hold bytes and a small JSON-able ``meta`` dict; nothing is ever pickled. A minimal
store, to show the shape (no indexes, so its revalidation costs grow with its size):

.. code-block:: python

    class DictStore:
        def __init__(self):
            self.entries, self.touched, self.gen = {}, {}, 0

        def get(self, key):
            return self.entries.get(key)

        def set(self, key, entry, since):
            if any(self.touched.get(name, 0) > since for name in marks(entry)):
                return False
            self.entries[key] = entry
            return True

        def generation(self):
            return self.gen

        def revalidate_tag(self, tag):
            self.gen += 1
            self.touched[f"tag:{tag}"] = self.gen
            for key, entry in list(self.entries.items()):
                if tag in entry.tags:
                    del self.entries[key]

        def revalidate_path(self, path, layout=False):
            self.gen += 1
            name = f"layout:{layout_root(path)}" if layout else f"path:{path}"
            self.touched[name] = self.gen
            for key, entry in list(self.entries.items()):
                if (is_below(entry.path, path) if layout else entry.path == path):
                    del self.entries[key]

        ...  # acquire, release, delete, clear

(:func:`~actionkit.stores.base.marks`, :func:`~actionkit.stores.base.layout_root` and
:func:`~actionkit.stores.base.is_below` spell out which revalidations concern an entry, so every
store agrees.)
"""

from __future__ import annotations

import threading
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
_default_lock = threading.Lock()


def default_store() -> MemoryStore:
    """The process-wide store used by middlewares and ``cached`` functions given none.

    Revalidating from anywhere in the process (a CLI command, a job) reaches it.
    """
    global _default
    if _default is None:
        with _default_lock:  # two threads starting at once must not make two stores
            if _default is None:
                _default = MemoryStore()
    return _default


def __getattr__(name: str) -> t.Any:
    # RedisStore needs the optional ``redis`` package: import it only when asked for.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
