"""A failing store never fails a request: the real stores' failures, through the middleware.

RedisStore loses its server (stopped, then started again empty); SQLiteStore's file is locked
by another connection holding an exclusive transaction. Pages are served and actions run
throughout, and no page older than an action's revalidation is served, during the outage or
after it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import typing as t
from pathlib import Path

import pytest

from actionkit import ActionMiddleware, Registry, cache_tag, revalidate_path
from actionkit.cache import PageCache
from actionkit.stores import RedisStore, SQLiteStore, Store
from actionkit.testing import ActionClient

from .conftest import RedisServer


class Outage(t.Protocol):
    store: Store

    def begin(self) -> None: ...

    def end(self) -> None: ...


class RedisDown:
    """The store's redis-server is stopped, then started again (empty) on the same port."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.store: Store = RedisStore(server.url, prefix="outage:")

    def begin(self) -> None:
        self.server.stop()

    def end(self) -> None:
        self.server.start()


class SQLiteLocked:
    """Another connection holds an exclusive transaction on the store's file: every write
    fails with "database is locked"."""

    def __init__(self, path: Path) -> None:
        self.store = SQLiteStore(path, timeout=0.05)
        self.path = path
        self.holder: sqlite3.Connection | None = None

    def begin(self) -> None:
        self.holder = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        self.holder.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        assert self.holder is not None
        self.holder.execute("ROLLBACK")
        self.holder.close()
        self.holder = None


