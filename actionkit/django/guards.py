"""The project-wide guards that Django applies to views, applied to actions, which no view runs:
``LoginRequiredMiddleware`` (Django 5.1+) answers in ``process_view``, which is never called for
an action (the middleware runs it in its ``__call__``).
"""

from __future__ import annotations

import typing as t

from django.apps import apps
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

if t.TYPE_CHECKING:
    from ..context import RequestContext

_classes: dict[str, type | None] = {}


def login_required_answer(
    request: HttpRequest, ctx: RequestContext | None
) -> HttpResponseBase | None:
    """What the project's ``LoginRequiredMiddleware`` answers an anonymous user for the action
    being run, as for a view of its own (its redirect to the login page, with the page posted to
    as ``next``), or ``None``: no such middleware, a signed-in user, or an action marked
    ``@login_not_required``.

    The action decides, not the page it was posted to: the client chooses that page (the login
    page, any public one), so a public page's mark would let anybody run any action there.
    """
    guards = [cls for cls in map(_class, settings.MIDDLEWARE) if cls is not None]
    action = None if ctx is None else ctx.action
    if not guards or action is None:
        return None
    fn = getattr(action, "fn", action)
    if getattr(action, "login_required", True) is False or not getattr(fn, "login_required", 1):
        return None  # @login_not_required, above or below @action
    for guard in guards:
        answer = guard(_no_response).process_view(request, fn, (), {})
        if answer is not None:
            return t.cast(HttpResponseBase, answer)
    return None


def _class(name: str) -> type | None:
    """The middleware class named ``name`` when it is ``LoginRequiredMiddleware`` or derives
    from it, else ``None`` (remembered for each name)."""
    if name not in _classes:
        found = None
        # Without django.contrib.auth, importing its middleware imports models no app has.
        if apps.is_installed("django.contrib.auth"):
            try:
                from django.contrib.auth.middleware import LoginRequiredMiddleware

                found = import_string(name)
            except ImportError:  # Django before 5.1, or no such middleware
                found = None
            else:
                if not (isinstance(found, type) and issubclass(found, LoginRequiredMiddleware)):
                    found = None
        _classes[name] = found
    return _classes[name]


def _no_response(request: HttpRequest) -> None:
    return None
