"""HTTP benchmarks over loopback: actionkit, Next.js 15, Flask + Flask-Caching and a bare WSGI app.

Each system serves the same "posts" page (20 posts; the same template and SQLite data for the
Python systems) and is loaded with ``wrk`` on loopback; gunicorn runs 2 workers, in ``sync`` and
in ``gthread`` mode (4 threads each). Workloads, in this order on each server:

1. cached ``GET /posts``;
2. the like action as each JS client calls it, the re-rendered page in the answer;
3. ``GET /posts`` while likes fire (a "like storm"): both rates, and the stale reads found by a
   checker (a GET showing fewer likes than a like acknowledged before that GET was sent);
4. a create from a form without JavaScript, answered by a 303 (each create keeps the 20 newest
   posts, so the data and the page keep their size).

Every workload is checked once with a real request before it is measured. Next.js is built on
demand (``npm ci && next build`` in ``bench/nextjs``) and reported as not measured when that
fails. Client and server share the machine's cores: only ratios measured in the same run mean
anything.

Run it with the suite's runner, ``python -m bench [--quick] bench_http``.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
NEXT_DIR = HERE / "nextjs"
NEXT_ENV = {"NEXT_TELEMETRY_DISABLED": "1"}
Row = tuple[str, str, str, str, bool | None]  # met: None where there is no target
MODES = ("sync", "gthread")
PYTHON_SYSTEMS = {
    "actionkit": "bench.apps.actionkit_app:app",
    "flask": "bench.apps.flask_app:app",
    "bare": "bench.apps.bare_app:app",
}
WARM_UP = 4  # seconds of GET /posts load on each server before it is measured
LIKED = 1  # the post every like goes to (the storm's checker reads its count)
# The storm: this many wrk connections GET the page while this many others like, plus the checker.
STORM_GETS, STORM_LIKES, CHECK_READERS = 12, 2, 2
TIMEOUT = 10.0  # seconds, for each request of the checks and the checker


# -- processes and requests -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """One system under test, in its own process group, always stopped by its PID."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = _free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self._wait_listening(seconds=60)
            for _ in range(20):  # every worker imports, connects and renders once
                request(self.host, "GET", "/posts")
            # Under load, gthread workers of every Python system serve at half their rate for
            # the first seconds; measurements start after that.
            wrk(f"http://{self.host}/posts", WARM_UP)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_listening(self, seconds: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name}: nothing listens on port {self.port}")

    def stop(self) -> None:
        """SIGTERM to the process group the server leads (gunicorn and its workers, or npx and
        node), SIGKILL if it has not exited within 15 s."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        # Children that outlived their parent (next-server under npx) share its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def request(
    host: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    conn = http.client.HTTPConnection(host, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    finally:
        conn.close()


@dataclasses.dataclass
class Load:
    """What ``wrk`` measured: requests per second and the answers that were not 2xx/3xx or
    failed at the socket."""

    rate: float
    errors: int

    def __str__(self) -> str:
        errors = f" ({self.errors:,} errors)" if self.errors else ""
        return f"{self.rate:,.0f}{errors}"


def _lua(method: str, body: str, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{method}"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def _wrk_command(
    url: str, seconds: float, script: str | None, threads: int, conns: int
) -> list[str]:
    command = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency"]
    if script is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(script)
        command += ["-s", handle.name]
    return [*command, url]


def _wrk_result(command: list[str], output: str) -> Load:
    if "-s" in command:
        os.unlink(command[command.index("-s") + 1])
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return Load(float(rate[1]) if rate else 0.0, errors)


def wrk(
    url: str, seconds: float, script: str | None = None, threads: int = 2, conns: int = 16
) -> Load:
    """``wrk -t2 -c16`` for ``seconds`` (bounded by a timeout)."""
    command = _wrk_command(url, seconds, script, threads, conns)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    return _wrk_result(command, done.stdout)


# -- the systems ------------------------------------------------------------------------------


@dataclasses.dataclass
class System:
    """How to drive one system: its like (JS) and create (no JS) requests."""

    name: str
    like_path: str
    like_body: bytes
    like_headers: dict[str, str]
    create_path: str
    create_body: bytes
    create_headers: dict[str, str]
    #: The like count in the answer to a like.
    like_count: t.Callable[[Answer], int | None]
    #: Whether the answer to a like carries the re-rendered page.
    has_page: t.Callable[[Answer], bool]

    def like_script(self) -> str:
        return _lua("POST", self.like_body.decode(), self.like_headers)

    def create_script(self) -> str:
        return _lua("POST", self.create_body.decode(), self.create_headers)

    def like(self, host: str) -> Answer:
        return request(host, "POST", self.like_path, self.like_body, self.like_headers)

    def create(self, host: str) -> Answer:
        return request(host, "POST", self.create_path, self.create_body, self.create_headers)


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_CREATE_FIELDS = b"title=wrk&content=load"


def _json_field(name: str) -> t.Callable[[Answer], int | None]:
    def count(answer: Answer) -> int | None:
        try:
            return int(json.loads(answer.body)[name])
        except (ValueError, KeyError, TypeError):
            return None

    return count


def _html_has_page(answer: Answer) -> bool:
    try:
        page = json.loads(answer.body)["html"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(page, str) and page.count('<li id="post-') == 20


ACTIONKIT = System(
    "actionkit",
    like_path="/posts",
    like_body=f"[{LIKED}]".encode(),
    like_headers={
        "Content-Type": "application/json",
        "Action-Id": "increment_like",
        "Action-Page": "/posts",
    },
    create_path="/posts",
    create_body=b"%24ACTION_ID_create_post=&" + _CREATE_FIELDS,
    create_headers=_FORM,
    like_count=_json_field("result"),
    has_page=_html_has_page,
)
FLASK = System(
    "flask",
    like_path=f"/posts/{LIKED}/like",
    like_body=b"",
    like_headers={},
    create_path="/posts/create",
    create_body=_CREATE_FIELDS,
    create_headers=_FORM,
    like_count=_json_field("likes"),
    has_page=_html_has_page,
)


def next_system() -> System:
    """Next.js: the action IDs come from the build's server reference manifest."""
    manifest = json.loads(
        (NEXT_DIR / ".next" / "server" / "server-reference-manifest.json").read_text()
    )
    ids = {info["exportedName"]: action_id for action_id, info in manifest["node"].items()}
    boundary = "----actionkitbench"
    fields = {f"$ACTION_ID_{ids['createPost']}": "", "title": "wrk", "content": "load"}
    multipart = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )

    def like_count(answer: Answer) -> int | None:
        # The RSC payload: row 1 is the action's return value, the page's rows follow.
        found = re.search(r"^1:(\d+)$", answer.body, re.M)
        return int(found[1]) if found else None

    return System(
        "next",
        like_path="/posts",
        like_body=f"[{LIKED}]".encode(),
        like_headers={
            "Next-Action": ids["incrementLike"],
            "Content-Type": "text/plain;charset=UTF-8",
            "Accept": "text/x-component",
        },
        create_path="/posts",
        create_body=f"{multipart}--{boundary}--\r\n".encode(),
        create_headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        like_count=like_count,
        has_page=lambda answer: (
            answer.headers.get("content-type", "").startswith("text/x-component")
            and answer.body.count("Post number") == 20
        ),
    )


