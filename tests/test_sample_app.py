"""The sample app end to end: gunicorn with two workers over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import typing as t
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    """gunicorn -w 2 serving the sample app from a fresh instance folder."""
    port = _free_port()
    env = {
        **os.environ,
        "SAMPLE_APP_INSTANCE": str(tmp_path_factory.mktemp("instance")),
        "SAMPLE_APP_BIND": f"127.0.0.1:{port}",
        "SAMPLE_APP_WORKERS": "2",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "sample_app/gunicorn.conf.py",
            "--access-logfile",
            "/dev/null",
            "sample_app.app:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]


def _request(
    host: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def _action_ids(host: str) -> dict[str, str]:
    """The IDs of the page's actions, read from the page as a browser would."""
    status, headers, html = _request(host, "GET", "/posts")
    assert status == 200
    create = re.search(
        r'id="create-form"[^>]*>\s*<input type="hidden" name="\$ACTION_ID_(\w+)', html
    )
    like = re.search(r'"increment_like":\{"id":"(\w+)"', html.replace("&#34;", '"'))
    assert create and like
    return {"create": create[1], "like": like[1]}


def _likes(html: str, post_id: int) -> int:
    match = re.search(rf'id="like-{post_id}".*?<span class="count">(\d+)</span>', html, re.S)
    assert match, f"post {post_id} not on the page"
    return int(match[1])


def test_creates_and_likes_across_two_workers(server: str) -> None:
    """Two concurrent clients create posts and like them over HTTP; after every action, GETs
    of /posts (landing on both workers) show the new state at once; N likes count exactly N."""
    ids = _action_ids(server)
    errors: list[str] = []
    acknowledged: dict[int, int] = {}
    lock = threading.Lock()

    def client(name: str) -> None:
        for n in range(3):
            title = f"{name}-{n}"
            body = urllib.parse.urlencode({f"$ACTION_ID_{ids['create']}": "", "title": title})
            status, headers, _ = _request(
                server,
                "POST",
                "/posts",
                body.encode(),
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            if status != 303 or headers.get("Location") != "/posts":
                errors.append(f"create {title}: {status}")
            for _ in range(4):  # every GET right after the action shows it, on any worker
                status, headers, html = _request(server, "GET", "/posts")
                if title not in html:
                    errors.append(f"{title} missing from a GET ({headers.get('Actionkit-Cache')})")
        status, _, html = _request(server, "GET", "/posts")
        post_id = int(
            re.findall(rf'id="post-(\d+)">\s*<h2><a href="/posts/\d+">{name}-0<', html)[0]
        )
        for _ in range(10):
            status, _, answer = _request(
                server,
                "POST",
                "/posts",
                json.dumps([post_id]).encode(),
                {
                    "Content-Type": "application/json",
                    "Action-Id": ids["like"],
                    "Action-Page": "/posts",
                },
            )
            count = json.loads(answer)["result"]
            with lock:
                acknowledged[post_id] = max(acknowledged.get(post_id, 0), count)
            status, _, html = _request(server, "GET", "/posts")
            if _likes(html, post_id) < count:
                errors.append(f"stale read: {_likes(html, post_id)} < {count}")

    threads = [threading.Thread(target=client, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    status, _, html = _request(server, "GET", "/posts")
    for post_id, count in acknowledged.items():
        assert count == 10 == _likes(html, post_id)
    assert html.count('class="card" id="post-') >= 2 + 6


def test_not_found_page_and_cross_site_refusal(server: str) -> None:
    """A missing post shows the app's 404 page; a cross-site action request is refused."""
    status, _, html = _request(server, "GET", "/posts/999999")
    assert status == 404 and "That post is gone" in html
    ids = _action_ids(server)
    status, _, _ = _request(
        server,
        "POST",
        "/posts",
        b"[1]",
        {
            "Content-Type": "application/json",
            "Action-Id": ids["like"],
            "Origin": "https://evil.example",
        },
    )
    assert status == 403


def test_the_admin_action_runs_only_under_its_guard(tmp_path: t.Any, monkeypatch: t.Any) -> None:
    """reset_likes (under="/admin/") is refused with 404 posted anywhere else, meets the admin
    blueprint's guard (403) for anyone else, and runs for the admin."""
    monkeypatch.setenv("ACTIONKIT_CACHE", "memory")
    from sample_app import app as sample

    app = sample.create_app(str(tmp_path))
    client = app.test_client()
    assert client.submit(sample.actions.create_post, {"title": "Liked"}).status_code == 303
    assert client.call(sample.actions.increment_like, 1, path="/posts").json["result"] == 1
    assert client.submit(sample.reset_likes, path="/posts").status_code == 404
    assert client.submit(sample.reset_likes, path="/admin/").status_code == 403
    client.set_cookie("name", "admin")
    assert " posts, 1 likes in all" in client.get("/admin/").text
    assert client.submit(sample.reset_likes, path="/admin/").status_code == 200
    assert " posts, 0 likes in all" in client.get("/admin/").text
