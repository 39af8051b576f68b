"""HTTP benchmarks over loopback: actionkit, Next.js 15, Flask + Flask-Caching and a bare WSGI app.

Each system serves the same "posts" page (20 posts, the same template for the Python systems) and
is loaded with ``wrk``; gunicorn runs 2 workers, in ``sync`` and in ``gthread`` mode. Workloads:

1. cached ``GET /posts``;
2. the like action as each JS client calls it, the re-rendered page in the answer;
3. a create from a form without JavaScript, answered by a 303;
4. ``GET /posts`` while likes fire: both rates and the stale reads (a GET showing fewer likes
   than a like already acknowledged before that GET was sent).

Next.js is built on demand (``npm ci && next build`` in ``bench/nextjs``) and skipped with a note
when npm cannot build it. Client and server share the machine's cores: only the ratios measured
in the same run mean anything.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
NEXT_DIR = HERE / "nextjs"
Row = tuple[str, str, str, str, bool]
LIKE_HEADERS = {
    "Content-Type": "application/json",
    "Action-Id": "increment_like",
    "Action-Page": "/posts",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


class Server:
    """One system under test, started in a fresh data directory and stopped by PID."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = _free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait(self.port, self.process)
        for _ in range(20):  # warm up every worker
            get(self.host, "/posts")
        return self

    def __exit__(self, *exc: t.Any) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def request(
    host: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def get(host: str, path: str) -> str:
    return request(host, "GET", path)[1]


def wrk(url: str, seconds: float, script: str | None = None) -> float:
    """Requests per second from ``wrk -t2 -c16``."""
    command = ["wrk", "-t2", "-c16", f"-d{max(1, int(seconds))}s", url]
    if script is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(script)
        command[1:1] = ["-s", handle.name]
    try:
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        if script is not None:
            os.unlink(handle.name)
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        print(f"  {url}: {errors[1]} non-2xx/3xx answers", file=sys.stderr)
    return float(match[1]) if match else 0.0


def _lua(method: str, body: str, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{method}"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


# -- the systems ------------------------------------------------------------------------------


def python_server(name: str, module: str, mode: str, data: Path) -> Server:
    worker = ["-k", "gthread", "--threads", "4"] if mode == "gthread" else ["-k", "sync"]
    return Server(
        f"{name} ({mode})",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "2",
            *worker,
            "-b",
            "127.0.0.1:{port}",
            "--log-level",
            "warning",
            module,
        ],
        ROOT,
        {
            "BENCH_DB": str(data / "posts.sqlite3"),
            "BENCH_CACHE": str(data / "cache.sqlite3"),
            "BENCH_FLASK_CACHE": str(data / "flask-cache"),
        },
    )


def next_ready() -> str | None:
    """Build the Next.js app if needed; ``None`` when ready, else why it is not."""
    if shutil.which("npm") is None:
        return "npm is not installed"
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}
    try:
        if not (NEXT_DIR / "node_modules" / "next").exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=NEXT_DIR,
                env=env,
                check=True,
                capture_output=True,
                timeout=600,
            )
        if not (NEXT_DIR / ".next" / "BUILD_ID").exists():
            subprocess.run(
                ["npx", "next", "build"],
                cwd=NEXT_DIR,
                env=env,
                check=True,
                capture_output=True,
                timeout=600,
            )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        return f"the Next.js build failed: {e}"
    return None


def next_action_ids() -> dict[str, str]:
    """The IDs of createPost and incrementLike, from the build's server reference manifest."""
    manifest = json.loads(
        (NEXT_DIR / ".next" / "server" / "server-reference-manifest.json").read_text()
    )
    ids = {}
    for action_id, info in manifest["node"].items():
        name = info.get("exportedName")
        if name is None:  # older manifests: look the ID up in the built action module
            name = "?"
        ids[name] = action_id
    return ids


def next_server() -> Server:
    return Server(
        "Next.js 15",
        ["npx", "next", "start", "-H", "127.0.0.1", "-p", "{port}"],
        NEXT_DIR,
        {"NEXT_TELEMETRY_DISABLED": "1"},
    )