@pytest.fixture(params=["redis-stopped", "sqlite-locked"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[RedisDown | SQLiteLocked]:
    made: RedisDown | SQLiteLocked
    if request.param == "redis-stopped":
        made = RedisDown(request.getfixturevalue("redis_server"))
    else:
        made = SQLiteLocked(tmp_path / "cache.sqlite3")
    try:
        yield made
    finally:
        if isinstance(made, SQLiteLocked) and made.holder is not None:
            made.end()
        close = getattr(made.store, "close", None)
        if close is not None:
            close()


def test_a_failing_store_never_fails_a_request(
    outage: RedisDown | SQLiteLocked, caplog: pytest.LogCaptureFixture
) -> None:
    """While the store fails, pages are served uncached and actions run, and after an action's
    revalidation nobody gets the page from before it; the failure is logged once; when the
    store is back, the page is cached again, still never the old one."""
    data = {"version": 1}
    registry = Registry()

    @registry.action(id="bump")
    def bump() -> int:
        data["version"] += 1
        revalidate_path("/posts")
        return data["version"]

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("posts")
        start_response("200 OK", [("Content-Type", "text/html")])
        return [f"<!doctype html><title>posts</title><p>v{data['version']}</p>".encode()]

    app = ActionMiddleware(page, registry=registry, cache=PageCache(outage.store))
    client = ActionClient(app)

    def get() -> tuple[int, str, str]:
        with client.get("/posts") as response:
            return response.status_code, response.headers["Actionkit-Cache"], response.text

    assert get()[:2] == (200, "MISS")
    assert get() == (200, "HIT", "<!doctype html><title>posts</title><p>v1</p>")

    with caplog.at_level(logging.WARNING, logger="actionkit"):
        outage.begin()
        # A page not stored yet: rendered, and the store's refusal to take it is no error.
        with client.get("/other") as response:
            assert response.status_code == 200 and response.text
        for expected in (2, 3):
            status, _, text = get()
            assert status == 200 and f"<p>v{expected - 1}</p>" in text
            answer = client.call(registry["bump"], path="/posts")
            assert answer.status_code == 200, answer.text
            assert answer.json["result"] == expected
            assert f"<p>v{expected}</p>" in answer.json["html"]
            for _ in range(3):
                status, _, text = get()
                assert status == 200 and f"<p>v{expected}</p>" in text, text
    assert caplog.text.count("failed; serving uncached") == 1

    outage.end()
    deadline = time.monotonic() + 10
    seen = []
    while not seen or seen[-1] != "HIT":
        status, cache, text = get()
        assert status == 200 and "<p>v3</p>" in text, text
        seen.append(cache)
        if cache == "BYPASS":
            assert time.monotonic() < deadline, f"the store is not used again: {seen}"
            time.sleep(0.05)  # the store is tried again every SafeStore.retry_every seconds
    assert seen[-1] == "HIT"


_JOB = """
import sys
from actionkit import ActionMiddleware, revalidate_tag
from actionkit.cache.safe import SafeStore
from actionkit.stores import SQLiteStore

SafeStore.exit_patience = float(sys.argv[2])
app = ActionMiddleware(lambda e, s: [], cache=SQLiteStore(sys.argv[1], timeout=0.05))
revalidate_tag("posts")  # the store is locked: kept for it
print("revalidated", flush=True)
"""


@pytest.mark.parametrize("patience", [10.0, 0.3])
def test_a_process_exiting_while_its_store_is_away_waits_to_deliver_or_says_what_is_lost(
    tmp_path: Path, patience: float
) -> None:
    """A job (or a worker stopping gracefully) that revalidated while the store was away ends
    by delivering what waits, once the store is back within ``SafeStore.exit_patience``: the
    daemon thread that delivers them dies with the process, and the old page was then served
    for good. Past the patience, what is lost is logged as an error."""
    import subprocess
    import sys

    from actionkit.stores import Entry

    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path)
    assert store.set("page:/posts", Entry(b"old", {}, tags=["posts"]), store.generation())
    outage = SQLiteLocked(path)
    outage.begin()
    job = subprocess.Popen(
        [sys.executable, "-c", _JOB, str(path), str(patience)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert job.stdout is not None and job.stdout.readline() == "revalidated\n"
        time.sleep(0.5)  # the job has ended its work; the store is still away
    finally:
        outage.end()
    _, errors = job.communicate(timeout=60)
    assert job.returncode == 0, errors
    if patience > 1:
        assert store.get("page:/posts") is None and "lost" not in errors, errors
    else:
        assert "1 revalidation(s) it was keeping for it are lost" in errors, errors
        assert "tag 'posts'" in errors
    store.close()


_OWED = """
import os, sys
from actionkit.cache.safe import SafeStore
from actionkit.stores import MemoryStore

SafeStore.exit_patience = 5.0


class Away(MemoryStore):
    down = False

    def generation(self):
        if self.down:
            raise ConnectionError("away")
        return super().generation()

    def release(self, key):
        if self.down:
            raise ConnectionError("away")
        super().release(key)

    def revalidate_tag(self, tag):
        raise ConnectionError("away")


store = Away()
safe = SafeStore(store)
if sys.argv[1] == "lease":
    assert safe.acquire("page:/p", 30)  # a render holds the page's lease
    store.down = True
    safe.failed(ConnectionError("away"))
    safe.release("page:/p")  # owed to the store, which lets it go by itself in time
else:
    store.down = True
    safe.revalidate_tag("posts")  # kept for the store, by the parent
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # a worker ending gracefully (gunicorn's workers end with sys.exit)
    os.waitpid(pid, 0)
    SafeStore.exit_patience = 0.0
print("done", flush=True)
"""


@pytest.mark.parametrize("case", ["lease", "fork"])
def test_what_a_process_owes_no_store_at_exit_is_not_waited_for(case: str) -> None:
    """A lease owed to a store that is away expires there by itself: the exit does not wait
    for the store nor log a loss. A forked child (a gunicorn worker of a preloaded app) leaves
    the revalidations it inherited to its parent, which delivers them: it neither waits for
    them nor says they are lost (only the parent's own exit does)."""
    import subprocess
    import sys

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _OWED, case], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - started
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr
    if case == "lease":
        assert took < 4 and "are lost" not in done.stderr, (took, done.stderr)  # patience: 5 s
    else:  # the parent's own exit, with no patience left, reports them; the child's does not
        assert done.stderr.count("1 revalidation(s) it was keeping for it are lost") == 1