def python_server(system: str, mode: str, data: Path) -> Server:
    """A Python system under gunicorn; its workers count renders, actions and store writes in
    ``data/counts`` (see :func:`bench.apps.common.read_counts`)."""
    # gthread keeps connections open, each served by the worker that accepted it: on one shared
    # socket the first worker to wake may accept all of wrk's connections and leave the other
    # idle for a whole run. With --reuse-port each worker listens on a socket of its own and the
    # kernel spreads the connections over them. (sync workers close each connection; a shared
    # socket gives each request to whichever worker is free.)
    worker = (
        ["-k", "gthread", "--threads", "4", "--reuse-port"] if mode == "gthread" else ["-k", "sync"]
    )
    (data / "counts").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "-w", "2", *worker, "-b", "127.0.0.1:{port}"]
    return Server(
        f"{system} ({mode})",
        [*command, "--log-level", "warning", PYTHON_SYSTEMS[system]],
        ROOT,
        {
            "BENCH_DB": str(data / "posts.sqlite3"),
            "BENCH_CACHE": str(data / "cache.sqlite3"),
            "BENCH_FLASK_CACHE": str(data / "flask-cache"),
            "BENCH_COUNTS": str(data / "counts"),
        },
    )


def next_server() -> Server:
    """``next start`` on the build's prerendered page: the pages Next.js regenerated in an earlier
    run (written under ``.next/server/route-cache``) would show that run's likes."""
    shutil.rmtree(NEXT_DIR / ".next" / "server" / "route-cache", ignore_errors=True)
    command = ["npx", "--no-install", "next", "start", "-H", "127.0.0.1", "-p", "{port}"]
    return Server("Next.js", command, NEXT_DIR, NEXT_ENV)


