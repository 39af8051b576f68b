"""actionkit: Flask + ActionKit, SQLiteStore page cache shared by the workers."""

from __future__ import annotations

import os
import threading
import typing as t

from flask import Flask

from actionkit import action, cache_tag, redirect, revalidate_path
from actionkit.flask import ActionKit
from actionkit.stores import SQLiteStore

from . import common

_local = threading.local()


def db() -> t.Any:
    if not hasattr(_local, "db"):
        _local.db = common.connect()
    return _local.db


class CountingStore(SQLiteStore):
    """The store, counting its write transactions for the benchmark (see common.Counts)."""

    def _transaction(self) -> t.Any:
        common.counts.add("store_writes")
        return super()._transaction()


@action(id="create_post")
def create_post(form: t.Any) -> None:
    common.counts.add("creates")
    common.create(db(), form.get("title", ""), form.get("content", ""))
    revalidate_path("/posts")
    redirect("/posts")


@action(id="increment_like")
def increment_like(post_id: int, form: t.Any = None) -> int:
    common.counts.add("likes")
    likes = common.like(db(), post_id)
    revalidate_path("/posts")
    return likes


app = Flask(__name__)
# The key seals bound arguments. It is not app.secret_key: the page uses no Flask session, and
# neither does the Flask-Caching app, which would not pay for opening one on every request.
ActionKit(
    app,
    secret_key="bench",
    cache=CountingStore(os.environ.get("BENCH_CACHE", "/tmp/actionkit-bench-cache.db")),
)
template = common.environment().get_template("posts.html")


@app.get("/posts")
def posts() -> str:
    common.counts.add("renders")
    cache_tag("posts")
    return template.render(
        posts=common.posts(db()),
        script="",
        create_url="/posts",
        create_field=create_post.field(),
        like_url=lambda post_id: "/posts",
        like_field=lambda post_id: increment_like.bind(post_id).field(),  # Markup already
    )
