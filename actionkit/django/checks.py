"""System checks (``manage.py check``): where the middleware is, and the configuration.

- ``actionkit.E001``: ``ActionKitMiddleware`` is not in ``MIDDLEWARE``;
- ``actionkit.E002``: it comes before a middleware whose work actions need (sessions,
  authentication, the CSRF cookie, messages);
- ``actionkit.W001``: the page cache is a ``MemoryStore`` while several worker processes serve
  (``WEB_CONCURRENCY``, or ``-w N`` in ``GUNICORN_CMD_ARGS``);
- ``actionkit.W002``: the page cache's store cannot be reached (a warning: ``migrate`` and the
  other commands still run while Redis is down);
- ``actionkit.E003`` to ``E007``: what ``python -m actionkit check`` finds
  (:mod:`actionkit.checks`): no secret key, an action under a decorator that hides it, an action
  whose module attribute is not the registered action, a parameter that cannot be compiled (an
  annotation only a type checker imports), two actions of one ID.
"""

from __future__ import annotations

import typing as t

from django.conf import settings
from django.core import checks

MIDDLEWARE_PATH = "actionkit.django.ActionKitMiddleware"
# What must run before actions do, by the middleware that does it.
REQUIRED_BEFORE = {
    "django.contrib.sessions.middleware.SessionMiddleware": "request.session",
    "django.middleware.csrf.CsrfViewMiddleware": "the CSRF cookie of {% csrf_token %}",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "request.user",
    "django.contrib.messages.middleware.MessageMiddleware": "messages",
}
# The Django check ID of each finding of actionkit.cli.check.
_IDS = {
    "secret_key": "E003",
    "wrapped_action": "E004",
    "not_the_action": "E005",
    "signature": "E006",
    "duplicate_id": "E007",
}


@checks.register()
def check_middleware(app_configs: t.Any = None, **kwargs: t.Any) -> list[checks.CheckMessage]:
    """Whether ``ActionKitMiddleware`` is in ``MIDDLEWARE``, after what actions need."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if MIDDLEWARE_PATH not in middleware:
        return [
            checks.Error(
                f"{MIDDLEWARE_PATH!r} is not in MIDDLEWARE: no action can run.",
                hint="Add it after AuthenticationMiddleware and MessageMiddleware.",
                id="actionkit.E001",
            )
        ]
    position = middleware.index(MIDDLEWARE_PATH)
    found = []
    for path, what in REQUIRED_BEFORE.items():
        if path in middleware[position + 1 :]:
            found.append(
                checks.Error(
                    f"{MIDDLEWARE_PATH!r} comes before {path!r} in MIDDLEWARE: actions and the"
                    f" page after them would run without {what}.",
                    hint=f"Move {MIDDLEWARE_PATH!r} below {path.rsplit('.', 1)[1]}.",
                    id="actionkit.E002",
                )
            )
    return found


@checks.register()
def check_configuration(app_configs: t.Any = None, **kwargs: t.Any) -> list[checks.CheckMessage]:
    """The page cache's store against the number of workers, and the registry's findings."""
    from ..checks import check
    from .middleware import build_core

    core = build_core(_no_app)
    found: list[checks.CheckMessage] = []
    for problem in check(core):
        if problem.code == "memory_store":
            found.append(
                checks.Warning(
                    problem.message,
                    hint="ACTIONKIT = {'CACHE': BASE_DIR / 'actionkit.sqlite3'} (or a redis://"
                    " URL).",
                    id="actionkit.W001",
                )
            )
        elif problem.code == "store":  # a warning: errors would stop every manage.py command
            found.append(checks.Warning(problem.message, id="actionkit.W002"))
        elif problem.code in _IDS and problem.level == "error":
            found.append(checks.Error(problem.message, id=f"actionkit.{_IDS[problem.code]}"))
    return found


def _no_app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    raise RuntimeError("The middleware built for the system checks serves no request.")
