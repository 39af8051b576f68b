"""actionkit for Django: actions inside Django's request handling, template tags, the page cache
on Django views.

.. code-block:: python

    INSTALLED_APPS = [..., "actionkit.django"]
    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "actionkit.django.ActionKitMiddleware",
    ]
    ACTIONKIT = {"CACHE": BASE_DIR / "actionkit.sqlite3"}  # optional

The app imports each installed app's ``actions`` module at start-up (:mod:`.apps`); the
middleware (:mod:`.middleware`) runs the actions; ``{% load actionkit %}`` gives the template tags
(:mod:`.templatetags.actionkit`), :func:`actionkit.django.jinja2.environment` the same for
Django's Jinja2 backend; ``manage.py check`` reports a misplaced middleware
(:mod:`.checks`) and ``manage.py actionkit_actions`` lists the actions.
"""

from __future__ import annotations

import typing as t

try:
    import django  # noqa: F401
except ModuleNotFoundError as e:  # pragma: no cover - tested in a subprocess
    raise ModuleNotFoundError(
        f"actionkit.django needs Django, which is not installed ({e}): pip install"
        " 'actionkit[django]'."
    ) from e

if t.TYPE_CHECKING:
    from .middleware import ActionKitMiddleware

__all__ = ["ActionKitMiddleware"]


def __getattr__(name: str) -> t.Any:
    # Imported on first use: Django imports this package while it loads INSTALLED_APPS,
    # before the middleware (and what it imports) is needed.
    if name == "ActionKitMiddleware":
        from .middleware import ActionKitMiddleware

        return ActionKitMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
