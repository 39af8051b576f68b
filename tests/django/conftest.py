"""The example project (``examples/django``) set up in this process, for one test module at a
time: its settings, apps and a fresh database, all undone when the module ends, so that no other
module sees Django configured."""

from __future__ import annotations

import os
import sys
import typing as t

import pytest

from actionkit import security

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "django")
EXAMPLE = os.path.abspath(EXAMPLE)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[None]:
    """The example project configured and migrated (a new SQLite file, a memory page cache)."""
    import django
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command
    from django.utils.functional import empty

    directory = tmp_path_factory.mktemp("django")
    names = ("DJANGO_SETTINGS_MODULE", "EXAMPLE_DATABASE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    saved_env = {k: os.environ.get(k) for k in names}
    saved_key = security._process_key
    sys.path.insert(0, EXAMPLE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    os.environ["EXAMPLE_DATABASE"] = str(directory / "db.sqlite3")
    # Once the browser tests ran, Playwright's event loop runs in this thread, and Django would
    # take every database query for one made from async code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Another test module may have set Django up with settings of its own (no database).
    _reset_django(apps, settings, empty)
    try:
        settings.ACTIONKIT = {"CACHE": "memory"}
        settings.LOGGING_CONFIG = None  # the logging of this process stays as it is
        django.setup()
        call_command("migrate", verbosity=0)
        yield
    finally:
        _reset_django(apps, settings, empty)
        sys.path.remove(EXAMPLE)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        security._process_key = saved_key


def _reset_django(apps: t.Any, settings: t.Any, empty: object) -> None:
    """Undo django.setup(): connections, caches of settings, the app registry, the settings."""
    from django.db import connections
    from django.template import engines
    from django.urls import clear_url_caches, set_urlconf
    from django.utils.connection import Local

    from actionkit.django import conf

    connections.close_all()
    connections.__dict__.pop("settings", None)
    connections._settings = None
    connections._connections = Local(connections.thread_critical)
    engines.__dict__.pop("templates", None)
    engines._templates = None
    engines._engines = {}
    clear_url_caches()
    set_urlconf(None)
    conf._caches.clear()
    apps.app_configs = {}
    apps.apps_ready = apps.models_ready = apps.ready = apps.loading = False
    apps.clear_cache()
    settings._wrapped = empty
