"""The revalidation marks of an :class:`~actionkit.stores.SQLiteStore` file: recording a
revalidation (its mark, when its data was written, and dropping the entries it concerns) and
checking a value against the marks before it is stored (see :mod:`actionkit.stores`)."""

from __future__ import annotations

import sqlite3
import threading
import time

from .base import Entry, layout_root, mark_name, marks, split_generation
from .sqlite_file import _SPECIAL, SQLiteFile


class SQLiteMarks(SQLiteFile):
    """The marks of the file, for :class:`~actionkit.stores.SQLiteStore`."""

    #: How many revalidation marks to remember (see :data:`~actionkit.stores.base.MAX_MARKS`).
    max_marks: int

    def _incarnation(self, db: sqlite3.Connection, local: threading.local) -> int:
        """The incarnation of the file that this thread's connection ``db`` has open (read once:
        a connection keeps the file it opened, even once that is deleted and made again)."""
        if local.incarnation is None:
            row = db.execute("SELECT value FROM settings WHERE name = 'incarnation'").fetchone()
            local.incarnation = int(row[0], 16) if row is not None else 0
        return int(local.incarnation)

    def _may_store(
        self, db: sqlite3.Connection, entry: Entry, since: int, started: float | None = None
    ) -> bool:
        """Whether no revalidation since ``since`` concerns ``entry`` (in a transaction); with
        ``started``, none whose data may have been written after that."""
        incarnation, since = split_generation(since)
        if incarnation != self._incarnation(db, self._local):
            # Computed from another making of the file, whose count of revalidations
            # compares with this one's in no way.
            return False
        (generation,) = db.execute("SELECT generation FROM touched WHERE name = ''").fetchone()
        if generation == since:
            return True
        (floor,) = db.execute("SELECT generation FROM touched WHERE name = ' floor'").fetchone()
        if since < floor:
            return False
        names = marks(entry)
        if names and started is not None:
            placeholders = ",".join("?" * len(names))
            found = db.execute(
                "SELECT 1 FROM touched LEFT JOIN written ON written.name = touched.name"
                " AND written.generation = touched.generation"
                f" WHERE touched.name IN ({placeholders}) AND touched.generation > ?"
                " AND (written.at IS NULL OR written.at >= ?) LIMIT 1",
                (*names, since, started),
            ).fetchone()
            return found is None
        if names:
            placeholders = ",".join("?" * len(names))
            (latest,) = db.execute(
                f"SELECT max(generation) FROM touched WHERE name IN ({placeholders})", names
            ).fetchone()
            if latest is not None and latest > since:
                return False
        return True

    def _bump(self, db: sqlite3.Connection, name: str, written: float | None = None) -> None:
        """Record a revalidation of ``name``, about data written by ``written`` (a
        ``time.monotonic()`` time; ``None``: now)."""
        now = time.monotonic()
        written = now if written is None else min(written, now)
        (generation,) = db.execute(
            "UPDATE touched SET generation = generation + 1 WHERE name = '' RETURNING generation"
        ).fetchone()
        # The latest time by which the data of any revalidation of the name was written. When
        # the last one has no time of its own (a process of an earlier version made it), it
        # was made before now: now stands for it.
        db.execute(
            "INSERT OR REPLACE INTO written VALUES (?1, ?2, max(?3, coalesce((SELECT CASE"
            " WHEN written.generation = touched.generation THEN written.at ELSE ?4 END"
            " FROM touched LEFT JOIN written ON written.name = touched.name"
            " WHERE touched.name = ?1), ?3)))",
            (name, generation, written, now),
        )
        db.execute("INSERT OR REPLACE INTO touched VALUES (?, ?)", (name, generation))
        if generation % max(1, self.max_marks // 10) == 0:
            # Now and then, forget the oldest half of the marks once there are too many.
            (count,) = db.execute("SELECT count(*) FROM touched").fetchone()
            if count - len(_SPECIAL) > self.max_marks:
                (cutoff,) = db.execute(
                    "SELECT generation FROM touched WHERE name NOT IN (?, ?, ?)"
                    " ORDER BY generation LIMIT 1 OFFSET ?",
                    (*_SPECIAL, max(0, self.max_marks // 2 - 1)),
                ).fetchone()
                db.execute(
                    "DELETE FROM touched WHERE generation <= ? AND name NOT IN (?, ?, ?)",
                    (cutoff, *_SPECIAL),
                )
                db.execute("DELETE FROM written WHERE generation <= ?", (cutoff,))
                db.execute("UPDATE touched SET generation = ? WHERE name = ' floor'", (cutoff,))

    def _revalidate_tag(
        self,
        db: sqlite3.Connection,
        tag: str,
        written: float | None = None,
        keep: str | None = None,
    ) -> None:
        self._bump(db, mark_name("tag", tag), written)
        rows = db.execute("SELECT key FROM tags WHERE tag = ?", (tag,))
        self._forget(db, [k for (k,) in rows if k != keep])

    def _revalidate_path(
        self,
        db: sqlite3.Connection,
        path: str,
        layout: bool,
        written: float | None = None,
        keep: str | None = None,
    ) -> None:
        self._bump(db, mark_name("path", path, layout), written)
        if layout:
            path = layout_root(path)
            # "Below /posts" is the index range ["/posts/", "/posts0"): '0' follows '/'.
            prefix = "/" if path == "/" else path.rstrip("/") + "/"
            rows = db.execute(
                "SELECT key FROM entries WHERE path = ?"
                " UNION SELECT key FROM entries WHERE path >= ? AND path < ?",
                (path, prefix, prefix[:-1] + "0"),
            )
        else:
            rows = db.execute("SELECT key FROM entries WHERE path = ?", (path,))
        self._forget(db, [k for (k,) in rows if k != keep])

    @staticmethod
    def _drop(db: sqlite3.Connection, keys: list[str]) -> int:
        """Delete ``keys`` (inside a transaction); returns the bytes freed."""
        freed = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            placeholders = ",".join("?" * len(chunk))
            sizes = db.execute(
                f"DELETE FROM entries WHERE key IN ({placeholders}) RETURNING size", chunk
            ).fetchall()
            db.execute(f"DELETE FROM tags WHERE key IN ({placeholders})", chunk)
            freed += sum(size for (size,) in sizes)
        return freed

    def _forget(self, db: sqlite3.Connection, keys: list[str]) -> None:
        if keys:
            freed = self._drop(db, keys)
            db.execute(
                "UPDATE touched SET generation = generation - ? WHERE name = ' bytes'", (freed,)
            )
