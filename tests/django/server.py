"""The example project served by gunicorn, as deployed: two worker processes sharing an SQLite
database and an SQLiteStore page cache."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import typing as t

EXAMPLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "django"))
BIN = os.path.dirname(sys.executable)


class Served(t.NamedTuple):
    url: str
    #: gunicorn's output so far: its log, and one access line per request ("<pid> METHOD path").
    lines: list[str]


@contextlib.contextmanager
def serve_example(directory: str, workers: int = 2) -> t.Iterator[Served]:
    """Migrate a new database in ``directory`` and serve the example with gunicorn on a free
    port; stopped at the end."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "EXAMPLE_DATABASE": os.path.join(directory, "db.sqlite3"),
        "EXAMPLE_CACHE": os.path.join(directory, "cache.sqlite3"),
        "PYTHONPATH": EXAMPLE,
    }
    env.pop("ACTIONKIT_SECRET_KEY", None)  # the key is derived from the project's SECRET_KEY
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=EXAMPLE, env=env, check=True
    )
    process = subprocess.Popen(
        [
            os.path.join(BIN, "gunicorn"),
            "-w",
            str(workers),
            "-b",
            "127.0.0.1:0",
            "--access-logfile",
            "-",
            "--access-logformat",
            "%(p)s %(m)s %(U)s %(s)s",
            "mysite.wsgi",
        ],
        cwd=EXAMPLE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        url = None
        while url is None:
            found = [re.search(r"Listening at: (http://\S+)", line) for line in list(lines)]
            url = next((m.group(1) for m in found if m), None)
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + "".join(lines)
            time.sleep(0.05)
        yield Served(url, lines)
    finally:
        process.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(5)
        process.stdout.close()
