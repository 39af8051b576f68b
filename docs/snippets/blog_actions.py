"""A "use server" file: every public function of this module is an action."""

from __future__ import annotations

from actionkit import redirect, revalidate_path, use_server

POSTS: list[str] = []


def create_post(form):
    POSTS.append(form["title"])
    revalidate_path("/posts")
    redirect("/posts")


def delete_post(index, form):
    del POSTS[index]
    revalidate_path("/posts")


def _helper():
    """Names starting with an underscore are left alone."""


use_server(__name__)
