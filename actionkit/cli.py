"""The command line: list an application's actions and check its configuration.

.. code-block:: console

    $ python -m actionkit actions sample_app.app:app
    $ python -m actionkit actions 'myapp:create_app()' --json
    $ python -m actionkit check sample_app.app:app --workers 4

``APP`` names the WSGI application as gunicorn takes it: ``module:name`` (``module`` alone means
``module:application``), or a call of a factory in that module with literal arguments,
``module:create_app()`` or ``module:create_app("production")``. The middleware is found in it by
walking: a Flask application's ``app.extensions["actionkit"]``, else the ``wsgi_app`` and ``app``
attributes from the object down, until an :class:`~actionkit.ActionMiddleware` turns up.

``actions`` lists every registered action: its ID, module, function, parameters with their
annotations, and which parameters :meth:`~actionkit.Action.bind` fills.

``check`` reports configuration mistakes and exits with status 1 when it finds one:

- no secret key (``bind()`` fails, bound arguments cannot be read);
- a :class:`~actionkit.stores.MemoryStore` page cache where more than one worker process will
  serve (``--workers N``, else the ``WEB_CONCURRENCY`` environment variable or ``-w N`` in
  ``GUNICORN_CMD_ARGS``, as gunicorn reads them): each worker would miss the others'
  revalidations;
- two functions claiming one action ID;
- an action whose module attribute is not its registered :class:`~actionkit.Action`, such as
  ``@login_required`` stacked above ``@action``: the module then exposes the guarded wrapper while
  the registry runs the unguarded function. Put ``@action`` on top.

With Flask, the same commands are ``flask actionkit actions`` and ``flask actionkit check``
(:data:`flask_cli`, which the extension registers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing as t

from .checks import Problem, check, worker_count
from .introspection import AppLoadError, actions_table, describe, find_middleware, load_app
from .middleware import ActionMiddleware
from .registry import DuplicateActionError

if t.TYPE_CHECKING:
    import click

__all__ = [
    "AppLoadError",
    "Problem",
    "check",
    "describe",
    "find_middleware",
    "load_app",
    "main",
    "worker_count",
]


# -- the command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m actionkit",
        description="List the actions of a WSGI application and check its configuration.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    app_help = (
        "the application as gunicorn takes it: module:app, or module:create_app() for a factory"
    )
    actions = commands.add_parser("actions", help="list every registered action")
    actions.add_argument("app", metavar="APP", help=app_help)
    actions.add_argument("--json", action="store_true", help="print JSON instead of a table")
    checks = commands.add_parser(
        "check", help="report configuration mistakes (exit status 1 when there are any)"
    )
    checks.add_argument("app", metavar="APP", help=app_help)
    checks.add_argument(
        "-w",
        "--workers",
        type=int,
        metavar="N",
        help=(
            "how many worker processes will serve (default: -w/--workers in"
            " GUNICORN_CMD_ARGS, else WEB_CONCURRENCY, else 1)"
        ),
    )
    checks.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run the command line (``python -m actionkit``); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        middleware = find_middleware(load_app(args.app))
    except AppLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DuplicateActionError as e:
        if args.command == "check":
            problems = [Problem("duplicate_id", str(e))]
            _print_problems(args.app, problems, 0, args.json)
            return 1
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "actions":
        try:
            print(actions_text(middleware, as_json=args.json), flush=True)
        except BrokenPipeError:  # `actions --json | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    problems = check(middleware, workers=args.workers)
    try:
        _print_problems(args.app, problems, len(middleware.registry), args.json)
    except BrokenPipeError:  # check | head: the exit status still says what it found
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if any(p.level == "error" for p in problems) else 0


def actions_text(middleware: ActionMiddleware, *, as_json: bool = False) -> str:
    """What the ``actions`` command prints for ``middleware``."""
    described = sorted(
        (describe(act) for act in middleware.registry),
        key=lambda d: (str(d["module"]), d["function"], d["id"]),
    )
    if as_json:
        return json.dumps(described, indent=2)
    if not described:
        return "No actions are registered."
    return actions_table(described)


def _print_problems(app: str, problems: list[Problem], count: int, as_json: bool) -> None:
    print(problems_text(app, problems, count, as_json=as_json), flush=True)


def problems_text(app: str, problems: list[Problem], count: int, *, as_json: bool = False) -> str:
    """What the ``check`` command prints."""
    if as_json:
        return json.dumps(
            [{"code": p.code, "level": p.level, "message": p.message} for p in problems],
            indent=2,
        )
    lines = [f"{p.level}: [{p.code}] {p.message}" for p in problems]
    errors = sum(p.level == "error" for p in problems)
    if errors:
        lines.append(f"{errors} problem(s) found in {app}.")
    else:
        lines.append(f"No problems found in {app} ({count} action(s)).")
    return "\n".join(lines)


# -- Flask ---------------------------------------------------------------------------------------

_flask_cli: click.Group | None = None


def _make_flask_cli() -> click.Group:
    import click
    from flask import current_app
    from flask.cli import AppGroup

    group = AppGroup("actionkit", help="List the actions of this app and check its setup.")

    def middleware() -> ActionMiddleware:
        try:
            return find_middleware(current_app)
        except AppLoadError as e:
            raise click.ClickException(str(e)) from None

    @group.command("actions", help="List every registered action.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def actions_command(as_json: bool) -> None:
        click.echo(actions_text(middleware(), as_json=as_json))

    @group.command("check", help="Report configuration mistakes (exit status 1 if any).")
    @click.option("-w", "--workers", type=int, default=None, help="Worker processes that serve.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
    def check_command(workers: int | None, as_json: bool) -> None:
        found = middleware()
        problems = check(found, workers=workers)
        name = current_app.import_name
        click.echo(problems_text(name, problems, len(found.registry), as_json=as_json))
        if any(p.level == "error" for p in problems):
            raise SystemExit(1)

    return group


def __getattr__(name: str) -> t.Any:
    # The click group for ``flask actionkit ...``, made on first use so that the command line
    # works without Flask installed.
    global _flask_cli
    if name == "flask_cli":
        if _flask_cli is None:
            _flask_cli = _make_flask_cli()
        return _flask_cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
