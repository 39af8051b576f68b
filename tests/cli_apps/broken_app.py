"""An application with the mistakes ``python -m actionkit check`` finds: no secret key unless
the environment has one, a MemoryStore page cache (the default), a decorator stacked above
``@action``, and a module attribute that is not the action it registered."""

from __future__ import annotations

import functools
import typing as t

from actionkit import ActionMiddleware, Registry

registry = Registry()


def login_required(fn: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    @functools.wraps(fn)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        raise PermissionError("log in first")

    return wrapper


@login_required
@registry.action
def delete_everything(form: t.Any) -> None:
    """Guarded in the module, but the registry holds the function without the guard."""


@registry.action
def shadowed(form: t.Any) -> None:
    """Registered, then its name is given to something else."""


shadowed = "another value"  # type: ignore[assignment]  # noqa: F811


def hello(environ: t.Any, start_response: t.Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


application = ActionMiddleware(hello, registry=registry)
