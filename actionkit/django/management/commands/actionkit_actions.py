"""``manage.py actionkit_actions [--json]``: every registered action, as
``python -m actionkit actions`` lists them."""

from __future__ import annotations

import typing as t

from django.core.management.base import BaseCommand, CommandParser

from ....cli import actions_text
from ...middleware import build_core


class Command(BaseCommand):
    help = "List every registered action: ID, module, function, parameters, bound ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: t.Any, **options: t.Any) -> None:
        core = build_core(_no_app)
        self.stdout.write(actions_text(core, as_json=options["json"]))


def _no_app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    raise RuntimeError("The middleware built for this command serves no request.")
