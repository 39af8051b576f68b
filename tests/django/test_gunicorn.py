"""The example project under gunicorn with two workers: actions run from each worker's first
request, and a revalidation in one worker is seen by the other."""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request

from actionkit.registry import derive_id

from .server import serve_example


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> t.Any:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read().decode()


def _pids(lines: list[str]) -> set[str]:
    """The workers that answered a POST, from gunicorn's access log."""
    return {line.split()[0] for line in list(lines) if " POST /posts " in line}


def _id(name: str) -> str:
    """The derived ID of posts.actions.<name>: the same in every process."""
    fn = type("F", (), {"__module__": "posts.actions", "__qualname__": name})
    return derive_id(fn)


def test_two_workers(tmp_path: t.Any) -> None:
    """Form posts as the first requests of a fresh server reach both workers and run (the
    actions module was imported at start-up); a page cached by both is revalidated for both;
    cross-site posts are refused."""
    with serve_example(str(tmp_path)) as served:
        url = served.url + "/posts"
        create = _id("create_post")

        def post(number: int) -> tuple[int, str | None]:
            data = {f"$ACTION_ID_{create}": "", "title": f"First {number}"}
            status, headers, _ = _request(url, urllib.parse.urlencode(data).encode(), origin)
            return status, headers.get("Location")

        origin = {"Origin": served.url}
        statuses: list[tuple[int, str | None]] = []
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            # Concurrent posts until both workers have answered some; no GET came before.
            while len(_pids(served.lines)) < 2 and len(statuses) < 40:
                statuses += pool.map(post, range(len(statuses), len(statuses) + 4))
                time.sleep(0.05)
        assert set(statuses) == {(303, "/posts")}
        assert len(_pids(served.lines)) == 2, "".join(served.lines)
        first = {}
        for line in served.lines:
            if line.startswith("<"):
                first.setdefault(line.split()[0], line.split()[1])
        assert set(first.values()) == {"POST"}
        last = f"First {len(statuses) - 1}"
        for _ in range(6):  # both workers read the page, from the shared store after the first
            status, headers, text = _request(url)
            assert status == 200 and last in text
        status, headers, _ = _request(url)
        assert headers["Actionkit-Cache"] == "HIT"
        like = _id("increment_like")
        post_id = int(re.findall(r'id="like-(\d+)"', text)[0])
        for _ in range(4):
            status, _, body_text = _request(
                url,
                json.dumps([post_id]).encode(),
                {"Action-Id": like, "Origin": served.url, "Content-Type": "application/json"},
            )
            assert status == 200
        assert json.loads(body_text)["result"] == 4
        for _ in range(6):
            _, _, text = _request(url)
            assert re.search(rf'id="like-{post_id}"[^>]*>♥ <span class="count">4<', text)
        for origin in ("http://evil.example", "null"):
            body = urllib.parse.urlencode({f"$ACTION_ID_{create}": "", "title": "Cross"}).encode()
            assert _request(url, body, {"Origin": origin})[0] == 403
        assert "Cross" not in _request(url)[2]
