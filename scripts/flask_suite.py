"""Run Flask's own test suite with actionkit applied to every Flask app, and compare.

.. code-block:: console

    $ .venv/bin/python scripts/flask_suite.py                 # Flask's suite
    $ .venv/bin/python scripts/flask_suite.py --suite all     # and Flask-Login's, Flask-WTF's
    $ .venv/bin/python scripts/flask_suite.py -- -k redirect  # extra pytest arguments
    $ .venv/bin/python scripts/flask_suite.py --rev HEAD      # actionkit as committed

The sdist of a suite (for Flask: exactly the installed version) is downloaded with pip into
``build/flask-suite/`` and unpacked there. Its tests then run twice with the same pytest
options: once as they are, once with ``ActionKit(app)`` (from :mod:`actionkit.flask`, default
options, so the page cache is on) called on every ``Flask`` right after its construction, as a
user would do. ``ACTIONKIT_SECRET_KEY`` is set for both passes. The outcome of every test id is
compared; a test much slower when wrapped counts as a difference too.

A few tests differ by design (they look at ``app.wsgi_app``, which the extension replaces, or
at what replacing it implies); they are listed in ``EXPECTED`` and reported apart. Any other
difference makes the script exit with status 1.

This file is also the pytest plugin of both passes (``-p flask_suite``): it records each test's
outcome, makes the suites' imports of names that newer pytest releases renamed work, and, when
``FLASK_SUITE_WRAP=1``, wraps every app.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "flask-suite secret key"
# A wrapped test this many seconds slower than unwrapped is reported (a request that waited).
SLOWER = 2.0


class Suite(t.NamedTuple):
    requirement: str  # what pip downloads, pinned
    top: str  # the unpacked directory, after the version
    source: str | None  # the package inside the sdist to test (None: the installed one)
    # Test requirements (pip requirement, module): the missing ones are installed next to it.
    deps: tuple[tuple[str, str], ...] = ()


def _suites() -> dict[str, Suite]:
    flask_version = importlib.metadata.version("flask")
    return {
        # Its "tests" dependency group, less pytest.
        "flask": Suite(
            f"flask=={flask_version}",
            f"flask-{flask_version}",
            None,
            (("asgiref", "asgiref"), ("greenlet", "greenlet"), ("python-dotenv", "dotenv")),
        ),
        "flask-login": Suite(
            "Flask-Login==0.6.3",
            "Flask-Login-0.6.3",
            "src",
            (("asgiref", "asgiref"), ("semantic-version==2.10.0", "semantic_version")),
        ),
        "flask-wtf": Suite(
            "Flask-WTF==1.3.0", "flask_wtf-1.3.0", "src", (("WTForms==3.2.1", "wtforms"),)
        ),
    }


#: Differences by design: test id -> why.
EXPECTED: dict[str, str] = {
    "tests/test_basic.py::test_app_freed_on_zero_refcount": (
        "app.wsgi_app = Middleware(app.wsgi_app) makes a reference cycle (app, its wsgi_app"
        " attribute, the bound method); with the cyclic GC off the app is not freed, as with"
        " Werkzeug's ProxyFix"
    ),
}


# -- the pytest plugin ----------------------------------------------------------------------------

_outcomes: dict[str, dict[str, t.Any]] = {}
_wrapped = [0]  # how many apps got ActionKit


def pytest_configure(config: t.Any) -> None:
    import _pytest.monkeypatch

    # Flask 3.1's tests import notset from there; newer pytest releases call it NOTSET.
    if not hasattr(_pytest.monkeypatch, "notset"):
        from _pytest.compat import NOTSET

        _pytest.monkeypatch.notset = NOTSET  # type: ignore[attr-defined]
    if os.environ.get("FLASK_SUITE_WRAP") == "1":
        _wrap_every_app()


def _wrap_every_app() -> None:
    from flask import Flask

    from actionkit.flask import ActionKit

    original = Flask.__init__

    @functools.wraps(original)
    def __init__(self: Flask, *args: t.Any, **kwargs: t.Any) -> None:
        original(self, *args, **kwargs)
        if "actionkit" not in self.extensions:
            ActionKit(self)
            _wrapped[0] += 1

    Flask.__init__ = __init__  # type: ignore[method-assign]


def pytest_runtest_logreport(report: t.Any) -> None:
    entry = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "duration": 0.0})
    entry["duration"] += report.duration
    if report.when == "call" and hasattr(report, "wasxfail"):
        entry["outcome"] = "xfailed" if report.skipped else "xpassed"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
    elif report.failed:
        entry["outcome"] = "failed" if report.when == "call" else f"error ({report.when})"
        lines = [line for line in report.longreprtext.splitlines() if line.startswith("E ")]
        entry["message"] = (lines[0][1:].strip() if lines else report.longreprtext[-200:])[:160]


def pytest_collectreport(report: t.Any) -> None:
    if report.failed:
        message = report.longreprtext.strip().splitlines()[-1:] or [""]
        _outcomes[report.nodeid] = {
            "outcome": "error (collect)",
            "duration": 0.0,
            "message": message[0][:160],
        }


def pytest_sessionfinish(session: t.Any) -> None:
    path = os.environ.get("FLASK_SUITE_OUTCOMES")
    if path:
        Path(path).write_text(json.dumps({"tests": _outcomes, "apps_wrapped": _wrapped[0]}))


# -- running the suites ---------------------------------------------------------------------------


def _prepare(name: str, suite: Suite, cache: Path) -> tuple[Path, list[str]]:
    """Download and unpack the sdist, install its test requirements; (its directory, paths)."""
    cache.mkdir(parents=True, exist_ok=True)
    top = cache / suite.top
    if not top.is_dir():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            _pip("download", "--no-binary", ":all:", "--no-deps", suite.requirement, "-d", tmp)
            (archive,) = Path(tmp).iterdir()
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            shutil.move(str(Path(tmp) / suite.top), top)
    paths = []
    if suite.source is not None:
        paths.append(str(top / suite.source))
    missing = [req for req, module in suite.deps if importlib.util.find_spec(module) is None]
    if missing:
        deps = cache / f"deps-{name}"
        if not deps.is_dir():
            _pip("install", "--quiet", "--no-deps", "--target", str(deps), *missing)
        paths.append(str(deps))
    return top, paths


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"pip {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def _export(rev: str, into: Path) -> Path:
    """The ``actionkit`` package as of the git revision ``rev``, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "actionkit"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _run_pass(
    top: Path, paths: list[str], wrap: bool, pytest_args: list[str], out: Path
) -> tuple[dict[str, dict[str, t.Any]], int]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *paths, str(ROOT)]),
        FLASK_SUITE_WRAP="1" if wrap else "0",
        FLASK_SUITE_OUTCOMES=str(out),
        ACTIONKIT_SECRET_KEY=SECRET_KEY,
        PYTHONDONTWRITEBYTECODE="1",
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "flask_suite",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(top),
        "-q",
        "--tb=no",
        "--no-header",
        "-o",
        "addopts=",
        "--basetemp",
        str(out.parent / ("wrapped" if wrap else "unwrapped")),
        "tests",
        *pytest_args,
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=top, env=env, capture_output=True, text=True)
    summary = done.stdout.strip().splitlines()[-1:] or done.stderr.strip().splitlines()[-1:]
    label = "wrapped" if wrap else "unwrapped"
    if not out.exists():
        sys.exit(f"pytest did not run ({label}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(out.read_text())
    apps = f", {result['apps_wrapped']} apps wrapped" if wrap else ""
    print(f"  {label:>9}: {' '.join(summary)} ({time.monotonic() - started:.0f} s{apps})")
    return result["tests"], result["apps_wrapped"]


def _compare(
    plain: dict[str, dict[str, t.Any]], wrapped: dict[str, dict[str, t.Any]]
) -> list[tuple[str, str, str, str]]:
    rows = []
    for test_id in sorted(plain.keys() | wrapped.keys()):
        a = plain.get(test_id, {"outcome": "absent", "duration": 0.0})
        b = wrapped.get(test_id, {"outcome": "absent", "duration": 0.0})
        if a["outcome"] != b["outcome"]:
            note = b.get("message") or a.get("message") or ""
            rows.append((test_id, a["outcome"], b["outcome"], note))
        elif b["duration"] - a["duration"] > SLOWER:
            note = f"{a['duration']:.1f} s unwrapped, {b['duration']:.1f} s wrapped"
            rows.append((test_id, a["outcome"], f"{b['outcome']} (slow)", note))
    return rows


def _table(rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"  {'test':<{width}}  {'unwrapped':<10} {'wrapped':<16} detail")
    for test_id, a, b, note in rows:
        print(f"  {test_id:<{width}}  {a:<10} {b:<16} {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suite",
        default="flask",
        help="flask (the default), flask-login, flask-wtf, a comma-separated list, or all",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=ROOT / "build" / "flask-suite", help="sdists go here"
    )
    parser.add_argument(
        "--rev", help="test actionkit as of this git revision instead of the working tree"
    )
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to both pytest runs")
    args = parser.parse_args(argv)
    suites = _suites()
    names = list(suites) if args.suite == "all" else args.suite.split(",")
    unknown = set(names) - set(suites)
    if unknown:
        parser.error(f"unknown suite(s) {sorted(unknown)}; choose from {list(suites)}")
    unexpected = 0
    for name in names:
        suite = suites[name]
        print(f"{name} ({suite.requirement})")
        top, paths = _prepare(name, suite, args.cache_dir.resolve())
        with tempfile.TemporaryDirectory(prefix="flask-suite-") as tmp:
            if args.rev:
                paths = [str(_export(args.rev, Path(tmp) / "actionkit-rev")), *paths]
            plain, _ = _run_pass(top, paths, False, args.pytest_args, Path(tmp) / "plain.json")
            wrapped, apps = _run_pass(
                top, paths, True, args.pytest_args, Path(tmp) / "wrapped.json"
            )
        if not plain or not apps:
            print("  no test ran, or no app was wrapped: nothing was compared")
            unexpected += 1
        rows = _compare(plain, wrapped)
        expected = [r for r in rows if r[0] in EXPECTED]
        others = [r for r in rows if r[0] not in EXPECTED]
        counts = {
            label: {o: sum(1 for e in res.values() if e["outcome"] == o) for o in ("passed",)}
            for label, res in (("unwrapped", plain), ("wrapped", wrapped))
        }
        print(
            f"  {len(plain)} tests; passed: {counts['unwrapped']['passed']} unwrapped,"
            f" {counts['wrapped']['passed']} wrapped; {len(others)} unexpected and"
            f" {len(expected)} expected difference(s)"
        )
        if expected:
            print("  expected differences:")
            for test_id, a, b, _ in expected:
                print(f"    {test_id}: {a} -> {b} ({EXPECTED[test_id]})")
        if others:
            _table(others)
        unexpected += len(others)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
