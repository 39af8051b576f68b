"""Finding an application's actions: loading the application as gunicorn names it, finding
its :class:`~actionkit.ActionMiddleware`, and describing each action (see :mod:`actionkit.cli`).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import typing as t

from .exceptions import DuplicateActionError
from .middleware import ActionMiddleware
from .registry import Action

__all__ = ["AppLoadError", "describe", "find_middleware", "load_app"]


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
        if e.name is not None and (module_name + ".").startswith(e.name + "."):
            raise AppLoadError(
                f"No module named {e.name!r} (from {spec!r}); run the command from the folder"
                " that holds it, or add that folder to PYTHONPATH."
            ) from None
        raise _failed(f"Importing {module_name!r}", spec, e) from e
    except DuplicateActionError:
        raise
    except (Exception, SystemExit) as e:  # the app's own: a missing dependency, sys.exit()
        raise _failed(f"Importing {module_name!r}", spec, e) from e
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
        try:
            obj = obj(*args, **kwargs)
        except DuplicateActionError:
            raise
        except Exception as e:
            raise _failed(f"Calling {expression!r}", spec, e) from e
    if obj is None:
        raise AppLoadError(f"{spec!r} is None; a factory must return the application.")
    return obj


def _failed(what: str, spec: str, error: BaseException) -> AppLoadError:
    return AppLoadError(f"{what} (from {spec!r}) failed: {type(error).__name__}: {error}")


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
    if type(app).__module__.startswith("django."):  # a project's WSGIHandler
        raise AppLoadError(
            f"{app!r} is a Django project: run `manage.py actionkit_actions` and `manage.py"
            " check` (they see the project's settings and middleware)."
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
    if t.get_origin(value) is t.Annotated:
        # Bound[int] as written, not typing.Annotated[int, actionkit.Bound]
        base, *extras = t.get_args(value)
        markers = _bound_markers()
        rest = [x for x in extras if not any(x is m or x == m for m in markers)]
        if len(rest) < len(extras):
            inner = base if not rest else t.Annotated.__class_getitem__((base, *rest))
            return f"Bound[{_annotation(inner)}]"
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


def _filled_in_order(action: Action) -> set[str]:
    """The parameters a request can fill only from the bound arguments, as the action's
    compiled signature sees them: every one up to the last ``Bound`` one (an unmarked one in
    front of it too: bind() fills them in order), and those in front of the parameter that
    takes the raw form (named ``form``, or annotated ``MultiDict``). A parameter named
    ``request`` (the framework's request) is not one of them."""
    try:
        compiled = action.parameters
    except Exception:  # an annotation that does not resolve: check reports it
        return set()
    names = {p.name for p in compiled.slots[: compiled.required_bound]}
    in_front: set[str] = set()
    for param in compiled.params:
        if param.source == "form":
            return names | in_front
        if param.positional and param.source in ("value", "model"):
            in_front.add(param.name)
    return names


def describe(action: Action) -> dict[str, t.Any]:
    """What ``actions --json`` says about one action.

    ``bound`` names the parameters that :meth:`~actionkit.Action.bind` fills: those annotated
    ``Bound[...]`` where this version has it, those in front of the last of them, and the
    positional parameters in front of the one that takes the raw form (a form submission calls
    ``fn(*bound_args, form)``).
    """
    fn = action.fn
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    parameters: list[dict[str, t.Any]] = []
    bound = _bound_by_annotation(fn, _bound_markers()) | _filled_in_order(action)
    if signature is not None:
        for p in signature.parameters.values():
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


def _format_parameters(params: list[dict[str, t.Any]]) -> str:
    """The parameters as a signature writes them, ``/`` and ``*`` markers included."""
    parts: list[str] = []
    kinds = [p["kind"] for p in params]
    for i, (p, kind) in enumerate(zip(params, kinds, strict=True)):
        if kind == "keyword_only" and "var_positional" not in kinds[:i] and kind not in kinds[:i]:
            parts.append("*")
        parts.append(_format_parameter(p))
        if kind == "positional_only" and "positional_only" not in kinds[i + 1 :]:
            parts.append("/")
    return "(" + ", ".join(parts) + ")"


def actions_table(described: list[dict[str, t.Any]]) -> str:
    header = ("ID", "MODULE", "FUNCTION", "BOUND", "PARAMETERS")
    rows = [
        (
            d["id"],
            d["module"] or "?",
            d["function"],
            ", ".join(p["name"] for p in d["parameters"] if p["bound"])
            or ("yes" if d["takes_bound_arguments"] else "-"),
            _format_parameters(d["parameters"]),
        )
        for d in described
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