def next_ready() -> str | None:
    """Install and build the Next.js app when needed; ``None`` when ready, else why not."""
    if shutil.which("npm") is None:
        return "npm is not installed"
    build_id = NEXT_DIR / ".next" / "BUILD_ID"
    sources = [*NEXT_DIR.glob("app/**/*.js"), *NEXT_DIR.glob("*.js"), NEXT_DIR / "package.json"]
    env = {**os.environ, **NEXT_ENV}
    try:
        if not (NEXT_DIR / "node_modules" / "next").exists():
            print("  npm ci (bench/nextjs)", file=sys.stderr, flush=True)
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=NEXT_DIR, env=env, check=True,
                capture_output=True, timeout=900,
            )  # fmt: skip
        built = build_id.stat().st_mtime if build_id.exists() else 0.0
        if any(path.stat().st_mtime > built for path in sources):
            print("  next build (bench/nextjs)", file=sys.stderr, flush=True)
            subprocess.run(
                ["npx", "--no-install", "next", "build"], cwd=NEXT_DIR, env=env, check=True,
                capture_output=True, timeout=900,
            )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        return f"the Next.js build failed: {e}"
    return None


# -- checks and workloads -----------------------------------------------------------------------


def likes_shown(html: str, post_id: int = LIKED) -> int | None:
    """The like count the page shows for ``post_id`` (React puts ``<!-- -->`` between texts)."""
    found = re.search(rf'id="post-{post_id}".*?class="count">(?:<!-- -->)?(\d+)<', html, re.S)
    return int(found[1]) if found else None


def check_page(host: str) -> str | None:
    answer = request(host, "GET", "/posts")
    if answer.status != 200 or answer.body.count('id="post-') != 20:
        return f"GET /posts answered {answer.status} without the 20 posts"
    if likes_shown(answer.body) is None:
        return f"GET /posts does not show the likes of post {LIKED}"
    return None


def check_like(system: System, host: str) -> str | None:
    before = likes_shown(request(host, "GET", "/posts").body) or 0
    answer = system.like(host)
    if answer.status != 200 or system.like_count(answer) != before + 1:
        return f"the like answered {answer.status}, count {system.like_count(answer)}"
    if not system.has_page(answer):
        return "the answer to the like does not carry the page"
    if likes_shown(request(host, "GET", "/posts").body) != before + 1:
        return "GET /posts after a like does not show it"
    return None


def check_create(system: System, host: str) -> str | None:
    answer = system.create(host)
    if answer.status != 303 or not answer.headers.get("location", "").endswith("/posts"):
        return f"the create answered {answer.status} {answer.headers.get('location')}"
    page = request(host, "GET", "/posts").body
    if page.count('id="post-') != 20 or "wrk" not in page:
        return "GET /posts after a create does not show it among 20 posts"
    return None


