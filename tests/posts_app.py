"""A small WSGI application reproducing the reference page's examples, for the tests.

Plain Werkzeug, so the tests exercise the middleware without any framework's help.
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field

from markupsafe import escape
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from actionkit import (
    ActionMiddleware,
    Registry,
    action_state,
    after,
    cache_tag,
    cookies,
    fail,
    forbidden,
    not_found,
    permanent_redirect,
    redirect,
    revalidate_path,
    unauthorized,
)


@dataclass
class Posts:
    posts: dict[int, dict[str, t.Any]] = field(default_factory=dict)
    next_id: int = 1
    views: int = 0
    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_app(**options: t.Any) -> tuple[ActionMiddleware, Registry, Posts]:
    """The posts app wrapped by :class:`ActionMiddleware`, its registry and its data."""
    db = Posts()
    registry = Registry()

    @registry.action
    def create_post(form: MultiDict[str, str]) -> t.Any:
        title = form.get("title", "").strip()
        if not title:
            return fail(422, {"title": "A title is required."})
        with db.lock:
            post_id = db.next_id
            db.next_id += 1
            db.posts[post_id] = {"title": title, "content": form.get("content", ""), "likes": 0}
        revalidate_path("/posts")
        redirect("/posts")

    @registry.action
    def delete_post(post_id: int, form: MultiDict[str, str]) -> None:
        if post_id not in db.posts:
            not_found()
        del db.posts[post_id]
        revalidate_path("/posts")

    @registry.action
    def increment_like(post_id: int) -> int:
        with db.lock:
            db.posts[post_id]["likes"] += 1
            return int(db.posts[post_id]["likes"])

    @registry.action
    def increment_views() -> int:
        with db.lock:
            db.views += 1
            return db.views

    @registry.action
    def set_name(form: MultiDict[str, str]) -> str | None:
        store = cookies()
        if form.get("delete"):
            store.delete("name")
            return None
        store.set("name", form.get("name", "Delba"))
        return store.get("name")

    @registry.action
    def guarded(kind: str, *form: t.Any) -> None:
        {"forbidden": forbidden, "unauthorized": unauthorized, "not_found": not_found}[kind]()

    @registry.action
    def move(form: MultiDict[str, str]) -> None:
        permanent_redirect("/posts")

    @registry.action
    def crash() -> None:
        raise RuntimeError("secret database password in this message")

    @registry.action
    def log_after(form: MultiDict[str, str]) -> str:
        after(lambda: db.log.append("after"))
        db.log.append("action")
        return "ok"

    def page(request: Request) -> Response:
        if request.path == "/posts":
            cache_tag("posts")
            state = action_state(create_post)
            items = "".join(
                f'<li id="post-{pid}">{escape(p["title"])} ({p["likes"]} likes)</li>'
                for pid, p in sorted(db.posts.items())
            )
            error = state.error("title") if state else None
            value = state.value("title") if state else ""
            body = (
                "<!doctype html><title>Posts</title>"
                f"<ul>{items}</ul>"
                f'<form method="post">{create_post.field()}'
                f'<input name="title" value="{escape(value)}">'
                f"{f'<p class=error>{escape(error)}</p>' if error else ''}</form>"
                f"<p>name={escape(request.cookies.get('name', '-'))}</p>"
            )
            return Response(body, content_type="text/html; charset=utf-8")
        if request.path == "/echo":
            # A page of the wrapped app's own that reads its POST body (not an action).
            return Response(f"{request.method} {sorted(request.form.items(multi=True))}")
        if request.path == "/raw":
            return Response(f"{request.method} {len(request.get_data())}")
        return Response("<!doctype html><title>Not found</title>", status=404)

    def app(environ: t.Any, start_response: t.Any) -> t.Any:
        return page(Request(environ))(environ, start_response)

    options.setdefault("cache", False)
    return ActionMiddleware(app, registry=registry, **options), registry, db
