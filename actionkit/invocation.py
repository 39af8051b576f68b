"""An action call ready to run: what an ``action_wrapper`` receives and calls.

:mod:`actionkit.params` builds it from the request (the arguments checked and converted); the
framework adapter runs it inside its own request handling and hands it the framework's request
for the parameters named ``request``.
"""

from __future__ import annotations

import typing as t

from werkzeug.wrappers import Request

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["REQUEST", "ActionCall", "Invocation"]

# Where the request object goes, until the framework hands it over (see :class:`Invocation`).
REQUEST: t.Any = object()


class ActionCall(t.Protocol):
    """What an ``action_wrapper`` calls: runs the action, given the framework's request."""

    def __call__(self, *, request: t.Any = None) -> t.Any: ...


class Invocation:
    """An action call ready to run (an :class:`ActionCall`).

    ``invocation(request=...)`` runs it; the framework's request goes to parameters named
    ``request`` (without one, a :class:`werkzeug.wrappers.Request` for the environ).
    """

    __slots__ = ("fn", "args", "kwargs", "environ", "requests")

    def __init__(
        self,
        fn: t.Callable[..., t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
        environ: WSGIEnvironment,
        requests: bool = False,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.environ = environ
        #: Whether a parameter takes the request.
        self.requests = requests

    def __call__(self, *, request: t.Any = None) -> t.Any:
        args, kwargs = self.args, self.kwargs
        if self.requests:
            if request is None:
                request = Request(self.environ)
            args = [request if a is REQUEST else a for a in args]
            kwargs = {k: request if v is REQUEST else v for k, v in kwargs.items()}
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Invocation {getattr(self.fn, '__qualname__', self.fn)!r}>"
