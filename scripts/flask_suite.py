"""Run Flask's own test suite with actionkit applied to every Flask app, and compare.

.. code-block:: console

    $ .venv/bin/python scripts/flask_suite.py                   # Flask's suite
    $ .venv/bin/python scripts/flask_suite.py --suite all       # and the extensions' suites
    $ .venv/bin/python scripts/flask_suite.py --suite flask-cors,flask-limiter
    $ .venv/bin/python scripts/flask_suite.py -- -k redirect    # extra pytest arguments
    $ .venv/bin/python scripts/flask_suite.py --rev HEAD        # actionkit as committed

The suites (``_suites``): Flask's, and those of the extensions Flask-Login, Flask-WTF,
Flask-SQLAlchemy, Flask-Caching, Flask-CORS, Flask-HTTPAuth, Flask-Limiter, Flask-Session,
Flask-JWT-Extended, Flask-Talisman, Flask-Compress, flask-smorest, flask-marshmallow, APIFlask
(a subclass of ``Flask``), Flask-SocketIO and Flask-Moment, each at a pinned version whose
sdist ships its tests. Tests that need a server (Redis, Memcached, MongoDB) are left out.
Flask-Babel and Flask-Principal are not there: no sdist of a release of theirs that runs with
Flask 3 has its tests.

The sdist of a suite (for Flask: exactly the installed version) is downloaded with pip into
``build/flask-suite/`` and unpacked there; the test requirements that the environment lacks are
installed with pip next to it (``deps-NAME``), never into the environment. Its tests then run
twice with the same pytest options and in the same order: once as they are, once with
``ActionKit(app)`` (from :mod:`actionkit.flask`, default options, so the page cache is on)
called on every ``Flask`` right after its construction, as a user would do.
``ACTIONKIT_SECRET_KEY`` is set for both passes. The outcome of every test id is compared; a
test much slower when wrapped counts as a difference too.

A few tests differ by design (they look at ``app.wsgi_app``, which the extension replaces, or
at what replacing it implies); they are listed in ``EXPECTED`` and reported apart. Any other
difference makes the script exit with status 1.

This file is also the pytest plugin of both passes (``-p flask_suite``): it records each test's
outcome, leaves out the tests that use a fixture of ``Suite.servers``, makes the suites' imports
of names that newer pytest releases renamed work, and, when ``FLASK_SUITE_WRAP=1``, wraps every
app.
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
    # What pytest is given to choose the tests (paths, -k).
    tests: tuple[str, ...] = ("tests",)
    # Fixtures that start or reach a server (Redis, Memcached, MongoDB): their tests are left out.
    servers: tuple[str, ...] = ()


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
        "flask-sqlalchemy": Suite(
            "Flask-SQLAlchemy==3.1.1",
            "flask_sqlalchemy-3.1.1",
            "src",
            (("SQLAlchemy==2.0.23", "sqlalchemy"),),
        ),
        "flask-caching": Suite(
            "Flask-Caching==2.5.1",
            "flask_caching-2.5.1",
            "src",
            (("pytest-xprocess==1.0.2", "xprocess"), ("psutil==7.2.2", "psutil")),
            # Its MemcachedCache needs a Memcached client library.
            ("tests", "--deselect", "tests/test_init.py::test_init_nullcache[MemcachedCache]"),
            servers=("redis_server", "memcache_server"),
        ),
        "flask-cors": Suite("Flask-CORS==6.0.5", "flask_cors-6.0.5", "."),
        "flask-httpauth": Suite("Flask-HTTPAuth==4.8.1", "flask_httpauth-4.8.1", "src"),
        "flask-limiter": Suite(
            "Flask-Limiter==4.1.1",
            "flask_limiter-4.1.1",
            ".",
            (
                ("limits==5.8.0", "limits"),
                ("Deprecated==1.3.1", "deprecated"),
                ("wrapt==2.5.2", "wrapt"),
                ("ordered-set==4.1.0", "ordered_set"),
                ("hiro==1.1.1", "hiro"),
                ("pymemcache==4.0.0", "pymemcache"),
                ("pymongo==4.20.0", "pymongo"),
                ("dnspython==2.9.2", "dns"),
                ("Flask-RESTful==0.3.10", "flask_restful"),
                ("aniso8601==10.0.1", "aniso8601"),
                ("pytz==2026.6", "pytz"),
                ("six==1.17.0", "six"),
                ("pytest-mock==3.17.0", "pytest_mock"),
                ("pytest-check==3.0.3", "pytest_check"),
            ),
            # It expects a Redis server (none of its fixtures starts).
            ("tests", "--deselect", "tests/test_error_handling.py::test_fallback_to_memory"),
            servers=(
                "docker_services",
                "redis_connection",
                "memcached_connection",
                "mongo_connection",
            ),
        ),
        # The last release whose sdist has tests. The others need a Redis, Memcached or MongoDB
        # server, or fail with Flask-SQLAlchemy 3 (no table made).
        "flask-session": Suite(
            "Flask-Session==0.5.0",
            "Flask-Session-0.5.0",
            "src",
            tests=("test_session.py", "-k", "null or filesystem"),
        ),
        "flask-jwt-extended": Suite(
            "Flask-JWT-Extended==4.7.4",
            "flask_jwt_extended-4.7.4",
            ".",
            (
                ("PyJWT==2.15.1", "jwt"),
                ("python-dateutil==2.9.0.post0", "dateutil"),
                ("six==1.17.0", "six"),
            ),
            # Its tests sign with keys shorter than PyJWT now warns about (warnings are errors).
            ("tests", "-W", "ignore::jwt.warnings.InsecureKeyLengthWarning"),
        ),
        "flask-talisman": Suite(
            "flask-talisman==1.1.0",
            "flask-talisman-1.1.0",
            ".",
            tests=("flask_talisman/talisman_test.py",),
        ),
        "flask-compress": Suite(
            "Flask-Compress==1.25",
            "flask_compress-1.25",
            ".",
            (("Brotli==1.2.1", "brotli"), ("backports.zstd==1.8.0", "backports.zstd")),
        ),
        "flask-smorest": Suite(
            "flask-smorest==0.47.0",
            "flask_smorest-0.47.0",
            "src",
            (
                ("marshmallow==4.4.0", "marshmallow"),
                ("webargs==8.7.1", "webargs"),
                ("apispec==6.10.1", "apispec"),
            ),
        ),
        "flask-socketio": Suite(
            "Flask-SocketIO==5.7.0",
            "flask_socketio-5.7.0",
            "src",
            (
                ("python-socketio==5.18.1", "socketio"),
                ("python-engineio==4.15.1", "engineio"),
                ("bidict==0.24.1", "bidict"),
                ("simple-websocket==1.1.0", "simple_websocket"),
                ("wsproto==1.3.2", "wsproto"),
                ("h11==0.16.0", "h11"),
            ),
            ("test_socketio.py",),
        ),
        "flask-marshmallow": Suite(
            "flask-marshmallow==1.5.0",
            "flask_marshmallow-1.5.0",
            "src",
            (
                ("marshmallow==4.4.0", "marshmallow"),
                ("marshmallow-sqlalchemy==1.6.0", "marshmallow_sqlalchemy"),
                ("Flask-SQLAlchemy==3.1.1", "flask_sqlalchemy"),
                ("SQLAlchemy==2.0.23", "sqlalchemy"),
            ),
        ),
        "apiflask": Suite(
            "APIFlask==3.1.2",
            "apiflask-3.1.2",
            "src",
            (
                ("flask-marshmallow==1.5.0", "flask_marshmallow"),
                ("marshmallow==4.4.0", "marshmallow"),
                ("webargs==8.7.1", "webargs"),
                ("apispec==6.10.1", "apispec"),
                ("Flask-HTTPAuth==4.8.1", "flask_httpauth"),
                ("email-validator==2.4.0", "email_validator"),
                ("dnspython==2.9.2", "dns"),
                ("openapi-spec-validator==0.9.0", "openapi_spec_validator"),
                ("openapi-schema-validator==0.9.0", "openapi_schema_validator"),
                ("jsonschema==4.26.0", "jsonschema"),
                ("jsonschema-path==0.5.0", "jsonschema_path"),
                ("jsonschema-specifications==2025.9.1", "jsonschema_specifications"),
                ("referencing==0.37.0", "referencing"),
                ("rpds-py==2026.9.1", "rpds"),
                ("attrs==26.1.0", "attrs"),
                ("pathable==0.6.0", "pathable"),
                ("lazy-object-proxy==1.13.0", "lazy_object_proxy"),
                ("rfc3339-validator==0.1.4", "rfc3339_validator"),
                ("six==1.17.0", "six"),
                ("pydantic-settings==2.16.3", "pydantic_settings"),
                ("Flask-SQLAlchemy==3.1.1", "flask_sqlalchemy"),
                ("SQLAlchemy==2.0.23", "sqlalchemy"),
                ("marshmallow-dataclass==8.7.1", "marshmallow_dataclass"),
                ("typing-inspect==0.9.0", "typing_inspect"),
            ),
            # The test left out makes a marshmallow Number field, abstract in marshmallow 4.
            (
                "tests",
                "examples",
                "--deselect",
                "tests/test_openapi_headers.py::test_spec_with_dict_headers",
            ),
        ),
        "flask-moment": Suite("Flask-Moment==1.0.6", "flask_moment-1.0.6", "src"),
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


def pytest_collection_modifyitems(config: t.Any, items: list[t.Any]) -> None:
    """Leave out the tests that need a server (``Suite.servers``)."""
    servers = set(filter(None, os.environ.get("FLASK_SUITE_SERVERS", "").split(",")))
    if not servers:
        return
    needing = [item for item in items if servers & set(getattr(item, "fixturenames", ()))]
    if needing:
        config.hook.pytest_deselected(items=needing)
        items[:] = [item for item in items if item not in needing]


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
    missing = [req for req, module in suite.deps if not _importable(module)]
    if missing:
        deps = cache / f"deps-{name}"
        listed = deps / "requirements.txt"  # what it holds: installed again when a pin changes
        if not listed.is_file() or listed.read_text().split() != missing:
            shutil.rmtree(deps, ignore_errors=True)
            _pip("install", "--quiet", "--no-deps", "--target", str(deps), *missing)
            listed.write_text("\n".join(missing) + "\n")
        paths.append(str(deps))
    return top, paths


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (backports.zstd)
        return False


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
    suite: Suite, top: Path, paths: list[str], wrap: bool, pytest_args: list[str], out: Path
) -> tuple[dict[str, dict[str, t.Any]], int]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *paths, str(ROOT)]),
        FLASK_SUITE_WRAP="1" if wrap else "0",
        FLASK_SUITE_OUTCOMES=str(out),
        FLASK_SUITE_SERVERS=",".join(suite.servers),
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
        "-p",
        "no:randomly",  # the same order in both passes
        "--rootdir",
        str(top),
        "-q",
        "--tb=no",
        "--no-header",
        "-o",
        "addopts=",
        "--basetemp",
        str(out.parent / ("wrapped" if wrap else "unwrapped")),
        *suite.tests,
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


def _differences(
    expected: list[tuple[str, str, str, str]],
    others: list[tuple[str, str, str, str]],
    reasons: dict[str, str],
) -> None:
    """Print the expected differences with their ``reasons``, then the others as a table."""
    if expected:
        print("  expected differences:")
        for test_id, a, b, _ in expected:
            print(f"    {test_id}: {a} -> {b} ({reasons[test_id]})")
    if others:
        _table(others)


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
        help=f"one of {', '.join(_suites())} (flask is the default), a comma-separated list,"
        " or all",
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
            plain, _ = _run_pass(
                suite, top, paths, False, args.pytest_args, Path(tmp) / "plain.json"
            )
            wrapped, apps = _run_pass(
                suite, top, paths, True, args.pytest_args, Path(tmp) / "wrapped.json"
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
        _differences(expected, others, EXPECTED)
        unexpected += len(others)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
