"""The site's actions: a module of plain functions marked as actions by use_server (the
"use server" file of the reference page).

Each is a public endpoint, so each says in its signature what it accepts: the form's fields are
validated against the annotations before the function runs (a failure shows next to the field,
with what was typed kept), and a post's ID that only the page may choose is ``Bound``.
"""

from __future__ import annotations

import typing as t

from annotated_types import MaxLen, MinLen
from pydantic import StringConstraints

from actionkit import (
    Bound,
    cookies,
    not_found,
    redirect,
    revalidate_path,
    revalidate_tag,
    use_server,
)

from . import db

#: A post's title: surrounding spaces dropped, then 1 to 120 characters.
Title = t.Annotated[str, StringConstraints(strip_whitespace=True), MinLen(1), MaxLen(120)]
Content = t.Annotated[str, StringConstraints(strip_whitespace=True), MaxLen(5000)]
Name = t.Annotated[str, StringConstraints(strip_whitespace=True), MaxLen(40)]
Theme = t.Literal["light", "dark"]


def create_post(title: Title, content: Content = "") -> None:
    """Create a post from the form's title and content."""
    db.get().execute("INSERT INTO posts (title, content) VALUES (?, ?)", (title, content))
    revalidate_path("/posts")
    redirect("/posts")


def delete_post(post_id: Bound[int]) -> None:
    """Delete one post (its ID is bound into the button: delete_post.bind(post.id))."""
    deleted = db.get().execute("DELETE FROM posts WHERE id = ?", (post_id,)).rowcount
    if not deleted:
        not_found()
    revalidate_tag(f"post:{post_id}")
    revalidate_path("/posts")


def increment_like(post_id: int) -> int:
    """Add a like and return the new count (called from a button's click handler, or posted by
    the button itself, its post's ID bound, without JavaScript). Anyone may like any post."""
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


def save_preferences(name: Name = "", theme: Theme = "light") -> dict[str, str]:
    """Remember the visitor's name and theme in cookies."""
    jar = cookies()
    if name:
        jar.set("name", name, max_age=60 * 60 * 24 * 365)
    jar.set("theme", theme, max_age=60 * 60 * 24 * 365)
    return jar.all()


def forget_me() -> None:
    """Delete the preference cookies."""
    cookies().delete("name")
    cookies().delete("theme")


use_server(__name__)
