"""Two functions claiming one action ID: importing this module fails."""

from __future__ import annotations

import typing as t

from actionkit import Registry

registry = Registry()


@registry.action(id="save")
def save_post(form: t.Any) -> None: ...


@registry.action(id="save")
def save_comment(form: t.Any) -> None: ...


def application(environ: t.Any, start_response: t.Any) -> list[bytes]:
    return []
