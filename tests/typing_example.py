"""Typed actions as a type checker sees them: ``tests/test_params.py`` runs ``mypy --strict`` on
this file, which must pass, and on a call with a wrong argument, which must fail."""

from __future__ import annotations

import typing as t

from annotated_types import MaxLen, MinLen
from werkzeug.datastructures import MultiDict

from actionkit import Action, Bound, Registry, action

registry = Registry()


@action(registry=registry)
def like(post_id: int) -> int:
    return post_id + 1


@registry.action
def create_post(title: t.Annotated[str, MinLen(1), MaxLen(120)], tags: list[str]) -> str:
    return title


@registry.action(id="delete-post")
def delete_post(post_id: Bound[int], form: MultiDict[str, str] | None = None) -> None:
    pass


def exposed(act: Action) -> str:
    """Code written before actions were generic takes a bare Action."""
    return act.id


likes: int = like(1)
title: str = create_post("Hello", ["a"])
delete_post(1)
unbound: Action[..., None] = delete_post.bind(1)
names = [exposed(like), exposed(delete_post.bind(2))]
