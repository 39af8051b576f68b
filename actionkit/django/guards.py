"""The project-wide guards that Django applies to views, applied to actions, which no view runs:
``LoginRequiredMiddleware`` (Django 5.1+) answers ``process_view``, which is never called for an
action (the middleware runs it in its ``__call__``).
"""

from __future__ import annotations

import typing as t

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

if t.TYPE_CHECKING:
    from ..context import RequestContext

_classes: dict[str, type | None] = {}


def login_required_answer(
    request: HttpRequest, ctx: RequestContext | None
) -> HttpResponseBase | None:
    """What the project's ``LoginRequiredMiddleware`` answers an anonymous user for the view of
    the page the action was posted to (its redirect to the login page), or ``None``: no such
    middleware, a signed-in user, or a page or action marked ``@login_not_required``.

    An action posted where no view is routed is taken as a view of its own: only marking the
    action ``@login_not_required`` lets it run for everyone there.
    """
    guards = [cls for cls in map(_class, settings.MIDDLEWARE) if cls is not None]
    action = None if ctx is None else ctx.action
    if not guards or action is None:
        return None
    fn = getattr(action, "fn", action)
    if getattr(action, "login_required", True) is False or not getattr(fn, "login_required", 1):
        return None  # @login_not_required, above or below @action
    try:
        view = resolve(request.path_info).func
    except Resolver404:
        view = fn
    for guard in guards:
        answer = guard(_no_response).process_view(request, view, (), {})
        if answer is not None:
            return t.cast(HttpResponseBase, answer)
    return None


def _class(name: str) -> type | None:
    """The middleware class named ``name`` when it is ``LoginRequiredMiddleware`` or derives
    from it, else ``None`` (remembered for each name)."""
    if name not in _classes:
        from django.contrib.auth.middleware import LoginRequiredMiddleware

        try:
            found = import_string(name)
        except ImportError:
            found = None
        is_guard = isinstance(found, type) and issubclass(found, LoginRequiredMiddleware)
        _classes[name] = found if is_guard else None
    return _classes[name]


def _no_response(request: HttpRequest) -> None:
    return None
