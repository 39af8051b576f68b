"""In-process benchmarks of the middleware's own costs: WSGI apps called directly with a prebuilt
environ (never through a test client, whose own ~100 µs would drown the figures).

- fall-through: a Flask page against the same app wrapped by ``ActionMiddleware``, with the page
  cache off and on (the page does not opt in, so it streams through);
- action dispatch: a form submitting an action answered by a 303, against the equivalent
  hand-written Flask POST route;
- typed dispatch: the same form submitting an action whose parameters are annotated (validated
  with pydantic), against the same action taking the raw form;
- memory: RSS of a process holding 10,000 cached 4 KB pages in a ``MemoryStore``, against the bytes
  of those pages (measured in a fresh subprocess);
- like: the JS like with the page in the answer, through the HTTP benchmark's apps, against
  Flask-Caching's like route (the write path without HTTP).

The cache hit against a bare app and ``revalidate_tag`` scaling are in ``bench_cache.py``.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import jinja2
from annotated_types import MaxLen, MinLen
from flask import Flask, redirect, render_template, request

import actionkit
from actionkit import ActionMiddleware, Registry, cache_tag
from actionkit.cache.policy import page_key
from actionkit.flask import ActionKit
from actionkit.stores import MemoryStore

Row = tuple[str, str, str, str, bool | None]  # met: None where there is no target
ROOT = Path(__file__).parent.parent
SECRET = "bench-secret"
PAGES, PAGE_SIZE = 10_000, 4096

# A small but real Flask page: a Jinja template over 20 posts.
TEMPLATE = """<!doctype html><html><head><title>Posts</title></head><body><ul>
{% for post in posts %}<li id="post-{{ post.id }}"><h2>{{ post.title }}</h2>
<p>{{ post.content }}</p><span class="count">{{ post.likes }}</span></li>{% endfor %}
</ul></body></html>"""
POSTS = [
    {"id": n, "title": f"Post number {n}", "content": f"The content of post {n}.", "likes": n}
    for n in range(1, 21)
]


def environ(method: str = "GET", path: str = "/posts", body: bytes = b"", **extra: str) -> dict:
    """A WSGI environ as gunicorn would build it (``wsgi.input`` is replaced for each call)."""
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "text/html",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **extra,
    }


def _start_response(status: str, headers: list, exc_info: t.Any = None) -> t.Callable:
    return _discard


def _discard(data: bytes) -> None:
    pass


class _Body(io.RawIOBase):
    """A request body as gunicorn gives it: read once, never seeked (``seekable()`` is false)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def call(app: t.Callable, base: dict, body: bytes = b"") -> None:
    """One request as a WSGI server makes it: a fresh environ with a body that cannot seek (as
    gunicorn's), the body read, ``close()``."""
    env = base.copy()
    env["wsgi.input"] = _Body(body)
    iterable = app(env, _start_response)
    try:
        for _ in iterable:
            pass
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()


def per_call(variants: dict[str, t.Callable[[], None]], quick: bool) -> dict[str, float]:
    """Seconds per call of each variant: the best of several rounds, the variants interleaved so
    that a noisy neighbour slows them alike."""
    n, rounds = (500, 3) if quick else (2000, 9)
    best = dict.fromkeys(variants, float("inf"))
    for fn in variants.values():  # warm up
        for _ in range(200):
            fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            gc.collect()
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / n)
    return best


