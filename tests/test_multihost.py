"""Several hosts sharing one Redis store, as a deployment runs them: two gunicorn instances of
one Flask app, one SQLite database of record and a private redis-server that is paused, killed
and restarted under load; and hosts or workers killed while they render (the workers of one
host sharing an SQLiteStore too)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from actionkit.flask import get_middleware
from actionkit.stores import MemoryStore, RedisStore, SQLiteStore

from .conftest import RedisServer, _free_port

ROOT = Path(__file__).resolve().parent.parent
POSTS = 3
SITE = "site.test"

# -- the sample app's store, from the environment --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "file"),
    [
        pytest.param(None, SQLiteStore, "cache.sqlite3", id="default"),
        pytest.param("", SQLiteStore, "cache.sqlite3", id="empty"),
        pytest.param("memory", MemoryStore, None, id="memory"),
        pytest.param("pages.sqlite3", SQLiteStore, "pages.sqlite3", id="sqlite"),
        pytest.param("redis", RedisStore, None, id="redis"),
    ],
)
def test_sample_app_store_comes_from_the_environment(
    value: str | None,
    kind: type,
    file: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """ACTIONKIT_CACHE chooses the sample app's store ("memory", a redis:// URL, an SQLite
    file in the instance folder); without it, the SQLite file it always used."""
    from sample_app.app import create_app

    if value is None:
        monkeypatch.delenv("ACTIONKIT_CACHE", raising=False)
    elif value == "redis":
        value = request.getfixturevalue("redis_url")
        monkeypatch.setenv("ACTIONKIT_CACHE", value)
    else:
        monkeypatch.setenv("ACTIONKIT_CACHE", value)
    app = create_app(str(tmp_path))
    store: t.Any = get_middleware(app).cache.store  # type: ignore[union-attr]
    try:
        assert isinstance(store, kind)
        if file is not None:
            assert os.path.samefile(store.path, tmp_path / file)
        if kind is RedisStore:
            assert store.url == value
    finally:
        if hasattr(store, "close"):
            store.close()


# -- two hosts, one Redis, an outage under load ----------------------------------------------------


def _create_database(path: str) -> None:
    """The database of record of tests/multihost_app.py: POSTS posts, no likes."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE likes (post INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        connection.executemany("INSERT INTO likes VALUES (?, 0)", [(n,) for n in range(POSTS)])
    connection.close()


