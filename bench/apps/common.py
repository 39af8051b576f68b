"""The shared "posts" data (SQLite, WAL, shared by the workers) and templates.

Every Python system uses these functions, so their data costs are the same. The database is in WAL
mode with ``synchronous=NORMAL`` (a commit reaches the OS, not the disk: safe across a crash of
the server, as a database server would be configured for a web app); Next.js keeps the same posts
in a module-level array, which is not written anywhere.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import struct
import threading
import time
import typing as t
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent.parent / "templates"
DB = os.environ.get("BENCH_DB", "/tmp/actionkit-bench.sqlite3")
POSTS = 20


def reset(path: str = DB) -> None:
    """20 posts, no likes (run before each system starts)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(
        "DROP TABLE IF EXISTS posts;"
        "CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, content TEXT,"
        " likes INTEGER NOT NULL DEFAULT 0);"
    )
    db.executemany(
        "INSERT INTO posts (title, content) VALUES (?, ?)",
        [(f"Post number {n}", f"The content of post {n}.") for n in range(1, POSTS + 1)],
    )
    db.commit()
    db.close()


def connect() -> sqlite3.Connection:
    """A connection for one thread. Its writes wait for another writer's lock themselves (see
    :func:`_write`): its busy handler is off."""
    db = sqlite3.connect(DB, timeout=0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA synchronous = NORMAL")
    return db


# A write that finds another connection writing asks for the lock again after these pauses
# (seconds), the first doubled up to the last, for at most _WRITE_TIMEOUT. SQLite's own busy
# handler pauses a millisecond at its first retry, where the writes here hold the lock for tens
# of microseconds.
_FIRST_PAUSE, _LAST_PAUSE, _WRITE_TIMEOUT = 20e-6, 1e-3, 30.0


def _write(db: sqlite3.Connection, sql: str, parameters: tuple[t.Any, ...] = ()) -> t.Any:
    """``db.execute(sql, parameters)``, for a statement that takes the write lock (``BEGIN
    IMMEDIATE``, or a write in autocommit mode), asked again while another connection holds it:
    a statement refused as busy has written nothing."""
    deadline = None
    pause = _FIRST_PAUSE
    while True:
        try:
            return db.execute(sql, parameters)
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            deadline = deadline or now + _WRITE_TIMEOUT
            if now > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _LAST_PAUSE)


class Post(t.NamedTuple):
    """A row as the template reads it: ``post.id`` is an attribute, found by Jinja's first
    lookup (a dict would make it fall back to ``post["id"]`` for every field of every post)."""

    id: int
    title: str
    content: str
    likes: int


def posts(db: sqlite3.Connection) -> list[Post]:
    rows = db.execute(
        "SELECT id, title, content, likes FROM posts ORDER BY id DESC LIMIT ?", (POSTS,)
    ).fetchall()
    return list(map(Post._make, rows))


def create(db: sqlite3.Connection, title: str, content: str) -> None:
    """Insert a post and drop all but the 20 newest, in one transaction: the table, and the page,
    keep the same size however long the create workload runs.
    """
    _write(db, "BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO posts (title, content) VALUES (?, ?)", (title, content))
        db.execute("DELETE FROM posts WHERE id <= (SELECT max(id) FROM posts) - ?", (POSTS,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def like(db: sqlite3.Connection, post_id: int) -> int:
    # In autocommit mode: the statement is its own transaction.
    row = _write(
        db, "UPDATE posts SET likes = likes + 1 WHERE id = ? RETURNING likes", (post_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


# -- counters the HTTP benchmark reads -----------------------------------------------------------

#: What the apps count when ``BENCH_COUNTS`` names a directory: renders of the page, actions run
#: and write transactions of actionkit's cache store.
COUNTED = ("renders", "likes", "creates", "store_writes")
_SLOT = struct.Struct("q")


class Counts:
    """Counters of this worker process in a mapped file ``BENCH_COUNTS/<pid>`` (one slot of 8
    bytes per name), read by the benchmark with :func:`read_counts`; free when the variable is
    not set (``add`` returns at once)."""

    def __init__(self) -> None:
        self.folder = os.environ.get("BENCH_COUNTS")
        self._pid = 0
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        if self.folder is None:
            return
        offset = COUNTED.index(name) * _SLOT.size
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                fd = os.open(
                    os.path.join(self.folder, str(self._pid)), os.O_RDWR | os.O_CREAT, 0o600
                )
                os.ftruncate(fd, _SLOT.size * len(COUNTED))
                self._map = mmap.mmap(fd, _SLOT.size * len(COUNTED))
                os.close(fd)
            assert self._map is not None
            (value,) = _SLOT.unpack_from(self._map, offset)
            _SLOT.pack_into(self._map, offset, value + n)


counts = Counts()


def read_counts(folder: str) -> dict[str, int]:
    """The counters of every worker that wrote under ``folder``, summed."""
    total = dict.fromkeys(COUNTED, 0)
    for name in os.listdir(folder):
        data = open(os.path.join(folder, name), "rb").read()  # noqa: SIM115
        for i, key in enumerate(COUNTED):
            if len(data) >= (i + 1) * _SLOT.size:
                total[key] += _SLOT.unpack_from(data, i * _SLOT.size)[0]
    return total