# -- workloads --------------------------------------------------------------------------------


def _likes(html: str, post_id: int) -> int | None:
    match = re.search(rf'id="post-{post_id}".*?class="count">(?:<!-- -->)?(\d+)<', html, re.S)
    return int(match[1]) if match else None


def storm(host: str, seconds: float, like: t.Callable[[], int]) -> tuple[float, float, int]:
    """GETs of /posts while likes fire: (GET/s, like/s, stale reads)."""
    acknowledged = 0
    lock = threading.Lock()
    counts = {"get": 0, "like": 0, "stale": 0}
    deadline = time.monotonic() + seconds

    def liker() -> None:
        nonlocal acknowledged
        while time.monotonic() < deadline:
            value = like()
            with lock:
                acknowledged = max(acknowledged, value)
                counts["like"] += 1

    def reader() -> None:
        while time.monotonic() < deadline:
            with lock:
                floor = acknowledged
            seen = _likes(get(host, "/posts"), 1)
            with lock:
                counts["get"] += 1
                if seen is None or seen < floor:
                    counts["stale"] += 1

    threads = [threading.Thread(target=liker) for _ in range(2)]
    threads += [threading.Thread(target=reader) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["get"] / seconds, counts["like"] / seconds, counts["stale"]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def run(quick: bool = False) -> list[Row]:
    if shutil.which("wrk") is None:
        return [("HTTP workloads", "skipped", "wrk is not installed", "", False)]
    seconds = 2 if quick else 10
    repeats = 1 if quick else 2
    rates: dict[str, float] = {}
    stale: dict[str, int] = {}

    def best(key: str, measure: t.Callable[[], float]) -> None:
        rates[key] = max(measure() for _ in range(repeats))

    def measure(
        system: str,
        url: str,
        like_script: str,
        like_path: str,
        like_call: t.Callable[[], int],
        create_script: str,
        create_path: str,
        host: str,
    ) -> None:
        """Likes, the storm, then creates (which rotate post 1 out of the 20 shown)."""
        best(f"like/{system}", lambda: wrk(url + like_path, seconds, like_script))
        gets, likes, bad = storm(host, seconds, like_call)
        rates[f"storm-get/{system}"], rates[f"storm-like/{system}"] = gets, likes
        stale[system] = bad
        best(f"create/{system}", lambda: wrk(url + create_path, seconds, create_script))

    like_ak = _lua("POST", "[1]", LIKE_HEADERS)
    create_ak = _lua(
        "POST",
        "%24ACTION_ID_create_post=&title=wrk&content=load",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    create_flask = _lua(
        "POST", "title=wrk&content=load", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    like_flask = _lua("POST", "", {})

    for mode in ("sync", "gthread"):
        for name, module in (
            ("actionkit", "bench.apps.actionkit_app:app"),
            ("flask", "bench.apps.flask_app:app"),
            ("bare", "bench.apps.bare_app:app"),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                from bench.apps import common

                common.reset(str(Path(tmp) / "posts.sqlite3"))
                with python_server(name, module, mode, Path(tmp)) as server:
                    url = f"http://{server.host}"
                    print(f"  {server.name}", file=sys.stderr, flush=True)
                    best(f"get/{name}/{mode}", lambda url=url: wrk(url + "/posts", seconds))
                    if name == "bare":
                        continue
                    if name == "actionkit":
                        like_script, like_path, create_script, create_path = (
                            like_ak,
                            "/posts",
                            create_ak,
                            "/posts",
                        )

                        def like_call(host: str = server.host) -> int:
                            status, body = request(host, "POST", "/posts", b"[1]", LIKE_HEADERS)
                            return int(json.loads(body)["result"])
                    else:
                        like_script, like_path, create_script, create_path = (
                            like_flask,
                            "/posts/1/like",
                            create_flask,
                            "/posts/create",
                        )

                        def like_call(host: str = server.host) -> int:
                            status, body = request(host, "POST", "/posts/1/like")
                            return int(json.loads(body)["likes"])

                    measure(
                        f"{name}/{mode}",
                        url,
                        like_script,
                        like_path,
                        like_call,
                        create_script,
                        create_path,
                        server.host,
                    )

    why_not = next_ready()
    if why_not is None:
        ids = next_action_ids()
        next_headers = {
            "Next-Action": ids.get("incrementLike", ""),
            "Content-Type": "text/plain;charset=UTF-8",
            "Accept": "text/x-component",
        }
        like_next = _lua("POST", "[1]", next_headers)
        boundary = "----actionkitbench"
        multipart = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="$ACTION_ID_'
            f'{ids.get("createPost", "")}"\r\n\r\n\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nwrk\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"\r\n\r\nload\r\n'
            f"--{boundary}--\r\n"
        )
        create_next = _lua(
            "POST", multipart, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        with next_server() as server:
            url = f"http://{server.host}"
            print(f"  {server.name}", file=sys.stderr, flush=True)
            best("get/next", lambda url=url: wrk(url + "/posts", seconds))

            def like_next_call(host: str = server.host) -> int:
                status, body = request(host, "POST", "/posts", b"[1]", next_headers)
                found = re.findall(r"^1:(\d+)$", body, re.M)
                return int(found[-1]) if found else 0

            measure(
                "next", url, like_next, "/posts", like_next_call, create_next, "/posts", server.host
            )
    return _rows(rates, stale, why_not)


def _rows(rates: dict[str, float], stale: dict[str, int], why_not: str | None) -> list[Row]:
    rows: list[Row] = []
    has_next = why_not is None
    for mode in ("sync", "gthread"):
        ak, fl, bare = (rates[f"get/{s}/{mode}"] for s in ("actionkit", "flask", "bare"))
        nx = rates.get("get/next", 0.0)
        rows.append(
            (
                f"cached GET /posts, {mode}",
                f"{ak:,.0f} req/s (Next {nx:,.0f}, Flask-Caching {fl:,.0f}, bare {bare:,.0f})",
                f"{_ratio(ak, nx)} Next, {_ratio(ak, fl)} Flask, {_ratio(ak, bare)} bare",
                "≥ 3× Next, ≥ 0.9× bare",
                has_next and ak >= 3 * nx and ak >= 0.9 * bare,
            )
        )
        ak, fl = rates[f"like/actionkit/{mode}"], rates[f"like/flask/{mode}"]
        nx = rates.get("like/next", 0.0)
        rows.append(
            (
                f"JS like + page in the answer, {mode}",
                f"{ak:,.0f} req/s (Next {nx:,.0f}, Flask {fl:,.0f})",
                f"{_ratio(ak, nx)} Next, {_ratio(ak, fl)} Flask",
                "≥ 5× Next",
                has_next and ak >= 5 * nx,
            )
        )
        ak, fl = rates[f"create/actionkit/{mode}"], rates[f"create/flask/{mode}"]
        nx = rates.get("create/next", 0.0)
        rows.append(
            (
                f"no-JS create → 303, {mode}",
                f"{ak:,.0f} req/s (Next {nx:,.0f}, Flask {fl:,.0f})",
                f"{_ratio(ak, nx)} Next, {_ratio(ak, fl)} Flask",
                "≥ 3× Next",
                has_next and ak >= 3 * nx,
            )
        )
        ak = rates[f"storm-get/actionkit/{mode}"]
        nx = rates.get("storm-get/next", 0.0)
        rows.append(
            (
                f"GET during a like storm, {mode}",
                f"{ak:,.0f} GET/s + {rates[f'storm-like/actionkit/{mode}']:,.0f} like/s, "
                f"{stale[f'actionkit/{mode}']} stale (Next {nx:,.0f} GET/s, "
                f"{stale.get('next', '-')} stale; Flask-Caching "
                f"{stale[f'flask/{mode}']} stale)",
                f"{_ratio(ak, nx)} Next",
                "≥ 30× Next, 0 stale",
                has_next and ak >= 30 * nx and stale[f"actionkit/{mode}"] == 0,
            )
        )
    if not has_next:
        rows.append(("Next.js 15", "not measured", str(why_not), "", False))
    return rows
