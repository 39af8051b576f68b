"""A Flask application set up as the README shows, with actions in a registry of its own.

The secret key comes from ``ACTIONKIT_SECRET_KEY``; the page cache is the default MemoryStore.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.datastructures import MultiDict

from actionkit import Registry, redirect, revalidate_path
from actionkit.flask import ActionKit

registry = Registry()
app = Flask(__name__)
ActionKit(app, registry=registry)


@registry.action
def create_post(form: MultiDict[str, str]) -> None:
    revalidate_path("/posts")
    redirect("/posts")


@registry.action
def delete_post(post_id: int, form: MultiDict[str, str] | None = None) -> None:
    revalidate_path("/posts")


@registry.action(id="increment-like")
def increment_like(post_id: int, amount: int = 1) -> int:
    return post_id + amount


@app.get("/posts")
def posts() -> str:
    return "posts"


FLASK_NAME = "not callable"
