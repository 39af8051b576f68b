"""In-process cache benchmarks: a cache hit against a bare WSGI call and a Flask-Caching hit;
revalidate_tag at 1k, 10k and 100k entries in a MemoryStore and an SQLiteStore.

WSGI apps are called directly with a prebuilt environ (never through a test client, whose own
cost would drown the figures).
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
import typing as t
import weakref

from werkzeug.test import EnvironBuilder

from actionkit import ActionMiddleware, cache_tag
from actionkit.stores import Entry, MemoryStore, SQLiteStore

PAGE = b"<!doctype html>" + b"x" * 4000


def _per_call(fn: t.Callable[[], object], rounds: int) -> float:
    """Best of five runs of ``rounds`` calls, in seconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter() - start) / rounds)
    return best


def _caller(app: t.Any, environ: dict[str, t.Any]) -> t.Callable[[], object]:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> None:
        pass

    def call() -> object:
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return body

    return call


def bare(environ: t.Any, start_response: t.Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [PAGE]


def tagged(environ: t.Any, start_response: t.Any) -> list[bytes]:
    cache_tag("posts")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [PAGE]


def flask_caching_app() -> t.Any:
    from flask import Flask
    from flask_caching import Cache

    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})

    @app.get("/posts")
    @cache.cached()
    def posts() -> bytes:
        return PAGE

    return app


def run(quick: bool = False) -> list[tuple[str, str, str, str, bool | None]]:
    rounds = 20_000 if quick else 200_000
    environ = EnvironBuilder("/posts").get_environ()
    hit_app = ActionMiddleware(tagged, cache=MemoryStore())
    _caller(hit_app, environ)()  # the MISS that stores it
    t_bare = _per_call(_caller(bare, environ), rounds)
    t_hit = _per_call(_caller(hit_app, environ), rounds)
    flask_app = flask_caching_app()
    _caller(flask_app, environ)()
    t_flask = _per_call(_caller(flask_app, environ), max(rounds // 20, 1000))
    rows = [
        ("bare WSGI call (4 KB page)", f"{t_bare * 1e6:.2f} µs", "1.00×", "", None),
        (
            "actionkit cache hit (MemoryStore)",
            f"{t_hit * 1e6:.2f} µs",
            f"{t_hit / t_bare:.2f}× bare",
            "≤ 4× bare",
            t_hit / t_bare <= 4,
        ),
        (
            "Flask-Caching @cached hit",
            f"{t_flask * 1e6:.2f} µs",
            f"actionkit {t_flask / t_hit:.1f}× faster",
            "≥ 10× faster",
            t_flask / t_hit >= 10,
        ),
    ]
    rows += _revalidation_rows("MemoryStore", lambda: MemoryStore(max_bytes=1 << 40), quick)
    rows += _revalidation_rows("SQLiteStore", _sqlite_store, quick)
    return rows


def _sqlite_store() -> t.Any:
    directory = tempfile.mkdtemp(prefix="actionkit-bench-")
    store = SQLiteStore(os.path.join(directory, "cache.sqlite3"), max_bytes=1 << 40)
    weakref.finalize(store, shutil.rmtree, directory, True)
    return store


def _revalidation_rows(
    name: str, make: t.Callable[[], t.Any], quick: bool
) -> list[tuple[str, str, str, str, bool | None]]:
    """revalidate_tag in stores of 1k, 10k and 100k entries, 10 entries per tag."""
    sizes = (1_000, 10_000) if quick and name != "MemoryStore" else (1_000, 10_000, 100_000)
    timings = {}
    for size in sizes:
        store = make()
        # Every tag has 10 entries whatever the store's size: the cost of a revalidation
        # must follow the tag's entries, not the size of the store.
        tags = size // 10
        for n in range(size):
            store.set(f"page:{n}", Entry(b"x", {}, tags=(f"t{n % tags}",), path=f"/p/{n}"), 0)
        names = [f"t{n}" for n in range(100)]
        best = float("inf")
        gc.collect()
        gc.disable()  # measure the revalidation, not the collection of the setup's garbage
        try:
            for batch in range(3):
                start = time.perf_counter()
                for tag in names[batch * 30 : batch * 30 + 30]:
                    store.revalidate_tag(tag)
                best = min(best, (time.perf_counter() - start) / 30)
        finally:
            gc.enable()
        timings[size] = best
        if hasattr(store, "close"):
            store.close()
    # The target is the default store's. SQLite's figure also follows the depth of its B-trees
    # and how many pages the dropped rows are spread over: shown, not held to it.
    held = name == "MemoryStore"
    rows = []
    for size, seconds in timings.items():
        ratio = seconds / timings[1_000]
        rows.append(
            (
                f"revalidate_tag, {name}, {size:,} entries",
                f"{seconds * 1e6:.1f} µs",
                f"{ratio:.2f}× the 1k figure",
                "≤ 1.5× at 100k" if held and size == 100_000 else "",
                ratio <= 1.5 if held and size == 100_000 else None,
            )
        )
    return rows
