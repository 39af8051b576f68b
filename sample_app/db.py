"""The sample's data: SQLite in WAL mode, a file in the instance folder, shared by every worker."""

from __future__ import annotations

import os
import sqlite3
import typing as t

from flask import current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    likes INTEGER NOT NULL DEFAULT 0,
    views INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL DEFAULT (datetime('now'))
);
"""

SEED = [
    ("Hello, actionkit", "Forms that call Python functions, with or without JavaScript."),
    ("Revalidation", "An action says which pages changed; every worker shows the change at once."),
]


def init(path: str) -> None:
    """Create the database and its first posts (idempotent; run once before workers start)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        if db.execute("SELECT count(*) FROM posts").fetchone()[0] == 0:
            db.executemany("INSERT INTO posts (title, content) VALUES (?, ?)", SEED)
        db.commit()
    finally:
        db.close()


def get() -> sqlite3.Connection:
    """This request's connection (closed at teardown)."""
    if "db" not in g:
        db = sqlite3.connect(current_app.config["DATABASE"], timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout = 10000")
        g.db = db
    return t.cast(sqlite3.Connection, g.db)


def close(exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()