def _environment(database: str, redis_url: str) -> dict[str, str]:
    """The environment of the instances: the database of record (created here) and Redis."""
    _create_database(database)
    return {
        **os.environ,
        "ACTIONKIT_CACHE": redis_url,
        "ACTIONKIT_SECRET_KEY": "multihost-secret-key-0123456789",
        "MULTIHOST_DB": database,
        "PYTHONPATH": str(ROOT),
    }


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """One HTTP request to 127.0.0.1:port for the site every instance serves, as behind a
    balancer (a page's key names its host): (status, Actionkit-Cache header, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, body=body, headers={"Host": SITE, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheader("Actionkit-Cache", ""), response.read().decode()
    finally:
        connection.close()


def _gunicorn(
    port: int,
    env: dict[str, str],
    log: t.IO[bytes],
    workers: int = 2,
    threads: int | None = None,
) -> subprocess.Popen[bytes]:
    """An instance: sync workers of tests/multihost_app.py (gthread workers of ``threads``
    threads), in a process group of their own (which os.killpg kills at once)."""
    gthread = [] if threads is None else ["--worker-class", "gthread", "--threads", str(threads)]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            *gthread,
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "2",
            "tests.multihost_app:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_until_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, f"gunicorn on port {port} exited"
        try:
            if _request(port, "GET", "/post/0")[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"gunicorn on port {port} did not start"
        time.sleep(0.05)


@dataclass
class Load:
    """Likes and reads on every instance, and what came of them."""

    ports: list[int]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The highest count returned by an acknowledged like, per post.
    acknowledged: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(POSTS), 0))
    acked_likes: int = 0
    failed_likes: list[str] = field(default_factory=list)
    #: (started, ended, port, cache status) of each read answered 200.
    reads: list[tuple[float, float, int, str]] = field(default_factory=list)
    failed_reads: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    tried: int = 0

    def liker(self, port: int) -> None:
        rng = random.Random(port)
        while not self.stop.is_set():
            post = rng.randrange(POSTS)
            with self.lock:
                self.tried += 1
            try:
                status, _, body = _request(
                    port,
                    "POST",
                    f"/post/{post}",
                    json.dumps([post]).encode(),
                    {"Action-Id": "like", "Content-Type": "application/json"},
                )
            except OSError as e:
                with self.lock:
                    self.failed_likes.append(f"{port} post {post}: {e!r}")
                continue
            if status != 200:
                with self.lock:
                    self.failed_likes.append(f"{port} post {post}: {status} {body[:200]}")
                continue
            count = json.loads(body)["result"]
            with self.lock:
                self.acked_likes += 1
                self.acknowledged[post] = max(self.acknowledged[post], count)

    def reader(self, port: int) -> None:
        rng = random.Random(-port)
        while not self.stop.is_set():
            post = rng.randrange(POSTS)
            with self.lock:
                self.tried += 1
                floor = self.acknowledged[post]  # acknowledged before the read began
            started = time.monotonic()
            try:
                status, cache, body = _request(port, "GET", f"/post/{post}")
            except OSError as e:
                with self.lock:
                    self.failed_reads.append(f"{port} post {post}: {e!r}")
                continue
            ended = time.monotonic()
            found = re.search(r"likes=(\d+)", body)
            with self.lock:
                if status != 200 or found is None:
                    self.failed_reads.append(f"{port} post {post}: {status}")
                    continue
                self.reads.append((started, ended, port, cache))
                if int(found.group(1)) < floor:
                    self.stale.append(
                        f"{port} post {post}: read {found.group(1)} ({cache}) after {floor}"
                    )

    def first_hit(self, after: float) -> float | None:
        """Seconds from ``after`` to the end of the first HIT of a read begun after it."""
        with self.lock:
            ends = [end for start, end, _, cache in self.reads if start >= after and cache == "HIT"]
        return min(ends) - after if ends else None

    def slowest(self, start: float, end: float) -> float:
        """Seconds taken by the slowest read begun from ``start`` to ``end``."""
        with self.lock:
            return max((e - s for s, e, _, _ in self.reads if start <= s < end), default=0.0)

    def count(self, start: float, end: float) -> dict[str, int]:
        with self.lock:
            counts: dict[str, int] = {}
            for started, _, _, cache in self.reads:
                if start <= started < end:
                    counts[cache] = counts.get(cache, 0) + 1
            return counts


def test_two_hosts_share_redis_through_an_outage(tmp_path: Path, redis_server: RedisServer) -> None:
    """Two gunicorn instances (two workers each) of one app share a Redis page cache and an
    SQLite database. Under concurrent likes and reads, Redis is paused, then killed and
    restarted empty on the same port: no read shows fewer likes than a like acknowledged
    before it began, every like is answered 200 and kept, and pages are served from the cache
    again within a second of Redis's return."""
    database = str(tmp_path / "likes.sqlite3")
    env = _environment(database, redis_server.url)
    ports = [_free_port(), _free_port()]
    logs = [open(tmp_path / f"gunicorn-{port}.log", "wb") for port in ports]  # noqa: SIM115
    servers: list[subprocess.Popen[bytes]] = []
    load = Load(ports)
    threads: list[threading.Thread] = []
    marks: dict[str, float] = {}
    try:
        for port, log in zip(ports, logs, strict=True):
            servers.append(_gunicorn(port, env, log))
        for port, server in zip(ports, servers, strict=True):
            _wait_until_serving(port, server)
        for port in ports:
            for role in (load.liker, load.liker, load.reader, load.reader):
                threads.append(threading.Thread(target=role, args=(port,), daemon=True))
        marks["start"] = time.monotonic()
        for thread in threads:
            thread.start()
        load.stop.wait(2.0)  # under load, before any outage

        marks["pause"] = time.monotonic()
        redis_server.pause()
        load.stop.wait(2.0)
        marks["resumed"] = time.monotonic()  # taken first: the recovery times are upper bounds
        redis_server.resume()
        load.stop.wait(2.5)

        marks["kill"] = time.monotonic()
        redis_server.kill()
        load.stop.wait(1.5)
        marks["restarted"] = time.monotonic()
        redis_server.start()
        load.stop.wait(2.5)
        marks["end"] = time.monotonic()
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=20)
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        for log in logs:
            log.close()

    with sqlite3.connect(database) as connection:
        stored = dict(connection.execute("SELECT post, n FROM likes").fetchall())
    connection.close()
    recovered = {
        "after pause": load.first_hit(marks["resumed"]),
        "after restart": load.first_hit(marks["restarted"]),
    }
    bounds = {
        "before": (marks["start"], marks["pause"]),
        "paused": (marks["pause"], marks["resumed"]),
        "after pause": (marks["resumed"], marks["kill"]),
        "killed": (marks["kill"], marks["restarted"]),
        "after restart": (marks["restarted"], marks["end"]),
    }
    phases = {phase: load.count(*bound) for phase, bound in bounds.items()}
    slowest = {phase: load.slowest(*bound) for phase, bound in bounds.items()}
    print(
        f"\nmulti-host: {load.tried} requests tried in {marks['end'] - marks['start']:.1f} s;"
        f" likes acknowledged {load.acked_likes}, failed {len(load.failed_likes)};"
        f" reads answered {len(load.reads)}, failed {len(load.failed_reads)},"
        f" stale {len(load.stale)}; likes stored {sum(stored.values())}"
    )
    for phase, counts in phases.items():
        print(f"  reads {phase}: {counts}, the slowest {slowest[phase]:.3f} s")
    for port in ports:
        said = (tmp_path / f"gunicorn-{port}.log").read_text(errors="replace")
        print(
            f"  port {port}: store failed {said.count('failed; serving uncached')} times,"
            f" back {said.count('answers again;')} times"
        )
    for event, seconds in recovered.items():
        shown = "never" if seconds is None else f"{seconds:.3f} s"
        print(f"  first HIT {event}: {shown}")

    assert not threads or all(not thread.is_alive() for thread in threads)
    assert load.stale == []
    assert load.failed_likes == []
    assert sum(stored.values()) == load.acked_likes
    assert load.failed_reads == []
    # A read waits at most one store timeout or one try of the store (0.5 s each), and never
    # for a render that is over (a lease the outage left in the store: up to 10 s).
    assert max(slowest.values()) < 2.0, slowest
    for event, seconds in recovered.items():
        assert seconds is not None and seconds < 1.0, f"no cache hit within 1 s {event}"


