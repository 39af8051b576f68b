"""The site's actions, found by ``actionkit.django`` at start-up (as the admin finds
``admin.py``), so any worker runs them from its first request."""

from __future__ import annotations

import typing as t

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from actionkit import Bound, action, cookies, fail, redirect, revalidate_path, revalidate_tag

from .models import Post

THEMES = ("light", "dark")


@action
def create_post(request: HttpRequest, title: str = "", content: str = "") -> t.Any:
    """Create a post; errors go back to the form with the values kept."""
    title, content = title.strip(), content.strip()
    errors = {}
    if not title:
        errors["title"] = "Give your post a title."
    elif len(title) > 120:
        errors["title"] = "Keep the title under 120 characters."
    if len(content) > 5000:
        errors["content"] = "Keep the post under 5000 characters."
    if errors:
        return fail(422, errors)
    user = request.user
    author = user.get_username() if user.is_authenticated else cookies().get("name") or "anonymous"
    Post.objects.create(title=title, content=content, author=author)
    messages.success(request, f"Published “{title}”.")
    revalidate_path("/posts")
    redirect("/posts")


@action
def increment_like(post_id: int) -> int:
    """Add a like and return the new count (a button's click handler calls it)."""
    if not Post.objects.filter(pk=post_id).update(likes=F("likes") + 1):
        raise Post.DoesNotExist  # a 500: the like button of a post that is gone
    revalidate_tag(f"post:{post_id}")
    revalidate_path("/posts")
    return Post.objects.values_list("likes", flat=True).get(pk=post_id)


@action
def increment_views(post_id: int) -> int:
    """Count a view of a post (called when its page loads)."""
    Post.objects.filter(pk=post_id).update(views=F("views") + 1)
    return get_object_or_404(Post, pk=post_id).views


@action
def delete_post(post_id: Bound[int]) -> None:
    """Delete one post (its ID is bound into the button: no request names another); a post
    already gone is a 404."""
    get_object_or_404(Post, pk=post_id).delete()
    revalidate_tag(f"post:{post_id}")
    revalidate_path("/posts")


@action
def rename_post(post_id: Bound[int], title: str = "") -> t.Any:
    """Rename a post; an empty title is a field error shown next to the input."""
    title = title.strip()
    if not title:
        return fail(422, {"title": "A title cannot be empty."})
    post = get_object_or_404(Post, pk=post_id)
    post.title = title
    post.save(update_fields=["title"])
    revalidate_tag(f"post:{post_id}")
    revalidate_path("/posts")
    return title


@action
def clear_posts(request: HttpRequest) -> None:
    """Delete every post: staff only."""
    if not request.user.is_staff:
        raise PermissionDenied
    Post.objects.all().delete()
    revalidate_path("/posts", type="layout")


@action
def save_preferences(name: str = "", theme: str = "light") -> t.Any:
    """Remember the visitor's name and theme in cookies."""
    jar = cookies()
    name = name.strip()[:40]
    if name:
        jar.set("name", name, max_age=60 * 60 * 24 * 365)
    if theme not in THEMES:
        return fail(422, {"theme": f"Choose one of {', '.join(THEMES)}."})
    jar.set("theme", theme, max_age=60 * 60 * 24 * 365)
    return jar.all()


@action
def forget_me() -> None:
    """Delete the preference cookies."""
    cookies().delete("name")
    cookies().delete("theme")