@dataclasses.dataclass
class Storm:
    gets: Load  # wrk's GETs
    likes: Load  # wrk's likes
    checked: int  # the checker's reads
    checker_likes: int
    stale: int

    def __str__(self) -> str:
        return (
            f"{self.gets} GET/s + {self.likes} like/s, {self.stale} stale"
            f" of {self.checked:,} checked"
        )


def storm(system: System, host: str, seconds: float) -> Storm:
    """wrk GETs ``/posts`` on 12 connections while another wrk likes on 2; meanwhile the checker
    likes on one connection and reads on two, counting the stale reads: a page showing fewer
    likes than the checker had seen acknowledged before it sent that GET.
    """
    url = f"http://{host}"
    commands = [
        _wrk_command(url + "/posts", seconds, None, 1, STORM_GETS),
        _wrk_command(url + system.like_path, seconds, system.like_script(), 1, STORM_LIKES),
    ]
    lock = threading.Lock()
    acknowledged = 0
    counts = {"read": 0, "like": 0, "stale": 0}
    deadline = time.monotonic() + seconds

    def liker() -> None:
        nonlocal acknowledged
        while time.monotonic() < deadline:
            count = system.like_count(system.like(host))
            with lock:
                counts["like"] += 1
                acknowledged = max(acknowledged, count or 0)

    def reader() -> None:
        while time.monotonic() < deadline:
            with lock:
                floor = acknowledged
            shown = likes_shown(request(host, "GET", "/posts").body)
            with lock:
                counts["read"] += 1
                if shown is None or shown < floor:
                    counts["stale"] += 1

    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for command in commands
    ]
    threads = [threading.Thread(target=liker)]
    threads += [threading.Thread(target=reader) for _ in range(CHECK_READERS)]
    try:
        for thread in threads:
            thread.start()
        outputs = [process.communicate(timeout=seconds + 30)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for thread in threads:
            thread.join(timeout=TIMEOUT + 5)
    gets, likes = (_wrk_result(c, out) for c, out in zip(commands, outputs, strict=True))
    return Storm(gets, likes, counts["read"], counts["like"], counts["stale"])


@dataclasses.dataclass
class Results:
    """Everything measured on one server."""

    get: Load
    like: Load | None = None
    storm: Storm | None = None
    create: Load | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    # What the workers counted (Python systems), summed over the repeats of each workload.
    counted: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def per(self, workload: str, what: str, action: str) -> float | None:
        """``what`` per ``action`` counted during ``workload``, or ``None``."""
        counted = self.counted.get(workload)
        if not counted or not counted[action]:
            return None
        return counted[what] / counted[action]


class Counter:
    """Reads what a Python system's workers counted, before and after a workload."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.before: dict[str, int] = {}

    def __enter__(self) -> Counter:
        if self.folder is not None:
            from bench.apps import common

            self.before = common.read_counts(str(self.folder))
        return self

    def into(self, results: Results, workload: str) -> None:
        if self.folder is None:
            return
        from bench.apps import common

        after = common.read_counts(str(self.folder))
        total = results.counted.setdefault(workload, dict.fromkeys(after, 0))
        for name, value in after.items():
            total[name] += value - self.before.get(name, 0)

    def __exit__(self, *exc: object) -> None:
        pass


def measure(
    servers: dict[str, tuple[System | None, str]],
    seconds: float,
    repeats: int,
    counts: dict[str, Path] | None = None,
) -> dict[str, Results]:
    """Every workload on every server, each checked first and measured ``repeats`` times (the
    best run counts). Within a repeat the servers take turns, so that a machine slowing down
    or speeding up meanwhile weighs on all of them alike and the same-run ratios hold.
    ``counts``: the folder where each Python server's workers count (renders, actions, store
    writes), read around each workload."""
    results = {key: Results(Load(0.0, 0)) for key in servers}
    folders = counts or {}
    for key, (_, host) in servers.items():
        results[key].problems += [p for p in [check_page(host)] if p]

    def best(old: Load | None, new: Load) -> Load:
        if old is None:
            return new
        top = new if new.rate > old.rate else old
        return Load(top.rate, old.errors + new.errors)

    for _ in range(repeats):
        for key, (_, host) in servers.items():
            results[key].get = best(results[key].get, wrk(f"http://{host}/posts", seconds))
    actors = {key: (system, host) for key, (system, host) in servers.items() if system}
    for key, (system, host) in actors.items():
        results[key].problems += [p for p in [check_like(system, host)] if p]
    for _ in range(repeats):
        for key, (system, host) in actors.items():
            with Counter(folders.get(key)) as counter:
                load = wrk(f"http://{host}{system.like_path}", seconds, system.like_script())
            counter.into(results[key], "like")
            results[key].like = best(results[key].like, load)
    storms: dict[str, list[Storm]] = {key: [] for key in actors}
    for _ in range(repeats):
        for key, (system, host) in actors.items():
            with Counter(folders.get(key)) as counter:
                storms[key].append(storm(system, host, seconds))
            counter.into(results[key], "storm")
    for key, runs in storms.items():
        # The best rates; the stale reads of every run.
        top = results[key].storm = max(runs, key=lambda s: s.gets.rate)
        top.stale, top.checked = sum(s.stale for s in runs), sum(s.checked for s in runs)
    for key, (system, host) in actors.items():
        results[key].problems += [p for p in [check_create(system, host)] if p]
    for _ in range(repeats):
        for key, (system, host) in actors.items():
            with Counter(folders.get(key)) as counter:
                load = wrk(f"http://{host}{system.create_path}", seconds, system.create_script())
            counter.into(results[key], "create")
            results[key].create = best(results[key].create, load)
    return results


# -- the run ----------------------------------------------------------------------------------


def run(quick: bool = False) -> list[Row]:
    if shutil.which("wrk") is None:
        return [("HTTP workloads", "not measured", "wrk is not installed", "", False)]
    seconds, repeats = (2, 1) if quick else (10, 2)
    from bench.apps import common

    results: dict[str, Results] = {}
    systems = {"actionkit": ACTIONKIT, "flask": FLASK, "bare": None}
    why_not = next_ready()
    for mode in MODES:
        # Every system of a mode is up at once (an idle server costs nothing) and they are
        # measured in turns; each keeps its own data.
        with contextlib.ExitStack() as stack:
            servers: dict[str, tuple[System | None, str]] = {}
            counts: dict[str, Path] = {}
            for name, system in systems.items():
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="akbench-")))
                common.reset(str(tmp / "posts.sqlite3"))
                server = stack.enter_context(python_server(name, mode, tmp))
                print(f"  {server.name}", file=sys.stderr, flush=True)
                servers[f"{name}/{mode}"] = (system, server.host)
                counts[f"{name}/{mode}"] = tmp / "counts"
            if why_not is None:
                server = stack.enter_context(next_server())
                print(f"  {server.name} ({mode} round)", file=sys.stderr, flush=True)
                servers[f"next/{mode}"] = (next_system(), server.host)
            results.update(measure(servers, seconds, repeats, counts))
    return _rows(results, why_not)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


@dataclasses.dataclass(frozen=True)
class Workload:
    title: str
    figure: t.Callable[[Results], t.Any]  # a Load or a Storm
    rate: t.Callable[[Results], float]
    unit: str
    factors: dict[str, float]  # the target per worker mode: actionkit ≥ factor × Next


WORKLOADS = (
    Workload(
        "cached GET /posts",
        lambda r: r.get,
        lambda r: r.get.rate,
        " req/s",
        {"sync": 3, "gthread": 3},
    ),
    Workload(
        "JS like, page in the answer",
        lambda r: r.like,
        lambda r: _need(r.like).rate,
        " req/s",
        {"sync": 4.5, "gthread": 5},
    ),
    Workload(
        "GET during a like storm",
        lambda r: r.storm,
        lambda r: _need(r.storm).gets.rate,
        "",
        {"sync": 18, "gthread": 25},
    ),
    Workload(
        "no-JS create → 303",
        lambda r: r.create,
        lambda r: _need(r.create).rate,
        " req/s",
        {"sync": 3, "gthread": 3},
    ),
)
# Renders of the page per like during the storm: the like's own, plus the GETs that missed.
RENDERS_PER_LIKE = 1.1


def _per(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rows(results: dict[str, Results], why_not: str | None) -> list[Row]:
    """One row per workload and worker mode: actionkit's figure, the others', same-run ratios."""
    rows: list[Row] = []
    for mode in MODES:
        ak, fl, bare = (results[f"{name}/{mode}"] for name in ("actionkit", "flask", "bare"))
        nx = results.get(f"next/{mode}")
        # Another system failing a check (a stale page after a write) is reported below; a
        # stale page costs it nothing, so the ratios against it stay conservative.
        checked = not ak.problems
        for w in WORKLOADS:
            value = w.rate(ak)
            others = [f"Next {w.figure(nx) if nx else '-'}", f"Flask-Caching {w.figure(fl)}"]
            ratios = [f"{_ratio(value, w.rate(nx)) if nx else 'n/a'} Next"]
            ratios.append(f"{_ratio(value, w.rate(fl))} Flask-Caching")
            factor = w.factors[mode]
            target = f"≥ {factor:g}× Next"
            met = checked and nx is not None and value >= factor * w.rate(nx)
            if w.title.startswith("cached GET"):
                others.append(f"bare {bare.get}")
                ratios.append(f"{_ratio(value, bare.get.rate)} bare")
                target += ", ≥ 0.9× bare"
                met = met and value >= 0.9 * bare.get.rate
            elif ak.storm is not None and w.title.startswith("GET during"):
                ratios[-1] += " (GET/s)"
                target += ", 0 stale"
                met = met and ak.storm.stale == 0
            figure = f"{w.figure(ak)}{w.unit} ({'; '.join(others)})"
            rows.append((f"{w.title}, {mode}", figure, ", ".join(ratios), target, met))
        renders = ak.per("storm", "renders", "likes")
        rows.append(
            (
                f"renders of /posts per like in the storm, {mode}",
                f"{_per(renders)} (Flask-Caching {_per(fl.per('storm', 'renders', 'likes'))})",
                "",
                f"≤ {RENDERS_PER_LIKE:g}",
                checked and renders is not None and renders <= RENDERS_PER_LIKE,
            )
        )
        writes = [
            f"JS like {_per(ak.per('like', 'store_writes', 'likes'))}",
            f"like in the storm {_per(ak.per('storm', 'store_writes', 'likes'))}",
            f"create {_per(ak.per('create', 'store_writes', 'creates'))}",
        ]
        rows.append(
            (f"store write transactions per action, {mode}", ", ".join(writes), "", "", None)
        )
    for key, result in results.items():
        mine = key.startswith("actionkit/")
        rows += [
            (f"check failed: {key}", problem, "", "", False if mine else None)
            for problem in result.problems
        ]
    if why_not is not None:
        rows.append(("Next.js", "not measured", why_not, "", False))
    rows.append(("HTTP setup", _setup(), "", "", None))
    return rows


T = t.TypeVar("T")


def _need(value: T | None) -> T:
    assert value is not None
    return value


def _setup() -> str:
    """The versions and settings behind the HTTP rows."""
    parts = [
        f"gunicorn {version('gunicorn')} -w 2 (gthread: 4 threads, --reuse-port)",
        f"Flask-Caching {version('flask-caching')} FileSystemCache",
    ]
    with contextlib.suppress(OSError, ValueError, KeyError):
        package = json.loads((NEXT_DIR / "node_modules" / "next" / "package.json").read_text())
        parts.append(f"Next.js {package['version']} (next start)")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
        parts.append(f"node {node.stdout.strip()}")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        found = re.search(r"wrk (\S+)", out.stdout + out.stderr)
        parts.append(f"wrk {found[1] if found else '?'} -t2 -c16")
    return "; ".join(parts)