def paired(
    variants: dict[str, t.Callable[[], None]], base: str, quick: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per call of each variant (its best block), and its cost over ``base``: the
    median, over many rounds, of its block's time over the time of a block of ``base`` run
    right next to it (in alternating order). A difference of a few per cent of a 200 µs call
    is lost in the best-of figures when the machine's speed drifts between blocks; paired
    short blocks see the same machine."""
    n, rounds = (100, 15) if quick else (200, 60)
    best = dict.fromkeys(variants, float("inf"))
    ratios: dict[str, list[float]] = {name: [] for name in variants if name != base}
    for fn in variants.values():  # warm up
        for _ in range(200):
            fn()

    def block(name: str) -> float:
        fn = variants[name]
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = (time.perf_counter() - start) / n
        best[name] = min(best[name], took)
        return took

    for i in range(rounds):
        for name in ratios:
            gc.collect()
            if i % 2:
                mine, theirs = block(name), block(base)
            else:
                theirs, mine = block(base), block(name)
            ratios[name].append(mine / theirs)
    return best, {name: sorted(r)[len(r) // 2] for name, r in ratios.items()}


# -- fall-through -------------------------------------------------------------------------------


def flask_page_app() -> Flask:
    app = Flask("bench_page")
    app.secret_key = SECRET
    app.jinja_loader = jinja2.DictLoader({"posts.html": TEMPLATE})  # type: ignore[assignment]

    @app.get("/posts")
    def posts() -> str:
        return render_template("posts.html", posts=POSTS)

    @app.post("/posts")
    def post_form() -> str:
        return render_template("posts.html", posts=POSTS[: len(request.form)])

    return app


def fall_through(quick: bool) -> list[Row]:
    plain = flask_page_app()
    off = flask_page_app()
    off.wsgi_app = ActionMiddleware(off.wsgi_app, registry=Registry(), cache=False)  # type: ignore[method-assign]
    on = flask_page_app()
    on.wsgi_app = ActionMiddleware(on.wsgi_app, registry=Registry(), cache=MemoryStore())  # type: ignore[method-assign]
    get = environ()
    body = b"title=hello&content=world"
    post = environ("POST", body=body, CONTENT_TYPE="application/x-www-form-urlencoded")
    times, gets = paired(
        {
            "get/plain": lambda: call(plain, get),
            "get/off": lambda: call(off, get),
            "get/on": lambda: call(on, get),
        },
        "get/plain",
        quick,
    )
    post_times, posts = paired(
        {"post/plain": lambda: call(plain, post, body), "post/off": lambda: call(off, post, body)},
        "post/plain",
        quick,
    )
    times.update(post_times)
    ratios = {**gets, **posts}
    rows: list[Row] = []
    for label, key, base in (
        ("GET of a Flask page (20 posts), cache off", "get/off", "get/plain"),
        ("GET of a Flask page that does not opt in, cache on", "get/on", "get/plain"),
        ("form POST that is not an action (a Flask route)", "post/off", "post/plain"),
    ):
        over = ratios[key] - 1
        rows.append(
            (
                f"fall-through: {label}",
                f"{times[key] * 1e6:.1f} µs vs Flask alone {times[base] * 1e6:.1f} µs"
                f" (paired blocks: {over * times[base] * 1e6:+.1f} µs)",
                f"{over * 100:+.1f} %",
                "≤ 5 %",
                over <= 0.05,
            )
        )
    return rows


# -- action dispatch ----------------------------------------------------------------------------


def dispatch(quick: bool) -> list[Row]:
    """A no-JS form submitting an action (→ 303) against a hand-written Flask POST route."""
    registry = Registry()

    @actionkit.action(id="save", registry=registry)
    def save(form: t.Any) -> None:
        if not form.get("title"):
            return
        actionkit.redirect("/posts")

    with_action = flask_page_app()
    ActionKit(with_action, registry=registry, cache=MemoryStore())
    route = flask_page_app()

    @route.post("/save")
    def save_route() -> t.Any:
        if not request.form.get("title"):
            return "", 422
        return redirect("/posts", 303)

    form = {"CONTENT_TYPE": "application/x-www-form-urlencoded"}
    action_body = b"%24ACTION_ID_save=&title=hello&content=world"
    route_body = b"title=hello&content=world"
    action_env = environ("POST", body=action_body, **form)
    route_env = environ("POST", "/save", body=route_body, **form)
    _expect_303(with_action, action_env, action_body)
    _expect_303(route, route_env, route_body)
    times = per_call(
        {
            "action": lambda: call(with_action, action_env, action_body),
            "route": lambda: call(route, route_env, route_body),
        },
        quick,
    )
    return [
        (
            "action dispatch: form → 303, against a Flask POST route",
            f"{times['action'] * 1e6:.1f} µs vs {times['route'] * 1e6:.1f} µs",
            f"{times['action'] / times['route']:.2f}× the route",
            "",
            None,
        )
    ]


def typed_dispatch(quick: bool) -> list[Row]:
    """The cost of typed parameters: a form → 303 to an action taking ``title`` and ``content``
    by name, validated, against the same action taking the raw form."""
    registry = Registry()

    @actionkit.action(id="raw", registry=registry)
    def raw(form: t.Any) -> None:
        if not 1 <= len(form.get("title", "")) <= 120:
            return
        form.get("content", "")
        actionkit.redirect("/posts")

    @actionkit.action(id="typed", registry=registry)
    def typed(title: t.Annotated[str, MinLen(1), MaxLen(120)], content: str = "") -> None:
        actionkit.redirect("/posts")

    app = flask_page_app()
    ActionKit(app, registry=registry, cache=MemoryStore())
    form = {"CONTENT_TYPE": "application/x-www-form-urlencoded"}
    names = ("raw", "typed")
    bodies = {name: f"%24ACTION_ID_{name}=&title=hello&content=world".encode() for name in names}
    envs = {name: environ("POST", body=body, **form) for name, body in bodies.items()}
    for name in names:
        _expect_303(app, envs[name], bodies[name])
    times = per_call(
        {name: functools.partial(call, app, envs[name], bodies[name]) for name in names}, quick
    )
    extra = times["typed"] - times["raw"]
    return [
        (
            "typed dispatch: form → 303, annotated parameters against the raw form",
            f"{times['typed'] * 1e6:.1f} µs vs {times['raw'] * 1e6:.1f} µs",
            f"{extra * 1e6:+.1f} µs per call",
            "≤ 10 µs more",
            extra <= 10e-6,
        )
    ]


def _expect_303(app: t.Callable, base: dict, body: bytes) -> None:
    statuses = []
    env = base.copy()
    env["wsgi.input"] = io.BytesIO(body)
    iterable = app(env, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(iterable)
    assert [s[:3] for s in statuses] == ["303"], statuses


# -- memory -------------------------------------------------------------------------------------


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def rss_child() -> None:
    """In a fresh process: RSS before and after caching ``PAGES`` distinct 4 KB pages through the
    middleware (each stored as the page cache stores any page: body, status, headers, tags)."""
    store = MemoryStore(max_bytes=1 << 34)

    def pages(environ: dict, start_response: t.Callable) -> list[bytes]:
        cache_tag("pages")
        path = environ["PATH_INFO"]
        body = (path.encode() + b"-" * PAGE_SIZE)[:PAGE_SIZE]  # a new 4 KB object per page
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    app = ActionMiddleware(pages, registry=Registry(), cache=store, secret_key=SECRET)
    call(app, environ(path="/warm-up"))
    bases = [environ(path=f"/page/{n}") for n in range(PAGES)]  # made before the baseline
    gc.collect()
    before = rss_bytes()
    for base in bases:
        call(app, base)
    gc.collect()
    after = rss_bytes()
    held = sum(1 for base in bases if store.get(page_key(base)))  # the key the cache uses
    print(json.dumps({"before": before, "after": after, "held": held}))


def memory() -> list[Row]:
    code = "from bench.bench_inprocess import rss_child; rss_child()"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        return [("RSS of 10k cached 4 KB pages", "failed", done.stderr[-300:], "", False)]
    found = json.loads(done.stdout)
    payload = PAGES * PAGE_SIZE
    delta = found["after"] - found["before"]
    return [
        (
            f"RSS of {PAGES:,} cached {PAGE_SIZE // 1024} KB pages (MemoryStore)",
            f"+{delta / 2**20:.1f} MiB for {payload / 2**20:.1f} MiB of pages"
            f" ({found['held']:,} held)",
            f"{delta / payload:.2f}× the payload",
            "≤ 1.5× the payload",
            delta <= 1.5 * payload and found["held"] == PAGES,
        )
    ]


def like(quick: bool) -> list[Row]:
    """The JS like with the page in the answer, through the HTTP benchmark's own apps
    (``bench/apps``: actionkit with its ``SQLiteStore``, Flask + Flask-Caching with its
    ``FileSystemCache``) over one SQLite database, in-process: the write path without HTTP."""
    folder = Path(tempfile.mkdtemp(prefix="actionkit-bench-like-"))
    os.environ["BENCH_CACHE"] = str(folder / "cache.sqlite3")
    os.environ["BENCH_FLASK_CACHE"] = str(folder / "flask-cache")
    from bench.apps import common

    common.DB = str(folder / "posts.sqlite3")
    common.reset(common.DB)
    from bench.apps import actionkit_app, flask_app  # they read the variables above

    json_body = {"CONTENT_TYPE": "application/json", "HTTP_ORIGIN": "http://127.0.0.1:8000"}
    ours = environ(
        "POST",
        body=b"[1]",
        HTTP_ACTION_ID="increment_like",
        HTTP_ACTION_PAGE="/posts",
        **json_body,
    )
    route = environ("POST", "/posts/1/like")
    for app, base, body in ((actionkit_app.app, ours, b"[1]"), (flask_app.app, route, b"")):
        answer = _answer(app, base, body)
        assert answer[0].startswith("200") and b"Post number 20" in answer[1], answer[0]
    try:
        times = per_call(
            {
                "actionkit": lambda: call(actionkit_app.app, ours, b"[1]"),
                "flask": lambda: call(flask_app.app, route),
            },
            quick,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        (
            "JS like, page in the answer (in-process, the HTTP apps), against Flask-Caching's"
            " like route",
            f"{times['actionkit'] * 1e6:.0f} µs vs {times['flask'] * 1e6:.0f} µs",
            f"{times['flask'] / times['actionkit']:.2f}× as fast as the route",
            "",
            None,
        )
    ]


def _answer(app: t.Callable, base: dict, body: bytes) -> tuple[str, bytes]:
    env = base.copy()
    env["wsgi.input"] = _Body(body)
    status: list[str] = []
    chunks = app(env, lambda s, h, e=None: status.append(s) or _discard)
    try:
        return status[0] if status else "", b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()


def run(quick: bool = False) -> list[Row]:
    # The like last: its apps set the process's secret key.
    return [*fall_through(quick), *dispatch(quick), *typed_dispatch(quick), *memory(), *like(quick)]
