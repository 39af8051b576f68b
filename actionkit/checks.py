"""Checking a configuration for the mistakes that pass silently (see :mod:`actionkit.cli`):
no secret key, a per-process store under several workers, a store that cannot be reached, two
functions claiming one ID, an action whose module shows a wrapper the registry does not run, an
action whose parameters' annotations cannot be validated.
"""

from __future__ import annotations

import os
import re
import sys
import typing as t
from dataclasses import dataclass, field

from .middleware import ActionMiddleware
from .registry import Action, Registry

__all__ = ["Problem", "check", "worker_count"]


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`check`."""

    #: A short name for the kind of finding (``secret_key``, ``memory_store``, ...).
    code: str
    #: What is wrong and how to fix it.
    message: str
    #: ``"error"`` (the exit status says so) or ``"warning"``.
    level: t.Literal["error", "warning"] = "error"


_WORKERS_RE = re.compile(r"(?:^|\s)(?:-w\s*|--workers(?:\s+|=))(\d+)")


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
            " ACTIONKIT_SECRET_KEY (Flask: app.secret_key; Django: SECRET_KEY or"
            " ACTIONKIT['SECRET_KEY']) to the same value in every worker.",
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
    if store is not None and not isinstance(store, MemoryStore):
        try:
            store.generation()  # a read: nothing is written
        except Exception as e:
            report.error(
                "store",
                f"The page cache's store {store!r} cannot be reached ({type(e).__name__}: {e}):"
                " the workers would serve every page uncached until it answers.",
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
        _check_signature(act, report)


def _where(fn: t.Callable[..., t.Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _check_signature(act: Action, report: _Report) -> None:
    """The parameters of an action compile (an annotation that names what only a type checker
    imports, or that pydantic cannot validate, fails only at the action's first request)."""
    try:
        act.parameters  # noqa: B018
    except TypeError as e:
        report.error("signature", f"{_where(act.fn)}: {str(e).splitlines()[0]}")


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
    if obj is act.fn or (isinstance(obj, Action) and (obj.id == act.id or obj.fn is act.fn)):
        return  # (an Action of the same function: registered under a second, older ID)
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
