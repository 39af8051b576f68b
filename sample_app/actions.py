"""The site's actions: a module of plain functions marked as actions by use_server (the
"use server" file of the reference page)."""

from __future__ import annotations

import typing as t

from werkzeug.datastructures import MultiDict

from actionkit import (
    cookies,
    fail,
    not_found,
    redirect,
    revalidate_path,
    revalidate_tag,
    use_server,
)

from . import db

THEMES = ("light", "dark")


def create_post(form: MultiDict[str, str]) -> t.Any:
    """Create a post from the form; errors go back to the form with the values kept."""
    title = form.get("title", "").strip()
    content = form.get("content", "").strip()
    errors = {}
    if not title:
        errors["title"] = "Give your post a title."
    elif len(title) > 120:
        errors["title"] = "Keep the title under 120 characters."
    if len(content) > 5000:
        errors["content"] = "Keep the post under 5000 characters."
    if errors:
        return fail(422, errors)
    db.get().execute("INSERT INTO posts (title, content) VALUES (?, ?)", (title, content))
    revalidate_path("/posts")
    redirect("/posts")


def delete_post(post_id: int, form: MultiDict[str, str] | None = None) -> None:
    """Delete one post (its ID is bound into the button: delete_post.bind(post.id))."""
    deleted = db.get().execute("DELETE FROM posts WHERE id = ?", (post_id,)).rowcount
    if not deleted:
        not_found()
    revalidate_tag(f"post:{post_id}")
    revalidate_path("/posts")


def increment_like(post_id: int, form: MultiDict[str, str] | None = None) -> int:
    """Add a like and return the new count (called from a button's click handler)."""
    row = (
        db.get()
        .execute("UPDATE posts SET likes = likes + 1 WHERE id = ? RETURNING likes", (post_id,))
        .fetchone()
    )
    if row is None:
        not_found()
    revalidate_tag(f"post:{post_id}")
    revalidate_path("/posts")
    return int(row[0])


def increment_views(post_id: int) -> int:
    """Count a view of a post (called when the page loads, like useEffect)."""
    row = (
        db.get()
        .execute("UPDATE posts SET views = views + 1 WHERE id = ? RETURNING views", (post_id,))
        .fetchone()
    )
    if row is None:
        not_found()
    return int(row[0])


def save_preferences(form: MultiDict[str, str]) -> dict[str, str]:
    """Remember the visitor's name and theme in cookies."""
    jar = cookies()
    name = form.get("name", "").strip()[:40]
    if name:
        jar.set("name", name, max_age=60 * 60 * 24 * 365)
    theme = form.get("theme", "light")
    if theme not in THEMES:
        return fail(422, {"theme": f"Choose one of {', '.join(THEMES)}."})
    jar.set("theme", theme, max_age=60 * 60 * 24 * 365)
    return jar.all()


def forget_me(form: MultiDict[str, str]) -> None:
    """Delete the preference cookies."""
    cookies().delete("name")
    cookies().delete("theme")


use_server(__name__)
