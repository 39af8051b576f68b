"""Flask + Flask-Caching on the same templates: FileSystemCache, so both workers share it."""

from __future__ import annotations

import os
import threading
import typing as t

from flask import Flask, jsonify, redirect, request
from flask_caching import Cache

from . import common

app = Flask(__name__)
cache = Cache(
    app,
    config={
        "CACHE_TYPE": "FileSystemCache",
        "CACHE_DIR": os.environ.get("BENCH_FLASK_CACHE", "/tmp/actionkit-bench-flask-cache"),
        "CACHE_DEFAULT_TIMEOUT": 3600,
    },
)
template = common.environment().get_template("posts.html")
_local = threading.local()


def db() -> t.Any:
    if not hasattr(_local, "db"):
        _local.db = common.connect()
    return _local.db


@app.get("/posts")
@cache.cached(key_prefix="posts")
def posts() -> str:
    common.counts.add("renders")
    return template.render(
        posts=common.posts(db()),
        script="",
        create_url="/posts/create",
        create_field="",
        like_url=lambda post_id: f"/posts/{post_id}/like",
        like_field=lambda post_id: "",
    )


@app.post("/posts/create")
def create() -> t.Any:
    common.counts.add("creates")
    common.create(db(), request.form.get("title", ""), request.form.get("content", ""))
    cache.delete("posts")
    return redirect("/posts", 303)


@app.post("/posts/<int:post_id>/like")
def like(post_id: int) -> t.Any:
    common.counts.add("likes")
    likes = common.like(db(), post_id)
    cache.delete("posts")
    return jsonify(likes=likes, html=posts())
