"""The shared "posts" data (SQLite, WAL, shared by the workers) and templates.

Every Python system uses these functions, so their data costs are the same. The database is in WAL
mode with ``synchronous=NORMAL`` (a commit reaches the OS, not the disk: safe across a crash of
the server, as a database server would be configured for a web app); Next.js keeps the same posts
in a module-level array, which is not written anywhere.
"""

from __future__ import annotations

import os
import sqlite3
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
    db = sqlite3.connect(DB, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def posts(db: sqlite3.Connection) -> list[dict[str, t.Any]]:
    rows = db.execute(
        "SELECT id, title, content, likes FROM posts ORDER BY id DESC LIMIT ?", (POSTS,)
    ).fetchall()
    return [dict(zip(("id", "title", "content", "likes"), row, strict=True)) for row in rows]


def create(db: sqlite3.Connection, title: str, content: str) -> None:
    """Insert a post and drop all but the 20 newest, in one transaction: the table, and the page,
    keep the same size however long the create workload runs.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO posts (title, content) VALUES (?, ?)", (title, content))
        db.execute("DELETE FROM posts WHERE id <= (SELECT max(id) FROM posts) - ?", (POSTS,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def like(db: sqlite3.Connection, post_id: int) -> int:
    row = db.execute(
        "UPDATE posts SET likes = likes + 1 WHERE id = ? RETURNING likes", (post_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
