"""Sphinx configuration of the actionkit documentation (``make docs``)."""

from __future__ import annotations

import os
import pathlib
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The package of this checkout (or unpacked sdist), and the snippets the pages include.
sys.path[:0] = [ROOT, HERE]

import actionkit  # noqa: E402

project = "actionkit"
author = "the actionkit authors"
copyright = "2026, the actionkit authors"
release = actionkit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated"]
html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {"description": "Server Actions for any WSGI application"}
pygments_style = "sphinx"

# The included benchmark pages start at a level-1 heading of their own.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# -n (nitpicky): every cross-reference must resolve, except to what these pages do not
# document: other projects' objects (no network for intersphinx while building), and the
# internal modules behind the public ones, which docstrings sometimes name.
nitpick_ignore_regex = [
    (r"py:.*", r"(werkzeug|jinja2|markupsafe|flask|click|redis|sqlite3|os|threading)(\..*)?"),
    (r"py:.*", r"(_typeshed|typing|t|types|collections|builtins)(\..*)?"),
    (r"py:.*", r"(WSGIApplication|WSGIEnvironment|StartResponse|Markup|MultiDict|TestResponse)"),
    (r"py:.*", r"(EnvironHeaders|Environment|F|T|SecretKey|Exposed|TagSpec|ErrorCode|Response)"),
    # The type variables of a typed action (Action[P, R]) and of pydantic.
    (r"py:.*", r"(P|R|pydantic)(\..*)?"),
    (r"py:.*", r"security\.SecretKey"),
    (r"py:.*", r"(RedirectType|PageCache|Rendered|RequestContext|ErrorPage|ActionWrapper)"),
    (r"py:.*", r"actionkit\.(?!(stores|flask|jinja|testing|protocol|cli)(\.|$))\w+(\..*)?"),
    (r"py:.*", r"actionkit\.stores\.(base|memory|sqlite|redis)(\..*)?"),
    # Constants of the protocol module without a doc comment are not in the reference.
    (r"py:data", r"actionkit\.protocol\.[A-Z_]+"),
]

# Every code sample of these pages runs under ``sphinx-build -b doctest`` (``make docs``).
doctest_global_setup = """
import os
os.environ.setdefault("ACTIONKIT_SECRET_KEY", "docs-secret-key-0123456789abcdef")
from actionkit.stores import default_store
default_store().clear()
"""


def _latest_bench_results() -> None:
    """Copy the newest ``bench/results/*.md`` to ``_generated/bench-results.md`` for
    ``benchmarks.rst`` to include."""
    results = sorted(pathlib.Path(ROOT, "bench", "results").glob("*.md"))
    target = pathlib.Path(HERE, "_generated", "bench-results.md")
    text = results[-1].read_text(encoding="utf-8") if results else "No results yet.\n"
    target.parent.mkdir(exist_ok=True)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


_latest_bench_results()
