"""A write transaction on the SQLite file of a :class:`~actionkit.stores.SQLiteStore`: the
process's turn, SQLite's write lock asked for in short pauses, the commit, and what the writing
thread forgets of its reads once it has written."""

from __future__ import annotations

import sqlite3
import threading
import time
import typing as t

# A writer waiting for another one asks for the lock again after these pauses (seconds), the
# first doubled up to the last (see _begin).
_FIRST_PAUSE = 20e-6
_LAST_PAUSE = 1e-3


def forget_reads(local: threading.local) -> None:
    """Empty a thread's memory of reads: entries, keys found missing and the generation (the
    incarnation of the file its connection has open never changes)."""
    local.front = {}
    local.front_bytes = 0
    local.misses = {}
    local.generation = None


def _busy(error: sqlite3.OperationalError) -> bool:
    """Whether ``error`` says another connection holds the lock asked for."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _begin(db: sqlite3.Connection, timeout: float) -> None:
    """``BEGIN IMMEDIATE`` on ``db`` (whose busy handler is off), asked again while another
    connection writes: after 20 µs, then twice as long each time up to 1 ms, until ``timeout``
    seconds have passed; then the last ``database is locked`` error is raised.

    The writes of this store hold the lock for tens of microseconds: SQLite's handler, whose
    first pause is a millisecond, would make a waiting writer lose most of that millisecond.
    """
    deadline = None
    delay = _FIRST_PAUSE
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if not _busy(e):
                raise
            now = time.monotonic()
            deadline = now + timeout if deadline is None else deadline
            if now >= deadline:
                raise
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, _LAST_PAUSE)


class WriteTransaction:
    """``with`` it, the thread's connection ``db`` is in a write transaction, committed at the
    end (rolled back on an error), after which the thread forgets its reads.

    The threads of a process take turns on ``writing`` before they ask SQLite for its write
    lock: a thread waiting for another of its process sleeps until that one is done, rather
    than asking SQLite again and again (each asking takes the GIL, which the writer needs after
    each of its statements). Both waits together last at most ``timeout`` seconds."""

    def __init__(
        self,
        db: sqlite3.Connection,
        local: threading.local,
        timeout: float,
        writing: threading.Lock,
    ) -> None:
        self.db = db
        self.local = local
        self.timeout = timeout
        self.writing = writing

    def __enter__(self) -> sqlite3.Connection:
        db = self.db
        started = time.monotonic()
        if not self.writing.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            # SQLite's own busy handler sleeps a millisecond or more at its first retry,
            # longer than most of the writes it waits for; the write lock is asked for here
            # without it and again after short, growing pauses (see _begin), for what is
            # left of ``timeout``.
            db.execute("PRAGMA busy_timeout = 0")
            try:
                _begin(db, self.timeout - (time.monotonic() - started))
            except BaseException:
                db.execute(self._handler)
                raise
        except BaseException:
            self.writing.release()
            raise
        return db

    @property
    def _handler(self) -> str:
        # Every statement outside the write transactions keeps SQLite's handler (a read may
        # meet a recovery); set again once the write lock is let go.
        return f"PRAGMA busy_timeout = {int(self.timeout * 1000)}"

    def __exit__(self, exc_type: t.Any, *rest: t.Any) -> None:
        db = self.db
        try:
            if exc_type:
                db.execute("ROLLBACK")
            else:
                try:
                    db.execute("COMMIT")
                except BaseException:
                    # A commit that fails (a full disk) can leave the transaction open, and
                    # with it SQLite's write lock, which every other writer would then wait
                    # for in vain: end it, writing nothing.
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
        finally:
            self.writing.release()
            db.execute(self._handler)
            # PRAGMA data_version does not count a connection's own commits.
            forget_reads(self.local)


class Ended:
    """Held in a thread's (or greenlet's) locals with its connection: once the locals are
    dropped, the thread has ended, and its connection joins ``ended`` to be closed."""

    __slots__ = ("db", "ended")

    def __init__(self, db: sqlite3.Connection, ended: list[sqlite3.Connection]) -> None:
        self.db, self.ended = db, ended

    def __del__(self) -> None:
        self.ended.append(self.db)  # (list.append: atomic, no lock in a finalizer)
