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
import ast
import importlib
import inspect
import json
import os
import re
import sys
import typing as t
from dataclasses import dataclass, field

from .middleware import ActionMiddleware
from .registry import Action, DuplicateActionError, Registry

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


class AppLoadError(Exception):
    """The application named on the command line cannot be loaded or has no middleware."""


# -- finding the application and its middleware ---------------------------------------------------


def load_app(spec: str) -> object:
    """Import the application named by ``spec`` as gunicorn does.

    ``module:name``, ``module`` (meaning ``module:application``), ``module:name.attribute``, or
    ``module:factory(...)`` with literal arguments, which is called.

    :raises AppLoadError: the module or the name cannot be found, or the expression is not one
        of these forms.
    """
    module_name, _, expression = spec.partition(":")
    expression = expression.strip() or "application"
    if not module_name:
        raise AppLoadError(f"{spec!r} names no module; write it as 'module:app'.")
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        node = None
    call: ast.Call | None = None
    if isinstance(node, ast.Call):
        call, node = node, node.func
    path = _dotted(node)
    if path is None:
        raise AppLoadError(
            f"Cannot read {expression!r} in {spec!r}; write a name ('module:app') or a call of a"
            " factory with literal arguments ('module:create_app()')."
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as gunicorn does, so that 'module' is found here
    try:
        obj: object = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            raise AppLoadError(
                f"No module named {e.name!r} (from {spec!r}); run the command from the folder"
                " that holds it, or add that folder to PYTHONPATH."
            ) from None
        raise
    for part in path:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(
                f"{module_name!r} has no attribute {part!r} (from {spec!r}); name the"
                " application object or its factory."
            ) from None
    if call is not None:
        try:
            args = [ast.literal_eval(arg) for arg in call.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        except ValueError:
            raise AppLoadError(
                f"The arguments of {expression!r} must be literals (strings, numbers, ...)."
            ) from None
        if not callable(obj):
            raise AppLoadError(f"{expression!r} calls {obj!r}, which is not callable.")
        obj = obj(*args, **kwargs)
    if obj is None:
        raise AppLoadError(f"{spec!r} is None; a factory must return the application.")
    return obj


def _dotted(node: ast.expr | None) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; ``None`` for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def find_middleware(app: object) -> ActionMiddleware:
    """The :class:`~actionkit.ActionMiddleware` of ``app``.

    A Flask application's ``app.extensions["actionkit"]``; else the first middleware found by
    following ``wsgi_app`` and ``app`` attributes from ``app`` down.

    :raises AppLoadError: there is none.
    """
    seen: set[int] = set()
    todo = [app]
    while todo:
        obj = todo.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, ActionMiddleware):
            return obj
        extensions = _attribute(obj, "extensions")
        if isinstance(extensions, dict) and isinstance(
            extensions.get("actionkit"), ActionMiddleware
        ):
            return t.cast(ActionMiddleware, extensions["actionkit"])
        todo.extend(
            value
            for value in (_attribute(obj, "wsgi_app"), _attribute(obj, "app"))
            if value is not None
        )
    raise AppLoadError(
        f"No ActionMiddleware found in {app!r}; wrap the WSGI application with"
        " ActionMiddleware(app) or, with Flask, call ActionKit(app)."
    )


def _attribute(obj: object, name: str) -> object:
    try:
        return getattr(obj, name, None)
    except Exception:  # a proxy outside its context, a property that raises: not a way down
        return None


# -- describing actions --------------------------------------------------------------------------


def _bound_markers() -> tuple[object, ...]:
    """The ``Annotated`` metadata of ``actionkit.Bound[...]``, in versions that have it."""
    import actionkit

    alias = getattr(actionkit, "Bound", None)
    if alias is None:
        return ()
    try:
        return tuple(t.get_args(alias[object])[1:])
    except TypeError:
        return ()


def _annotation(value: object) -> str | None:
    if value is inspect.Parameter.empty:
        return None
    if isinstance(value, str):
        return value  # postponed annotations stay as written
    return inspect.formatannotation(value)


def _bound_by_annotation(fn: t.Callable[..., t.Any], markers: tuple[object, ...]) -> set[str]:
    if not markers:
        return set()
    try:
        hints = t.get_type_hints(fn, include_extras=True)
    except Exception:  # an annotation naming what only a type checker imports
        return set()
    names = set()
    for name, hint in hints.items():
        if t.get_origin(hint) is t.Annotated:
            metadata = t.get_args(hint)[1:]
            if any(item is marker or item == marker for item in metadata for marker in markers):
                names.add(name)
    return names


def describe(action: Action) -> dict[str, t.Any]:
    """What ``actions --json`` says about one action.

    ``bound`` names the parameters that :meth:`~actionkit.Action.bind` fills: those annotated
    ``Bound[...]`` where this version has it, and the positional parameters in front of a
    parameter named ``form`` (a form submission calls ``fn(*bound_args, form)``).
    """
    fn = action.fn
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    parameters: list[dict[str, t.Any]] = []
    bound = _bound_by_annotation(fn, _bound_markers())
    if signature is not None:
        params = list(signature.parameters.values())
        names = [p.name for p in params]
        if "form" in names:
            for p in params[: names.index("form")]:
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                    bound.add(p.name)
        for p in params:
            parameters.append(
                {
                    "name": p.name,
                    "kind": p.kind.name.lower(),
                    "annotation": _annotation(p.annotation),
                    "default": None if p.default is p.empty else repr(p.default),
                    "bound": p.name in bound,
                }
            )
    return {
        "id": action.id,
        "name": action.name,
        "module": getattr(fn, "__module__", None),
        "function": getattr(fn, "__qualname__", action.name),
        "parameters": parameters,
        "takes_bound_arguments": bool(bound) or bool(action.bound_args),
        "bound_args": len(action.bound_args),
    }


def _format_parameter(p: dict[str, t.Any]) -> str:
    prefix = {"var_positional": "*", "var_keyword": "**"}.get(p["kind"], "")
    text: str = prefix + p["name"]
    if p["annotation"] is not None:
        text += f": {p['annotation']}"
    if p["default"] is not None:
        text += f" = {p['default']}" if p["annotation"] is not None else f"={p['default']}"
    return text


def _actions_table(described: list[dict[str, t.Any]]) -> str:
    header = ("ID", "MODULE", "FUNCTION", "BOUND", "PARAMETERS")
    rows = [
        (
            d["id"],
            d["module"] or "?",
            d["function"],
            ", ".join(p["name"] for p in d["parameters"] if p["bound"])
            or ("yes" if d["takes_bound_arguments"] else "-"),
            "(" + ", ".join(_format_parameter(p) for p in d["parameters"]) + ")",
        )
        for d in described
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


# -- checking a configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`check`."""

    #: A short name for the kind of finding (``secret_key``, ``memory_store``, ...).
    code: str
    #: What is wrong and how to fix it.
    message: str
    #: ``"error"`` (the exit status says so) or ``"warning"``.
    level: t.Literal["error", "warning"] = "error"


_WORKERS_RE = re.compile(r"(?:^|\s)(?:-w|--workers)(?:\s+|=)(\d+)")


def worker_count(workers: int | None = None, environ: t.Mapping[str, str] | None = None) -> int:
    """How many worker processes will serve: ``workers`` when given, else what gunicorn reads
    from ``WEB_CONCURRENCY`` or ``-w N`` / ``--workers N`` in ``GUNICORN_CMD_ARGS``, else 1."""
    if workers is not None:
        return workers
    env = os.environ if environ is None else environ
    found = _WORKERS_RE.search(env.get("GUNICORN_CMD_ARGS", ""))
    if found:
        return int(found.group(1))
    concurrency = env.get("WEB_CONCURRENCY", "").strip()
    return int(concurrency) if concurrency.isdigit() else 1


@dataclass
class _Report:
    problems: list[Problem] = field(default_factory=list)

    def error(self, code: str, message: str) -> None:
        self.problems.append(Problem(code, message))

    def warning(self, code: str, message: str) -> None:
        self.problems.append(Problem(code, message, "warning"))


def check(middleware: ActionMiddleware, *, workers: int | None = None) -> list[Problem]:
    """The configuration mistakes of ``middleware`` and its registry (see the module).

    :param workers: how many worker processes will serve; by default read from the
        environment as gunicorn does (:func:`worker_count`).
    """
    from .stores import MemoryStore

    report = _Report()
    if middleware.secret_key is None:
        report.error(
            "secret_key",
            "No secret key: bind() fails and bound arguments cannot be read; set"
            " ACTIONKIT_SECRET_KEY (or app.secret_key with Flask) to the same value in every"
            " worker.",
        )
    count = worker_count(workers)
    store = middleware.cache.store if middleware.cache is not None else None
    if isinstance(store, MemoryStore) and count > 1:
        report.error(
            "memory_store",
            f"The page cache is a MemoryStore (the default) but {count} worker processes will"
            " serve: each keeps its own cache and misses the others' revalidations; use"
            " SQLiteStore(path) on one host or RedisStore(url) across hosts.",
        )
    _check_registry(middleware.registry, report)
    if middleware.debug:
        report.warning(
            "debug",
            "debug=True shows tracebacks in the answers of actions that raise; turn it off in"
            " production.",
        )
    return report.problems


def _check_registry(registry: Registry, report: _Report) -> None:
    actions = list(registry)
    if not actions:
        report.warning(
            "no_actions",
            "The registry holds no action; import the modules that define them before the"
            " middleware serves (or pass registry= the one they use).",
        )
    by_id: dict[str, list[Action]] = {}
    by_function: dict[str, list[Action]] = {}
    for act in actions:
        by_id.setdefault(act.id, []).append(act)
        by_function.setdefault(_where(act.fn), []).append(act)
    for action_id, same in by_id.items():
        if len(same) > 1:
            names = ", ".join(_where(a.fn) for a in same)
            report.error(
                "duplicate_id",
                f"Action ID {action_id!r} is claimed by {names}; give each its own id=.",
            )
    for where, same in by_function.items():
        if len(same) > 1:
            ids = ", ".join(repr(a.id) for a in same)
            report.warning(
                "registered_twice",
                f"{where} is registered under {len(same)} IDs ({ids}); pages may name either,"
                " keep one unless an old ID must keep working.",
            )
    for act in actions:
        _check_exposed(act, report)


def _where(fn: t.Callable[..., t.Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _check_exposed(act: Action, report: _Report) -> None:
    """The module attribute of an action should be the action (or at least its function)."""
    qualname = getattr(act.fn, "__qualname__", "")
    module = sys.modules.get(getattr(act.fn, "__module__", None) or "")
    if module is None or not qualname or "<" in qualname:
        return  # defined in a function, a lambda, or nowhere importable: nothing to compare
    obj: object = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return
    if obj is act.fn or (isinstance(obj, Action) and obj.id == act.id):
        return
    wrapped = obj
    while wrapped is not None and not isinstance(wrapped, Action):
        wrapped = getattr(wrapped, "__wrapped__", None)
    if isinstance(wrapped, Action) and wrapped.id == act.id:
        report.error(
            "wrapped_action",
            f"{_where(act.fn)} is {obj!r}, a wrapper around the action: a decorator stacked"
            " above @action guards only the module attribute while the registry runs the"
            " function without it; put @action on top of the other decorators.",
        )
    else:
        report.error(
            "not_the_action",
            f"{_where(act.fn)} is {obj!r}, not the registered action {act.id!r}; the registry"
            " runs another object than the module shows, so put @action on top of any other"
            " decorator and do not rebind the name.",
        )


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
        help="how many worker processes will serve (default: WEB_CONCURRENCY, else 1)",
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
        print(actions_text(middleware, as_json=args.json))
        return 0
    problems = check(middleware, workers=args.workers)
    _print_problems(args.app, problems, len(middleware.registry), args.json)
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
    return _actions_table(described)


def _print_problems(app: str, problems: list[Problem], count: int, as_json: bool) -> None:
    print(problems_text(app, problems, count, as_json=as_json))


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
