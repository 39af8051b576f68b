"""The package's layout: modules that import each other only one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import actionkit

PACKAGE = Path(actionkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, ``TYPE_CHECKING``
    imports and imports inside functions included."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                candidates = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            targets.update(c for c in candidates if c in modules and c != name)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return stack[stack.index(node) :] + [node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            # A package importing its own submodules is how a package re-exports; a submodule
            # importing its package's __init__ would be the cycle, and is checked.
            if target.startswith(node + "."):
                continue
            found = visit(target, [*stack, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_no_import_cycle() -> None:
    """No module of the package imports, even only for type checking, a module that imports it
    back (data flows request → decode → run → answer → render/cache, never back up)."""
    graph = _imports()
    assert "actionkit.middleware" in graph and "actionkit.cache.pages" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_context_imports_nothing_of_the_package() -> None:
    """The request plumbing every module builds on depends on no other module."""
    assert _imports()["actionkit.context"] == set()


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself reports a cycle when there is one."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    ("missing", "code", "extra"),
    [
        pytest.param("flask", "import actionkit.flask", "flask", id="flask"),
        pytest.param("django", "import actionkit.django", "django", id="django"),
        pytest.param(
            "redis",
            "from actionkit.stores import RedisStore; RedisStore('redis://x')",
            "redis",
            id="redis",
        ),
    ],
)
def test_a_missing_extra_says_what_to_install(missing: str, code: str, extra: str) -> None:
    """Without its framework or client library, an optional part says which extra to install
    instead of a bare ModuleNotFoundError."""
    script = f"import sys; sys.modules[{missing!r}] = None\n{code}"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert f"pip install 'actionkit[{extra}]'" in done.stderr, done.stderr
