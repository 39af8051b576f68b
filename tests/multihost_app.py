"""A small Flask app for tests/test_multihost.py: a likes counter per post in one SQLite
database of record, its pages cached in the store that ``ACTIONKIT_CACHE`` names (a Redis URL
shared by every instance).

``MULTIHOST_DB`` is the database's path: a table ``likes (post, n)`` that the test creates
before starting the servers. A request's ``X-Render-Seconds`` header makes its render of a
post's page (or the one after its like) take that long.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import typing as t

from flask import Flask, g, request

from actionkit import action, cache_tag, revalidate_tag
from actionkit.flask import ActionKit

# The store's outages and returns, in the server's log (the test counts them).
logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(levelname)s %(message)s")

app = Flask(__name__)
app.config["ACTIONKIT_CACHE"] = os.environ.get("ACTIONKIT_CACHE", "memory")
ActionKit(app)


def db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(os.environ["MULTIHOST_DB"], timeout=30, isolation_level=None)
    return t.cast(sqlite3.Connection, g.db)


@app.teardown_appcontext
def close(error: BaseException | None) -> None:
    connection = g.pop("db", None)
    if connection is not None:
        connection.close()


@action(id="like")
def like(post: t.Any) -> int:
    """One more like: committed, then the post's page revalidated; returns the new count."""
    connection = db()
    connection.execute("BEGIN IMMEDIATE")
    try:
        [(count,)] = connection.execute(
            "UPDATE likes SET n = n + 1 WHERE post = ? RETURNING n", (int(post),)
        ).fetchall()
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    revalidate_tag(f"post:{int(post)}")
    return int(count)


@app.get("/post/<int:post>")
def show(post: int) -> str:
    cache_tag(f"post:{post}")
    (count,) = db().execute("SELECT n FROM likes WHERE post = ?", (post,)).fetchone()
    # A render that takes as long as a test needs (to kill its server meanwhile).
    time.sleep(float(request.headers.get("X-Render-Seconds", "0")))
    return f"<!doctype html><title>post {post}</title><p>likes={count}</p>"
