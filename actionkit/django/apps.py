"""The Django app: ``INSTALLED_APPS = [..., "actionkit.django"]``."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.conf import settings
from django.utils.module_loading import autodiscover_modules

from .. import security
from ..cache.api import add_finder
from ..cache.pages import PageCache


class ActionKitConfig(AppConfig):
    """Imports every installed app's ``actions`` module when Django starts (as the admin
    imports ``admin.py``), so that any worker process runs any action from its first request,
    before any page naming it was rendered there."""

    name = "actionkit.django"
    label = "actionkit"
    verbose_name = "actionkit"

    def ready(self) -> None:
        from . import checks  # noqa: F401  registers the system checks
        from .conf import options

        # bind() outside a request (a management command, a job) seals with the project's key.
        security.set_process_key(options().secret_key)
        autodiscover_modules("actions")
        add_finder(project_cache)


def project_cache() -> PageCache | None:
    """The page cache of the Django project, for ``revalidate_*`` outside a request (a
    management command, a job, a shell); ``None`` where no project with this app is set up."""
    if not settings.configured or not apps.ready or not apps.is_installed("actionkit.django"):
        return None
    from .conf import page_cache

    return page_cache()
