"""A store in an SQLite file, shared by the worker processes of one host.

WAL mode lets readers proceed while one process writes; revalidation and storing each run in one
``BEGIN IMMEDIATE`` transaction, so once ``revalidate_*`` has returned, every process reads the
new state. Each thread of each process opens its own connection, lazily: a store made before
gunicorn forks its workers (``--preload``) is safe to use in each of them, the forking thread
included. The threads of a process take turns to write; a writer that finds another process
writing asks SQLite for the lock again after 20 µs, then twice as long each time up to 1 ms
(SQLite's own busy handler would first wait a whole millisecond, longer than the writes here).

.. code-block:: python

    app.wsgi_app = ActionMiddleware(app.wsgi_app, cache=SQLiteStore("/var/cache/app.sqlite3"))

Each thread keeps the entries it has read, the keys it found missing and the generation in
memory, and answers from there while the database has not changed since. Every commit rewrites
the header of the WAL index that SQLite's unix VFS keeps in ``<path>-shm``, shared memory of
every connection of every process (its layout: https://www.sqlite.org/walformat.html); the store
maps that header read-only and compares it, which takes no lock, no system call and no release
of the GIL (threads of a ``gthread`` worker would queue for it). Where no such file is in use,
``PRAGMA data_version`` tells instead.

The file is a cache: deleting it while no worker runs loses nothing but speed (deleted under
running workers, they keep sharing it until a worker started since makes another at the path:
they then move to that one). That is also why it is written without ``fsync``:
on Linux the store notes the boot it was written in, and the first process to open it after a
reboot (the only way an unsynced file can be left damaged: a power loss or an OS crash) starts
it afresh. Where the boot cannot be known, writes are synced as SQLite's
``synchronous=NORMAL`` does. A process that crashes loses nothing either way.

A file is made again only when it was written before this boot or cannot be read at all
(``SQLITE_CORRUPT``, ``SQLITE_NOTADB``); a busy or locked database is an error like any
other, never a reason to delete the file under the workers using it. Each making of the file is
an *incarnation* with a random ID, which the generation carries (see
:data:`~actionkit.stores.base.COUNT_BITS`): the count of revalidations starts from zero in a new
file, so a value computed from a connection to the old file is never stored in the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import typing as t

from .base import (
    MAX_MARKS,
    Entry,
    make_generation,
    mark_name,
)
from .sqlite_file import _FRONT_BYTES, _FRONT_ENTRIES, _TOUCH_EVERY, boot_id
from .sqlite_marks import SQLiteMarks

__all__ = ["SQLiteStore", "boot_id"]

# Storing an entry: a new key, or one stored before, whose row is updated in place (see _put).
_INSERT = (
    "INSERT INTO entries (path, tags, body, meta, expires, stale_until, size, used, key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_KEEPING_USE = (
    "UPDATE entries SET path = ?, tags = ?, body = ?, meta = ?, expires = ?, stale_until = ?,"
    " size = ? WHERE key = ?"
)
_UPDATE = (
    "UPDATE entries SET path = ?, tags = ?, body = ?, meta = ?, expires = ?, stale_until = ?,"
    " size = ?, used = ? WHERE key = ?"
)


def _row(entry: Entry) -> tuple[str, str, int]:
    """The tags and meta of ``entry`` as stored (JSON), and its size."""
    return json.dumps(entry.tags), json.dumps(entry.meta), entry.size


class SQLiteStore(SQLiteMarks):
    """Keeps entries in the SQLite database at ``path`` (created if missing).

    :param path: the database file; every worker of the deployment must use the same one.
    :param max_bytes: bound on the bytes held; the least recently used entries go first.
    :param timeout: how long a writer waits for another one, in seconds.
    """

    #: How many revalidation marks to remember (see :data:`~actionkit.stores.base.MAX_MARKS`).
    max_marks = MAX_MARKS

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 256 * 1024 * 1024,
        timeout: float = 5.0,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}.")
        self.max_bytes = max_bytes
        super().__init__(path, timeout=timeout)

    # -- the store interface -------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        db, local = self._reads()
        front: dict[str, tuple[Entry, float]] = local.front
        now = time.time()
        found = front.get(key)
        if found is not None and now - found[1] <= _TOUCH_EVERY:
            return found[0]
        misses: dict[str, None] = local.misses
        if key in misses:
            return None  # a page that does not opt in is looked for on every request
        row = db.execute(
            "SELECT body, meta, path, tags, expires, stale_until, used, size FROM entries"
            " WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            if len(misses) >= _FRONT_ENTRIES:
                misses.clear()
            misses[key] = None
            return None
        body, meta, path, tags, expires, stale_until, used, size = row
        if now - used > _TOUCH_EVERY:
            # Best effort, never waiting for a writer (one stopped in its transaction would
            # hold every read for the whole timeout): when busy, a later read tries again.
            db.execute("PRAGMA busy_timeout = 0")
            try:
                with contextlib.suppress(sqlite3.OperationalError):
                    db.execute("UPDATE entries SET used = ? WHERE key = ?", (now, key))
            finally:
                db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            used = now
        entry = Entry(
            bytes(body),
            json.loads(meta),
            tags=json.loads(tags),
            path=path,
            expires=expires,
            stale_until=stale_until,
        )
        entry._size = size  # as counted when it was stored (Entry.size)
        if size <= _FRONT_BYTES // 4:
            if local.front_bytes + size > _FRONT_BYTES or len(front) >= _FRONT_ENTRIES:
                front.clear()
                local.front_bytes = 0
            front[key] = (entry, used)
            local.front_bytes += size
        return entry

    def set(self, key: str, entry: Entry, since: int) -> bool:
        row = _row(entry)  # made before the write lock is taken
        with self._transaction() as db:
            # Storing the key ends the render that held its lease (stored or refused): let it
            # go in this transaction, so that release() then has nothing to write.
            db.execute("DELETE FROM leases WHERE key = ?", (key,))
            if not self._may_store(db, entry, since):
                return False
            return self._put(db, key, entry, row)

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
        """See :mod:`actionkit.stores` (in one transaction)."""
        for revalidation in revalidations:
            mark_name(*revalidation)  # a bad one fails before anything is written
        row = None if entry is None else _row(entry)
        with self._transaction() as db:
            storing = False
            if key is not None and entry is not None:
                db.execute("DELETE FROM leases WHERE key = ?", (key,))
                storing = self._may_store(db, entry, since, started)
            for kind, name, layout in revalidations:
                # The entry under `key` is replaced below: not dropped first (its tag rows and
                # its pages stay where they are when it keeps its tags).
                keep = key if storing else None
                if kind == "tag":
                    self._revalidate_tag(db, name, written, keep)
                else:
                    self._revalidate_path(db, name, layout, written, keep)
            if not storing:
                return False
            assert key is not None and entry is not None and row is not None
            return self._put(db, key, entry, row)

    def _put(
        self, db: sqlite3.Connection, key: str, entry: Entry, row: tuple[str, str, int]
    ) -> bool:
        """Store ``entry``, whose ``row`` is ``_row(entry)`` (in a transaction); whether it is
        held."""
        tags, meta, size = row
        if size > self.max_bytes:
            # It would push out everything else, and then itself.
            self._forget(db, [key])
            return False
        old = db.execute("SELECT size, tags, used FROM entries WHERE key = ?", (key,)).fetchone()
        now = time.time()
        values = (entry.path, tags, entry.body, meta, entry.expires, entry.stale_until, size)
        # A key stored before is updated in place: its row keeps its rowid, so the indexes of
        # its key and path are not written again (a page stored after each action costs half
        # as much to commit). Its last use (the eviction order) is written again only once it
        # is older than half the interval at which reads write it: a page stored again and
        # again leaves the index of last uses alone, and readers need not write it either.
        recent = old is not None and now - old[2] <= _TOUCH_EVERY / 2
        if old is None:
            db.execute(_INSERT, (*values, now, key))
        elif recent:
            db.execute(_UPDATE_KEEPING_USE, (*values, key))
        else:
            db.execute(_UPDATE, (*values, now, key))
        if old is None or old[1] != tags:
            # An entry's tag rows go with it (_drop), so a new entry only adds its own.
            if old is not None:
                db.execute("DELETE FROM tags WHERE key = ?", (key,))
            db.executemany(
                "INSERT OR IGNORE INTO tags VALUES (?, ?)", [(tag, key) for tag in entry.tags]
            )
        grown = size - (old[0] if old else 0)
        if not grown:
            # The total is as the last write left it, within max_bytes (a page replaced by
            # itself after an action is mostly the same size).
            return True
        (total,) = db.execute(
            "UPDATE touched SET generation = generation + ? WHERE name = ' bytes'"
            " RETURNING generation",
            (grown,),
        ).fetchone()
        if total <= self.max_bytes:
            return True
        if recent:
            # Stored without its last use above: it is the most recent use, the last to go.
            db.execute("UPDATE entries SET used = ? WHERE key = ?", (now, key))
        while total > self.max_bytes:
            victims = db.execute("SELECT key, size FROM entries ORDER BY used LIMIT 32").fetchall()
            if not victims:
                break
            for victim, _ in victims:
                total -= self._drop(db, [victim])
                if total <= self.max_bytes:
                    break
        db.execute("UPDATE touched SET generation = ? WHERE name = ' bytes'", (total,))
        return db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None

    def generation(self) -> int:
        db, local = self._reads()
        if local.generation is None:
            (generation,) = db.execute("SELECT generation FROM touched WHERE name = ''").fetchone()
            local.generation = make_generation(self._incarnation(db, local), int(generation))
        return int(local.generation)

    def revalidate_tag(self, tag: str) -> None:
        with self._transaction() as db:
            self._revalidate_tag(db, tag)

    def revalidate_path(self, path: str, layout: bool = False) -> None:
        with self._transaction() as db:
            self._revalidate_path(db, path, layout)

    def acquire(self, key: str, ttl: float) -> bool:
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT until FROM leases WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] > now:
                return False
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?)", (key, now + ttl))
            return True

    def release(self, key: str) -> None:
        # Usually let go already, by set(): a read tells, without taking the write lock.
        if self._db().execute("SELECT 1 FROM leases WHERE key = ?", (key,)).fetchone() is None:
            return
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE key = ?", (key,))

    def delete(self, key: str) -> None:
        with self._transaction() as db:
            self._forget(db, [key])

    def clear(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM tags")
            db.execute("DELETE FROM leases")
            db.execute("UPDATE touched SET generation = 0 WHERE name = ' bytes'")

    def __len__(self) -> int:
        (count,) = self._db().execute("SELECT count(*) FROM entries").fetchone()
        return int(count)

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"
