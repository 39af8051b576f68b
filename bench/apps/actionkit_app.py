"""actionkit: Flask + ActionKit, SQLiteStore page cache shared by the workers."""

from __future__ import annotations

import os
import threading
import typing as t

from flask import Flask
from markupsafe import Markup

from actionkit import action, cache_tag, redirect, revalidate_path
from actionkit.flask import ActionKit
from actionkit.stores import SQLiteStore

from . import common

_local = threading.local()


def db() -> t.Any:
    if not hasattr(_local, "db"):
        _local.db = common.connect()
    return _local.db


@action(id="create_post")
def create_post(form: t.Any) -> None:
    common.create(db(), form.get("title", ""), form.get("content", ""))
    revalidate_path("/posts")
    redirect("/posts")


@action(id="increment_like")
def increment_like(post_id: int, form: t.Any = None) -> int:
    likes = common.like(db(), post_id)
    revalidate_path("/posts")
    return likes


app = Flask(__name__)
# The key seals bound arguments. It is not app.secret_key: the page uses no Flask session, and
# neither does the Flask-Caching app, which would not pay for opening one on every request.
ActionKit(
    app,
    secret_key="bench",
    cache=SQLiteStore(os.environ.get("BENCH_CACHE", "/tmp/actionkit-bench-cache.db")),
)
template = common.environment().get_template("posts.html")


@app.get("/posts")
def posts() -> str:
    cache_tag("posts")
    return template.render(
        posts=common.posts(db()),
        script="",
        create_url="/posts",
        create_field=create_post.field(),
        like_url=lambda post_id: "/posts",
        like_field=lambda post_id: Markup(increment_like.bind(post_id).field()),
    )
