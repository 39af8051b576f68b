"""Where an action's ID comes from, and when two functions would share one.

IDs are derived from the function's module and qualified name, so every worker process computes
the same ID without configuration and restarts keep it, while the ID itself does not show the
name. Two different functions never share one silently: see :func:`check_replacement`.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import types
import typing as t

from .exceptions import DuplicateActionError

#: What an explicit ``id=`` may be.
ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def qualified_name(fn: t.Callable[..., t.Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def derive_id(fn: t.Callable[..., t.Any]) -> str:
    """The ID of ``fn`` when none is given: a hash of where it is defined.

    Identical in every process and across restarts as long as the function keeps its module and
    name; it does not reveal either.
    """
    digest = hashlib.blake2b(
        qualified_name(fn).encode(), digest_size=12, person=b"actionkit.id.v1"
    ).hexdigest()
    return digest


def refuse_methods(fn: t.Callable[..., t.Any]) -> None:
    """``@action`` in a class body would register a function called without its instance."""
    parts = getattr(fn, "__qualname__", "").split(".")
    if inspect.isfunction(fn) and len(parts) > 1 and parts[-2] != "<locals>":
        raise TypeError(
            f"@action on the method {fn.__qualname__}: an action is a plain function, called"
            " without an instance. Define it at module level and bind() what it needs per"
            " object (post.bind(post.id))."
        )


def _same_place(a: types.CodeType, b: types.CodeType) -> bool:
    """Whether two lambdas of one line are the same one compiled again (its body edited, too):
    where its body begins on the line, or where Python keeps no columns (``-X
    no_debug_ranges``), the same code."""
    start_a, start_b = _start(a), _start(b)
    if start_a is None or start_b is None:
        return (a.co_code, a.co_consts, a.co_names) == (b.co_code, b.co_consts, b.co_names)
    return start_a == start_b


def _start(code: types.CodeType) -> int | None:
    """The column at which a lambda's body begins (its first instruction, RESUME, has none)."""
    return min((column for _, _, column, _ in code.co_positions() if column), default=None)


def check_replacement(
    action_id: str, existing: t.Callable[..., t.Any], new: t.Callable[..., t.Any]
) -> None:
    """Allow a module reloaded (the same definition, compiled again) to replace its actions;
    refuse any other function claiming a taken ID."""
    old_name, new_name = qualified_name(existing), qualified_name(new)
    if old_name != new_name:
        raise DuplicateActionError(action_id, old_name, new_name)
    old_code, new_code = getattr(existing, "__code__", None), getattr(new, "__code__", None)
    if (
        old_code is not None
        and new_code is not None
        and old_code is not new_code
        and (old_code.co_filename, old_code.co_firstlineno)
        == (new_code.co_filename, new_code.co_firstlineno)
        # Lambdas on one line share it: the columns of their code tell them apart (and the
        # code itself, where Python keeps no columns: -X no_debug_ranges).
        and ("<lambda>" not in new_name or _same_place(old_code, new_code))
    ):
        return  # the module was imported again
    raise DuplicateActionError(
        action_id,
        old_name,
        "another function of that name",
        "Two functions with one qualified name (closures made by one factory, lambdas, a name"
        " defined twice) would share one ID. Give each its own @action(id=...), or make one"
        " action and pass the per-call values with bind() (action.bind(value)). An app"
        " factory called more than once (one app per test) defines its actions at module"
        " level, or registers them on a Registry of each app's own"
        " (ActionKit(app, registry=Registry()), @registry.action).",
    )