@contextlib.contextmanager
def _two_hosts(
    tmp_path: Path, redis_url: str
) -> t.Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """Two instances (one worker each) on one Redis server: the one to kill (its process,
    its port) and the other one's port."""
    database = str(tmp_path / "likes.sqlite3")
    env = _environment(database, redis_url)
    doomed_port, port = _free_port(), _free_port()
    with open(tmp_path / "doomed.log", "wb") as doomed_log, open(tmp_path / "b.log", "wb") as log:
        doomed = _gunicorn(doomed_port, env, doomed_log, workers=1)
        server = _gunicorn(port, env, log, workers=1)
        try:
            _wait_until_serving(doomed_port, doomed)
            _wait_until_serving(port, server)
            yield doomed, doomed_port, port
        finally:
            for process in (doomed, server):
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait(timeout=10)


def _in_background(port: int, method: str, body: bytes, headers: dict[str, str]) -> None:
    """Send a request whose server is killed before it answers."""

    def send() -> None:
        with contextlib.suppress(OSError):
            _request(port, method, "/post/1", body, {**headers, "X-Render-Seconds": "60"})

    threading.Thread(target=send, daemon=True).start()


def _until(condition: t.Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_host_killed_while_rendering_holds_the_others_up_a_moment_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A host killed while it renders a page that was missing leaves the page's lease in
    Redis. A miss of the page on another host waits for that render about a second (four
    times its own last render, at least a second), not the cache's ``wait`` (10 s); storing
    its page lets the lease go, so the next miss does not wait."""
    store = RedisStore(redis_server.url)
    redis = store._redis
    try:
        with _two_hosts(tmp_path, redis_server.url) as (doomed, doomed_port, port):
            # The page rendered and stored on each host once: a host takes the lease of (and
            # waits for another's render of) a page its last render stored for everyone.
            for each in (doomed_port, port):
                assert _request(each, "GET", "/post/1")[:2] == (200, "MISS")
                store.revalidate_tag("post:1")  # as an action elsewhere would
            _in_background(doomed_port, "GET", b"", {})
            _until(
                lambda: bool(list(redis.scan_iter(match="actionkit:l:*"))),
                "the render of the missing page never began",
            )
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)

            started = time.monotonic()
            status, cache, body = _request(port, "GET", "/post/1")
            waited = time.monotonic() - started
            assert (status, cache) == (200, "MISS") and "likes=0" in body
            assert 0.9 < waited < 5, f"the miss waited {waited:.2f} s for a dead render"
            # Let go once the page is stored, when the server closes the answer (which the
            # client may have read whole before).
            _until(
                lambda: not list(redis.scan_iter(match="actionkit:l:*")),
                "the lease was never let go",
            )
            started = time.monotonic()
            assert _request(port, "GET", "/post/1")[1] == "HIT"
            assert time.monotonic() - started < 1
    finally:
        store.close()


def test_a_host_killed_while_rendering_after_a_like_loses_none_of_its_revalidations(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The revalidations of a like wait for the page rendered after it, to be stored with it,
    at most ``FOLD_PATIENCE`` (0.05 s): a host killed during a longer render has sent them,
    so the other hosts never serve the page from before the like again."""
    store = RedisStore(redis_server.url)
    redis = store._redis
    try:
        with _two_hosts(tmp_path, redis_server.url) as (doomed, doomed_port, port):
            assert _request(port, "GET", "/post/1")[:2] == (200, "MISS")
            assert _request(port, "GET", "/post/1")[:2] == (200, "HIT")
            generation = int(redis.get("actionkit:gen") or 0)
            headers = {"Action-Id": "like", "Content-Type": "application/json"}
            _in_background(doomed_port, "POST", b"[1]", headers)
            _until(
                lambda: int(redis.get("actionkit:gen") or 0) > generation,
                "the like's revalidation was not sent while its page rendered",
            )
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
            status, cache, body = _request(port, "GET", "/post/1")
            assert (status, cache) == (200, "MISS") and "likes=1" in body
            assert _request(port, "GET", "/post/1")[1:] == ("HIT", body)
    finally:
        store.close()


def test_a_worker_killed_while_rendering_after_a_like_leaves_no_stale_page_in_sqlite(
    tmp_path: Path,
) -> None:
    """One host, its workers sharing an ``SQLiteStore``: a worker killed (as the kernel's
    out-of-memory killer would) while it renders the page after a like has sent the like's
    revalidation, so the worker that replaces it does not serve the page from before."""
    cache = str(tmp_path / "cache.sqlite3")
    env = {**_environment(str(tmp_path / "likes.sqlite3"), ""), "ACTIONKIT_CACHE": cache}
    port = _free_port()
    with open(tmp_path / "gunicorn.log", "wb") as log:
        server = _gunicorn(port, env, log, workers=1)
        try:
            _wait_until_serving(port, server)
            assert _request(port, "GET", "/post/1")[:2] == (200, "MISS")
            assert _request(port, "GET", "/post/1")[:2] == (200, "HIT")
            store = SQLiteStore(cache)
            generation = store.generation()
            (worker,) = (
                int(pid)
                for pid in subprocess.check_output(["pgrep", "-P", str(server.pid)]).split()
            )
            headers = {"Action-Id": "like", "Content-Type": "application/json"}
            _in_background(port, "POST", b"[1]", headers)
            _until(
                lambda: store.generation() > generation,
                "the like's revalidation was not sent while its page rendered",
            )
            store.close()
            os.kill(worker, signal.SIGKILL)
            _wait_until_serving(port, server)  # gunicorn starts another worker
            status, cache_status, body = _request(port, "GET", "/post/1")
            assert (status, cache_status) == (200, "MISS") and "likes=1" in body
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)


