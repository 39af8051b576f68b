"""Django's Jinja2 backend with actionkit's template globals.

.. code-block:: python

    TEMPLATES = [
        {
            "BACKEND": "django.template.backends.jinja2.Jinja2",
            "DIRS": [BASE_DIR / "jinja2"],
            "OPTIONS": {"environment": "actionkit.django.jinja2.environment"},
        },
    ]

The templates then have ``actionkit_script()``, ``action_form()`` and ``action_state()`` as with
Flask (:mod:`actionkit.jinja`), and call actions' helpers directly:
``{{ delete_post.bind(post.id).button_attrs() }}``. With an environment factory of your own, call
:func:`actionkit.jinja.install` on its environment.
"""

from __future__ import annotations

import typing as t

import jinja2
from django.urls import get_script_prefix

from ..jinja import install
from ..protocol import STATIC_PREFIX


def environment(**options: t.Any) -> jinja2.Environment:
    """A Jinja2 environment for Django's backend, with actionkit's globals installed."""
    env = jinja2.Environment(**options)
    install(env)
    env.globals["actionkit_script"] = _script
    return env


def _script(*args: t.Any, **kwargs: t.Any) -> t.Any:
    """``actionkit_script()`` under Django's script prefix (``FORCE_SCRIPT_NAME``)."""
    from ..jinja import actionkit_script

    kwargs.setdefault("static_url", get_script_prefix().rstrip("/") + STATIC_PREFIX)
    return actionkit_script(*args, **kwargs)
