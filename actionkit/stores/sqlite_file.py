"""The SQLite file under :class:`~actionkit.stores.SQLiteStore`: its schema, when it is made
again (a reboot, damage), the connections of each thread and process, and the mapped header of
its WAL index (its write transactions: :mod:`actionkit.stores.sqlite_writes`). See
:mod:`actionkit.stores.sqlite` for why each is done as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import secrets
import sqlite3
import threading
import time
import typing as t
import weakref

from .sqlite_index import _WAL_HEADER, _wal_index_maps
from .sqlite_writes import Ended, WriteTransaction, forget_reads

logger = logging.getLogger("actionkit")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, path TEXT NOT NULL, tags TEXT NOT NULL, body BLOB NOT NULL,
    meta TEXT NOT NULL, expires REAL NOT NULL, stale_until REAL NOT NULL, size INTEGER NOT NULL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_path ON entries (path);
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE TABLE IF NOT EXISTS tags (tag TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (tag, key))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_key ON tags (key);
CREATE TABLE IF NOT EXISTS touched (name TEXT PRIMARY KEY, generation INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS written (
    name TEXT PRIMARY KEY, generation INTEGER NOT NULL, at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO touched VALUES ('', 0);
INSERT OR IGNORE INTO touched VALUES (' bytes', 0);
INSERT OR IGNORE INTO touched VALUES (' floor', 0);
"""
# In `touched`, the row '' holds the generation, ' bytes' the bytes held, ' floor' the highest
# generation of the revalidation marks forgotten (see base.MAX_MARKS); the other rows are marks.
# `written` holds, by mark, the time.monotonic() by which the data of its revalidations had been
# written, and the generation it is of (a mark made by a version without the table has none):
# the clock is the host's, as the file is.
_SPECIAL = ("", " bytes", " floor")

# Connections inherited through fork() must never be used, nor closed (closing one runs SQLite's
# cleanup on state shared with the parent); a child keeps them referenced here instead.
_inherited: list[sqlite3.Connection] = []

# Every file of the process: a forked child leaves their parent's connections at once, even in
# the thread that forked, which still holds one (gunicorn --preload forks its main thread).
_files: weakref.WeakSet[SQLiteFile] = weakref.WeakSet()


def _forked() -> None:
    for file in list(_files):
        file._after_fork()


os.register_at_fork(after_in_child=_forked)

# The last use of an entry is written back at most this often (seconds): a write on every read
# would make readers queue behind each other.
_TOUCH_EVERY = 10.0

_BOOT_ID = "/proc/sys/kernel/random/boot_id"

# Each thread keeps the entries it read (and the keys it found missing) until the database
# changes (see _reads), up to:
_FRONT_ENTRIES = 256
_FRONT_BYTES = 8 * 1024 * 1024

# How often (seconds) a process looks whether the file at its path is still the one it has open:
# a file deleted or replaced under running workers (a cleaner of /tmp, an operator) would leave
# each on a file of its own, never seeing the others' revalidations (see _moved_to_path).
_CHECK_FILE_EVERY = 0.5