def test_likes_in_the_threads_of_gthread_workers_each_answer_with_their_own_writes(
    tmp_path: Path,
) -> None:
    """Two gthread workers of four threads sharing an ``SQLiteStore``, eight clients liking
    one post at once, each render after a like taking 10 ms (so that likes wait for the render
    of the page under way in their worker, and the next render is the page of them all):
    every answer shows its own like, no read after an answer shows fewer likes, and the page
    is stored with the last of them."""
    cache = str(tmp_path / "cache.sqlite3")
    env = {**_environment(str(tmp_path / "likes.sqlite3"), ""), "ACTIONKIT_CACHE": cache}
    port = _free_port()
    answers: list[tuple[int, int]] = []  # (the like's count, the count its page shows)
    stale: list[str] = []
    lock = threading.Lock()
    headers = {
        "Action-Id": "like",
        "Content-Type": "application/json",
        "X-Render-Seconds": "0.01",
    }

    def liker() -> None:
        for _ in range(15):
            status, _, body = _request(port, "POST", "/post/1", b"[1]", headers)
            assert status == 200, body
            answer = json.loads(body)
            shown = int(re.search(r"likes=(\d+)", answer["html"]).group(1))  # type: ignore[union-attr]
            with lock:
                answers.append((answer["result"], shown))
                floor = max(count for count, _ in answers)
            page = _request(port, "GET", "/post/1")[2]
            read = int(re.search(r"likes=(\d+)", page).group(1))  # type: ignore[union-attr]
            if read < floor:
                with lock:
                    stale.append(f"read {read} after {floor} was acknowledged")

    with open(tmp_path / "gunicorn.log", "wb") as log:
        server = _gunicorn(port, env, log, workers=2, threads=4)
        try:
            _wait_until_serving(port, server)
            threads = [threading.Thread(target=liker) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert len(answers) == 120
            assert all(shown >= count for count, shown in answers), answers
            assert stale == []
            status, cache_status, body = _request(port, "GET", "/post/1")
            assert (status, cache_status) == (200, "HIT") and "likes=120" in body
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
