"""The ``ACTIONKIT`` setting, read and checked, and the objects made from it once per process.

.. code-block:: python

    ACTIONKIT = {
        "CACHE": "/var/cache/mysite/actionkit.sqlite3",  # or "memory", "redis://...", False
        "ALLOWED_ORIGINS": ["https://admin.example.com"],
        "BODY_LIMIT": 1_048_576,
        "TRUST_FORWARDED": False,
        # "SECRET_KEY": derived from Django's SECRET_KEY (and SECRET_KEY_FALLBACKS)
    }

Every key is optional. The page cache is made once per process for a given ``CACHE``, so every
middleware instance (a test client makes one per client) and every ``revalidate_*`` outside a
request (a management command, a job) share one store.
"""

from __future__ import annotations

import os
import threading
import typing as t
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.crypto import salted_hmac

from ..cache import PageCache
from ..middleware import BODY_LIMIT
from ..registry import Registry, default_registry
from ..stores import MemoryStore, SQLiteStore

if t.TYPE_CHECKING:
    from .. import security
    from ..stores import Store

#: The keys the ``ACTIONKIT`` setting may hold.
KEYS = (
    "CACHE",
    "SECRET_KEY",
    "ALLOWED_ORIGINS",
    "TRUST_FORWARDED",
    "BODY_LIMIT",
    "DEBUG",
    "REGISTRY",
)
# The label of the key derived from Django's SECRET_KEY: the same SECRET_KEY gives another key
# for any other use.
_KEY_SALT = "actionkit.django.secret-key"

_lock = threading.Lock()
_caches: dict[object, PageCache] = {}


@dataclass(frozen=True)
class Options:
    """The ``ACTIONKIT`` setting with its defaults applied."""

    cache: object
    secret_key: security.SecretKey | None
    allowed_origins: tuple[str, ...]
    trust_forwarded: bool
    body_limit: int
    debug: bool
    registry: Registry


def options() -> Options:
    """The ``ACTIONKIT`` setting, checked, with Django's settings as the defaults.

    :raises ImproperlyConfigured: an unknown key or a value of the wrong kind.
    """
    given = getattr(settings, "ACTIONKIT", {})
    if not isinstance(given, dict):
        raise ImproperlyConfigured(f"ACTIONKIT must be a dict, not {given!r}.")
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown key(s) {unknown!r} in the ACTIONKIT setting; valid: {list(KEYS)!r}."
        )
    origins = given.get("ALLOWED_ORIGINS")
    if origins is None:
        # As Django reads them: https://*.example.com is the subdomains' https pages only.
        origins = list(getattr(settings, "CSRF_TRUSTED_ORIGINS", ()))
    elif isinstance(origins, str):
        raise ImproperlyConfigured(
            f"ACTIONKIT['ALLOWED_ORIGINS'] is a list of origins, not the string {origins!r}."
        )
    registry = given.get("REGISTRY", default_registry)
    if not isinstance(registry, Registry):
        raise ImproperlyConfigured(
            f"ACTIONKIT['REGISTRY'] must be an actionkit.Registry, not {registry!r}."
        )
    return Options(
        cache=given.get("CACHE", "memory"),
        secret_key=given.get("SECRET_KEY") or derived_key(),
        allowed_origins=tuple(origins),
        trust_forwarded=bool(given.get("TRUST_FORWARDED", settings.USE_X_FORWARDED_HOST)),
        body_limit=given.get("BODY_LIMIT", BODY_LIMIT),
        debug=bool(given.get("DEBUG", settings.DEBUG)),
        registry=registry,
    )


def derived_key() -> tuple[str, ...] | None:
    """The keys that seal bound arguments, derived from ``SECRET_KEY`` and then
    ``SECRET_KEY_FALLBACKS`` (so a rotation of Django's key rotates these too); never the
    Django key itself, which signs sessions and more."""
    try:
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    except ImproperlyConfigured:
        return None
    keys = tuple(
        salted_hmac(_KEY_SALT, "bind", secret=s, algorithm="sha256").hexdigest()
        for s in secrets
        if s
    )
    return keys or None


def page_cache() -> PageCache | None:
    """The page cache of the project, made once per process and ``CACHE`` value (made again
    once the ``ACTIONKIT`` setting changes: see _settings_changed); ``None`` when ``CACHE`` is
    ``False``."""
    spec = options().cache
    if spec is False or spec is None:
        return None
    key: object = spec if isinstance(spec, str | os.PathLike) else id(spec)
    with _lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = PageCache(_store(spec))
        return cache


def _store(spec: object) -> Store:
    """A store from ``CACHE``: a store object, ``"memory"``, a Redis URL or an SQLite path."""
    if isinstance(spec, PageCache):
        return spec.store
    if not isinstance(spec, str | os.PathLike):
        return t.cast("Store", spec)
    text = os.fspath(spec)
    if not text:
        raise ImproperlyConfigured(
            "ACTIONKIT['CACHE'] is empty; use 'memory', a redis:// URL, the path of an SQLite"
            " file, or False for no page cache."
        )
    if text == "memory":
        return MemoryStore()
    if text.startswith(("redis://", "rediss://", "unix://")):
        from ..stores.redis import RedisStore

        return RedisStore(text)
    base = getattr(settings, "BASE_DIR", None)
    if base is not None and not os.path.isabs(text):
        text = os.path.join(os.fspath(base), text)
    return SQLiteStore(text)


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: t.Any) -> None:
    """A test that sets ``ACTIONKIT`` (``override_settings``) gets, with ``"memory"``, a store
    of its own (made anew on entering and on leaving), which every client of the test shares,
    as a project's workers share theirs; a store in a file or Redis is the same one again."""
    if setting == "ACTIONKIT":
        with _lock:
            _caches.pop("memory", None)