def _damaged(error: sqlite3.DatabaseError) -> bool:
    """Whether ``error`` says the file cannot be read as a database (not that it is busy)."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _new_incarnation() -> str:
    return f"{secrets.randbits(60) | 1:x}"  # never 0, the incarnation of a file without one


def _inode(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def boot_id() -> str | None:
    """This boot of the machine (Linux), or ``None`` where it cannot be known."""
    try:
        with open(_BOOT_ID) as f:
            return f.read().strip() or None
    except OSError:
        return None


class SQLiteFile:
    """The connections to the SQLite database at ``path`` of every thread of this process,
    and the file's making and checks (the base of :class:`~actionkit.stores.SQLiteStore`).

    :param path: the database file.
    :param timeout: how long a writer waits for another one, in seconds.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self._pid = os.getpid()
        self._local = threading.local()
        self._connections: set[sqlite3.Connection] = set()  # each thread's, of this process
        self._ended: list[sqlite3.Connection] = []  # of threads that ended (see Ended)
        self._lock = threading.Lock()
        # Held by the thread of this process that writes (see sqlite_writes.WriteTransaction).
        self._writing = threading.Lock()
        self._boot = boot_id()
        # The mapped WAL index header (see the module): None until mapped, False when unusable.
        self._shm: mmap.mmap | t.Literal[False] | None = None
        self._shm_key: tuple[int, int, int] | None = None
        self._retired: list[tuple[int, int, int]] = []  # maps of files moved from (see _move)
        self._opening: set[int] = set()  # the threads making or checking the file (_open)
        self._inode: tuple[int, int] | None = None  # of the file this process has open
        self._next_check = 0.0
        # Counts the files this process has moved to (see _moved_to_path); each thread's
        # connection is to the file of its count.
        self._epoch = 0
        self._ready = False  # the file opened and checked (see _open)
        _files.add(self)
        try:
            self._open()
        except (OSError, sqlite3.Error) as e:
            # A worker must start whatever the file's state (a read-only file system, a full
            # disk): the page cache serves uncached while the store fails (see cache.safe).
            logger.warning("The SQLite file %s cannot be opened yet: %s", self.path, e)

    def _open(self, moving: bool = False) -> None:
        """Create the file, or start it afresh when it was last written before a reboot or
        cannot be read.

        Under an exclusive lock on ``<path>.lock``, so that of the workers starting together,
        one checks and the others find it done. A file in use needs no write to be checked, so
        a worker starting while another holds a long write does not wait for it.
        """
        self._ready = True  # (its connections are made below)
        try:
            self._make_or_check(moving)
        except BaseException:
            self._ready = False
            self._leave()  # the next use opens it again
            raise

    def _make_or_check(self, moving: bool) -> None:
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # This thread takes the file at the path as it finds it: moving again from here
            # would ask for the lock it holds (another process may make a file meanwhile).
            self._opening.add(threading.get_ident())
            try:
                self._inode = _inode(self.path)  # what the connections made below open
                try:
                    if self._keep(self._db(), moving):
                        return
                except sqlite3.DatabaseError as e:
                    if not _damaged(e):
                        raise
                self._move()  # every thread leaves the file (this one at once)
                self._leave()
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path + suffix)
                db = self._db()
                db.executescript(_SCHEMA)
                if self._boot is not None:
                    db.execute("INSERT INTO settings VALUES ('boot', ?)", (self._boot,))
                db.execute("INSERT INTO settings VALUES ('incarnation', ?)", (_new_incarnation(),))
            finally:
                self._opening.discard(threading.get_ident())
                self._inode = _inode(self.path)
                self._next_check = time.monotonic() + _CHECK_FILE_EVERY
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _keep(self, db: sqlite3.Connection, moving: bool = False) -> bool:
        """Whether the file can be used as it is (its schema made where missing), rather than
        made again because it was written before this boot (not when ``moving`` to a file
        another process made: it knows the boot as well)."""
        try:
            settings = dict(
                db.execute(
                    "SELECT name, value FROM settings WHERE name IN ('boot', 'incarnation')"
                ).fetchall()
            )
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            settings = {}  # a new file, or one made by another program: checked below
        if not moving and self._boot is not None and settings.get("boot") != self._boot:
            return False
        written = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'written'").fetchone()
        if "incarnation" not in settings or written is None:
            # A new file, or one made by an earlier version (no incarnation, or no `written`).
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO settings VALUES ('incarnation', ?)", (_new_incarnation(),)
            )
        return True

    # -- connections ---------------------------------------------------------------------------

    def _db(self, writing: bool = False) -> sqlite3.Connection:
        """This thread's connection to the file at the path; ``writing``: looked for at once (a
        write must not go to a file deleted since), else at most every _CHECK_FILE_EVERY."""
        local = self._local
        db: sqlite3.Connection | None = getattr(local, "db", None)
        checks = threading.get_ident() not in self._opening  # (see _make_or_check)
        if db is not None and local.pid == self._pid:
            if local.epoch != self._epoch:  # the process moved to the file now at the path
                self._leave()
                return self._db(writing)
            due = writing or time.monotonic() >= self._next_check
            if checks and due and self._moved_to_path(writing):
                return self._db()
            return db
        if not self._ready:  # it could not be opened: try again (raises while it cannot)
            self._open()
            return self._db(writing)
        found = _inode(self.path) if checks else None  # (this thread's first connection)
        if found not in (None, self._inode) and self._moved_to_path(now=True):
            return self._db()
        return self._connect()

    def _moved_to_path(self, now: bool = False) -> bool:
        """Whether another file is at the path than the one this process has open, which the
        process then moves to (made ready, this thread's connection with it).

        The file was deleted under running workers and a process started since made a new one,
        or it was replaced: this process would keep to its own, and never see the revalidations
        made in the other. Each thread leaves its connection to the old file at its next use
        (none is closed under a thread using it). A file deleted and not made again is still
        shared by the processes that have it open: they go on using it.
        """
        with self._lock:
            clock = time.monotonic()
            if clock < self._next_check and not now:
                return False
            self._next_check = clock + _CHECK_FILE_EVERY
            found = _inode(self.path)
            if found is None or found == self._inode:
                return False
        logger.warning(
            "The SQLite file %s was deleted or replaced while in use: this process moves to the"
            " file at that path.",
            self.path,
        )
        self._move()
        self._open(moving=True)
        return True

    def _move(self) -> None:
        """Every thread leaves its connection at its next use, for the file at the path; the
        old file's index stays mapped for threads reading it meanwhile."""
        with self._lock:
            self._epoch += 1
            if self._shm is not False:
                if self._shm_key is not None:  # released by close(), once no thread reads it
                    self._retired.append(self._shm_key)
                self._shm, self._shm_key = None, None  # the next connection maps the new one

    def _leave(self) -> None:
        """Close this thread's connection (no other thread uses it)."""
        local = self._local
        db = getattr(local, "db", None)
        local.db = None
        if db is None:
            return
        with self._lock:
            self._connections.discard(db)
        if getattr(local, "pid", None) == os.getpid():
            db.close()

    def _after_fork(self) -> None:
        """In a forked child, leave the parent's connections alone (and the state of its lock,
        which another thread may have held at the fork)."""
        pid = os.getpid()
        if pid != self._pid:
            _inherited.extend(self._connections)
            self._pid = pid
            self._local = threading.local()
            self._connections = set()
            self._ended = []
            self._lock = threading.Lock()
            self._writing = threading.Lock()
            # Mapped again once a connection of this process holds the file open: only then
            # can it not be truncated under the mapping.
            self._shm, self._shm_key = None, None  # the parent's: kept in _wal_index_maps
            self._retired = []

    def _connect(self) -> sqlite3.Connection:
        self._after_fork()
        pid = self._pid
        db = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode != "wal":
            self._shm = False  # a file system without shared memory: data_version tells
        # No fsync when a reboot is noticed (see the module): checkpoints stop costing two.
        db.execute("PRAGMA synchronous=NORMAL" if self._boot is None else "PRAGMA synchronous=OFF")
        local = self._local
        local.db, local.pid, local.epoch = db, pid, self._epoch
        local.version = None
        local.incarnation = None
        forget_reads(local)
        if self._shm is None:
            self._map_wal_index(db)
        # Dropped with this thread's (or greenlet's) locals when it ends: its connection is
        # then closed by the next connection made (threading.Thread, raw threads, gevent).
        local.ended = Ended(db, self._ended)
        with self._lock:
            self._connections.add(db)
            while self._ended:
                old = self._ended.pop()
                if old in self._connections:
                    self._connections.remove(old)
                    old.close()
        return db

    def _transaction(self) -> WriteTransaction:
        # First: in a forked child, it makes the locks of this process. A write goes to the
        # file at the path, which another process may have made a moment ago.
        db = self._db(writing=True)
        return WriteTransaction(db, self._local, self.timeout, self._writing)

    def _map_wal_index(self, db: sqlite3.Connection) -> None:
        """Map the header of the WAL index, once ``db`` holds the file open: SQLite truncates the
        file only when no connection anywhere does, and this store's stay open as long as it
        reads the map (see close)."""
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # a read opens the index
        with self._lock:
            if self._shm is not None:
                return
            mapped = _wal_index_maps.acquire(self.path + "-shm")
            if mapped is None:
                self._shm = False
            else:
                self._shm_key, self._shm = mapped

    def close(self) -> None:
        """Close the connections this process opened."""
        self._after_fork()
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
            for key in [*self._retired, self._shm_key]:
                if key is not None:
                    _wal_index_maps.release(key)  # after the connections are closed
            self._retired.clear()
            self._shm, self._shm_key = None, None
        self._local = threading.local()

    def _reads(self) -> tuple[sqlite3.Connection, threading.local]:
        """This thread's connection, and its memory of reads, forgotten if the database changed.

        The WAL index header, or else PRAGMA data_version, changes with every commit of another
        connection, of this process or another (this connection's own writes forget the reads,
        see sqlite_writes.WriteTransaction). Either is read before the rows, so a commit after
        it shows at the next read.
        """
        db = self._db()
        local = self._local
        shm = self._shm
        version: object
        if shm:
            version = shm[:_WAL_HEADER]
        else:
            (version,) = db.execute("PRAGMA data_version").fetchone()
        if version != local.version:
            forget_reads(local)
            local.version = version
        return db, local
