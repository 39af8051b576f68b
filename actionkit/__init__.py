"""actionkit: Server Actions for any WSGI application.

A page renders a form or a button that names a registered Python function; the browser posts to
the page; :class:`ActionMiddleware` runs the function and answers with the updated page. See
``README.rst`` for the tour and each module's docstring for the details.
"""

from __future__ import annotations

from .cache import cache_life, cache_tag, cached, revalidate_path, revalidate_tag
from .context import Cookies, after, cookies, headers
from .exceptions import (
    ActionKitError,
    ActionSignal,
    BadToken,
    DuplicateActionError,
    InvalidArguments,
    RequestRefused,
    SecretKeyMissing,
)
from .middleware import ActionMiddleware
from .navigation import (
    ActionState,
    NoState,
    action_state,
    fail,
    forbidden,
    not_found,
    permanent_redirect,
    redirect,
    unauthorized,
)
from .params import Bound
from .registry import Action, Registry, action, default_registry, use_server

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ActionKitError",
    "ActionMiddleware",
    "ActionSignal",
    "ActionState",
    "BadToken",
    "Bound",
    "Cookies",
    "DuplicateActionError",
    "InvalidArguments",
    "NoState",
    "Registry",
    "RequestRefused",
    "SecretKeyMissing",
    "action",
    "action_state",
    "after",
    "cache_life",
    "cache_tag",
    "cached",
    "cookies",
    "default_registry",
    "fail",
    "forbidden",
    "headers",
    "not_found",
    "permanent_redirect",
    "redirect",
    "revalidate_path",
    "revalidate_tag",
    "unauthorized",
    "use_server",
]
