"""Run Django's own test suite with actionkit applied to every middleware chain, and compare.

.. code-block:: console

    $ .venv/bin/python scripts/django_suite.py                       # the test apps of APPS
    $ .venv/bin/python scripts/django_suite.py --apps csrf_tests,i18n
    $ .venv/bin/python scripts/django_suite.py -- -k redirect        # extra runtests.py arguments
    $ .venv/bin/python scripts/django_suite.py --rev HEAD            # actionkit as committed

The sdist of exactly the installed Django is downloaded with pip into ``build/django-suite/``
and unpacked there. Its ``tests/runtests.py`` then runs the test apps of ``APPS`` twice, against
the installed Django (``runtests.py`` imports ``django`` from ``sys.path``, on which the sdist's
copy is not) with the same arguments: once as they are, once with actionkit applied as a
project applies it: ``"actionkit.django"`` appended to ``INSTALLED_APPS`` (tests that replace
``INSTALLED_APPS`` go without it) and ``actionkit.django.ActionKitMiddleware`` appended to every
synchronous middleware chain Django builds, whatever ``MIDDLEWARE`` a test sets (so
``actionkit.E001``, the middleware missing from the setting, is silenced). Chains built for
ASGI (``AsyncClient``) are left alone (unless ``--asgi``): the middleware runs under WSGI
only, and refuses an ASGI request with ``ImproperlyConfigured`` saying so. Both passes run at
the same time, one process each. The outcome of every test id is compared; a test much slower
when wrapped counts as a difference too.

Differences by design are listed in ``EXPECTED`` with their reason and reported apart. Any other
difference makes the script exit with status 1.

This file is also what each pass runs (``python django_suite.py _pass ...``): it records each
test's outcome and, when wrapping, applies actionkit before ``runtests.py`` starts.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import typing as t
import unittest
from pathlib import Path

# The comparison of the passes and the export of a revision are flask_suite's (same folder).
from flask_suite import _compare, _differences, _export

ROOT = Path(__file__).resolve().parent.parent
MIDDLEWARE = "actionkit.django.ActionKitMiddleware"

#: The test apps run: those whose tests send requests through the middleware chain (the test
#: client, CSRF, sessions, messages, the common/locale/conditional middleware, views, uploads,
#: static files, the live server). Each runs with the packages installed here (Jinja2, PyYAML,
#: docutils, gettext); tests that need others (Pillow, argon2, bcrypt, selenium) skip
#: themselves in both passes. About two minutes on 2 cores (both passes at once);
#: admin_views, admin_inlines, admin_changelist and cache add three more (--apps). All of
#: Django's test apps but gis_tests and postgres_tests (about 24 minutes) differ only as
#: EXPECTED says.
APPS = (
    "test_client",
    "test_client_regress",
    "csrf_tests",
    "sessions_tests",
    "messages_tests",
    "middleware",
    "middleware_exceptions",
    "handlers",
    "requests_tests",
    "view_tests",
    "conditional_processing",
    "decorators",
    "generic_views",
    "shortcuts",
    "urlpatterns",
    "context_processors",
    "redirects_tests",
    "flatpages_tests",
    "auth_tests",
    "i18n",
    "file_uploads",
    "wsgi",
    "logging_tests",
    "test_utils",
    "staticfiles_tests",
    "servers",
    "builtin_server",
    "signed_cookies_tests",
    "syndication_tests",
    "sitemaps_tests",
    "admin_docs",
    "contenttypes_tests",
    "resolve_url",
    "urlpatterns_reverse",
    "responses",
    "file_storage",
)

#: Differences by design: test id -> why.
EXPECTED: dict[str, str] = {
    "wsgi.tests.WSGITest.test_get_wsgi_application": (
        "it compares the set of response headers: the middleware marks every GET answer that"
        " the page cache did not store with Actionkit-Cache: BYPASS (docs/django.rst, the page"
        " cache on Django views)"
    ),
    "project_template.test_settings.TestStartProjectSettings.test_middleware_headers": (
        "it compares the list of response headers: Actionkit-Cache: BYPASS, as above"
    ),
    "admin_checks.tests.SystemChecksTestCase.test_checks_are_performed": (
        "it compares the whole of checks.run_checks(), which skips no silenced check: with"
        " actionkit.django installed, actionkit.E001 is there, as the middleware is added to"
        " each chain here, not to MIDDLEWARE (in a project that lists it, there is no E001)"
    ),
    "admin_checks.tests.SystemChecksTestCase.test_custom_adminsite": (
        "checks.run_checks() with actionkit.E001, as above"
    ),
}


# -- inside a pass ------------------------------------------------------------------------------


class _Recorder(unittest.TextTestResult):
    """Records each test's outcome (in the parent process, also with ``--parallel``)."""

    outcomes: dict[str, dict[str, t.Any]] = {}

    def _set(self, test: t.Any, outcome: str, err: t.Any = None) -> None:
        entry = self.outcomes.setdefault(test.id(), {"outcome": "passed", "duration": 0.0})
        if entry["outcome"] in ("failed", "error") and outcome == "passed":
            return  # a subtest failed
        entry["outcome"] = outcome
        if err is not None:
            entry["message"] = self._message(err)

    @staticmethod
    def _message(err: t.Any) -> str:
        if isinstance(err, str):
            return err[:160]
        kind, value = err[0], err[1]
        first = (str(value).strip().splitlines() or [""])[0]
        return f"{getattr(kind, '__name__', kind)}: {first}"[:160]

    def startTest(self, test: t.Any) -> None:
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test: t.Any) -> None:
        entry = self.outcomes.setdefault(test.id(), {"outcome": "passed", "duration": 0.0})
        entry["duration"] += time.monotonic() - getattr(self, "_started", time.monotonic())
        super().stopTest(test)

    def addSuccess(self, test: t.Any) -> None:
        self._set(test, "passed")
        super().addSuccess(test)

    def addFailure(self, test: t.Any, err: t.Any) -> None:
        self._set(test, "failed", err)
        super().addFailure(test, err)

    def addError(self, test: t.Any, err: t.Any) -> None:
        self._set(test, "error", err)
        super().addError(test, err)

    def addSkip(self, test: t.Any, reason: str) -> None:
        self._set(test, "skipped")
        super().addSkip(test, reason)

    def addExpectedFailure(self, test: t.Any, err: t.Any) -> None:
        self._set(test, "xfailed")
        super().addExpectedFailure(test, err)

    def addUnexpectedSuccess(self, test: t.Any) -> None:
        self._set(test, "xpassed")
        super().addUnexpectedSuccess(test)

    def addSubTest(self, test: t.Any, subtest: t.Any, err: t.Any) -> None:
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(test, "failed" if failed else "error", err)
        super().addSubTest(test, subtest, err)

    def stopTestRun(self) -> None:
        super().stopTestRun()
        Path(os.environ["DJANGO_SUITE_OUTCOMES"]).write_text(json.dumps(self.outcomes))


_sync_chain = threading.local()


class _Settings:
    """``django.core.handlers.base.settings``: Django's settings, with ``MIDDLEWARE`` ending
    with actionkit's while a synchronous chain is built."""

    def __getattr__(self, name: str) -> t.Any:
        from django.conf import settings

        value = getattr(settings, name)
        if name == "MIDDLEWARE" and getattr(_sync_chain, "on", False) and MIDDLEWARE not in value:
            value = [*value, MIDDLEWARE]
            # Seen by the comparing process, whichever process of the pass built the chain.
            Path(os.environ["DJANGO_SUITE_OUTCOMES"] + ".wrapped").touch()
        return value


def _wrap_django() -> None:
    """Apply actionkit to the project ``runtests.py`` sets up, and to every sync chain."""
    import django
    from django.conf import settings
    from django.core.handlers import base

    setup = django.setup

    def setup_with_actionkit(*args: t.Any, **kwargs: t.Any) -> None:
        if "actionkit.django" not in settings.INSTALLED_APPS:
            settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "actionkit.django"]
        silenced = list(getattr(settings, "SILENCED_SYSTEM_CHECKS", ()))
        settings.SILENCED_SYSTEM_CHECKS = [*silenced, "actionkit.E001"]
        setup(*args, **kwargs)

    django.setup = setup_with_actionkit
    load_middleware = base.BaseHandler.load_middleware

    asgi = os.environ.get("DJANGO_SUITE_ASGI") == "1"

    def load_with_actionkit(self: t.Any, is_async: bool = False) -> None:
        _sync_chain.on = asgi or not is_async
        try:
            load_middleware(self, is_async)
        finally:
            _sync_chain.on = False

    base.BaseHandler.load_middleware = load_with_actionkit  # type: ignore[method-assign]
    base.settings = _Settings()  # type: ignore[assignment]


def _run_pass(wrap: bool, runtests: Path, args: list[str]) -> None:
    """Run ``runtests.py`` in this process (its directory is the current one)."""
    import runpy

    import django
    from django.test.runner import DiscoverRunner

    if Path(django.__file__).resolve().is_relative_to(runtests.parent.parent):
        sys.exit(f"the sdist's Django was imported ({django.__file__}), not the installed one")
    resultclass = DiscoverRunner.get_resultclass
    # Not instead of --debug-sql's or --pdb's (test_runner's tests run suites with them).
    DiscoverRunner.get_resultclass = (  # type: ignore[method-assign]
        lambda self: resultclass(self) or _Recorder
    )
    if wrap:
        _wrap_django()
    sys.path[0] = str(runtests.parent)
    sys.argv = [str(runtests), *args]
    runpy.run_path(str(runtests), run_name="__main__")


# -- running the passes -------------------------------------------------------------------------


def _prepare(cache: Path) -> Path:
    """Download and unpack the sdist of the installed Django; its ``tests/runtests.py``."""
    version = importlib.metadata.version("django")
    cache.mkdir(parents=True, exist_ok=True)
    top = cache / f"django-{version}"
    if not top.is_dir():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            requirement = f"django=={version}"
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
                + [requirement, "-d", tmp],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                sys.exit(f"pip download {requirement} failed:\n{done.stdout}{done.stderr}")
            (archive,) = Path(tmp).iterdir()
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            shutil.move(str(Path(tmp) / top.name), top)
    return top / "tests" / "runtests.py"


def _start_pass(
    runtests: Path, source: Path, wrap: bool, args: list[str], out: Path, asgi: bool
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        PYTHONPATH=str(source),
        DJANGO_SUITE_OUTCOMES=str(out),
        DJANGO_SUITE_ASGI="1" if asgi else "0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    command = [sys.executable, __file__, "_pass", "wrapped" if wrap else "plain", "--", *args]
    log = out.with_suffix(".log").open("w")
    process = subprocess.Popen(
        command, cwd=runtests.parent, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    log.close()
    return process


def _summary(label: str, out: Path, code: int, seconds: float) -> dict[str, dict[str, t.Any]]:
    log = out.with_suffix(".log").read_text(errors="replace")
    if not out.exists():
        sys.exit(f"runtests.py did not run ({label}, exit status {code}):\n{log[-3000:]}")
    result: dict[str, dict[str, t.Any]] = json.loads(out.read_text())
    counts: dict[str, int] = {}
    for entry in result.values():
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    text = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    print(f"  {label:>9}: {len(result)} tests: {text} ({seconds:.0f} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_pass"]:
        _run_pass(argv[1] == "wrapped", Path.cwd() / "runtests.py", argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", help="a comma-separated list of test apps instead of APPS")
    parser.add_argument(
        "--parallel", default="1", help="runtests.py's --parallel for each pass (default: 1)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=ROOT / "build" / "django-suite", help="sdists go here"
    )
    parser.add_argument(
        "--rev", help="test actionkit as of this git revision instead of the working tree"
    )
    parser.add_argument(
        "--asgi",
        action="store_true",
        help="append the middleware to ASGI chains too (where it refuses every request)",
    )
    parser.add_argument("runtests_args", nargs="*", help="after --: passed to both runs")
    args = parser.parse_args(argv)
    apps = args.apps.split(",") if args.apps else list(APPS)
    runtests = _prepare(args.cache_dir.resolve())
    print(f"django {importlib.metadata.version('django')}: {' '.join(apps)}")
    pass_args = ["--parallel", args.parallel, "--noinput", *args.runtests_args, *apps]
    with tempfile.TemporaryDirectory(prefix="django-suite-") as tmp:
        if args.rev:
            source = _export(args.rev, Path(tmp) / "actionkit-rev")
        else:  # actionkit alone on the path: not this checkout's tests/ package, nor scripts/
            source = Path(tmp) / "actionkit-tree"
            source.mkdir()
            (source / "actionkit").symlink_to(ROOT / "actionkit")
        started = time.monotonic()
        outs = {label: Path(tmp) / f"{label}.json" for label in ("unwrapped", "wrapped")}
        processes = {
            label: _start_pass(runtests, source, label == "wrapped", pass_args, out, args.asgi)
            for label, out in outs.items()
        }
        ended: dict[str, tuple[int, float]] = {}
        while len(ended) < len(processes):
            for label, process in processes.items():
                code = process.poll()
                if code is not None and label not in ended:
                    ended[label] = code, time.monotonic() - started
            time.sleep(0.5)
        results = {label: _summary(label, outs[label], *ended[label]) for label in outs}
        wrapped_any = Path(f"{outs['wrapped']}.wrapped").exists()
    plain, wrapped = results["unwrapped"], results["wrapped"]
    rows = _compare(plain, wrapped)
    expected = [r for r in rows if r[0] in EXPECTED]
    others = [r for r in rows if r[0] not in EXPECTED]
    print(f"  {len(others)} unexpected and {len(expected)} expected difference(s)")
    _differences(expected, others, EXPECTED)
    bad = ("failed", "error")
    both = sorted(i for i, e in plain.items() if e["outcome"] in bad and i in wrapped)
    both = [i for i in both if wrapped[i]["outcome"] in bad]
    if both:
        print(f"  failing in both passes (here, not actionkit's): {', '.join(both)}")
    if not plain or not wrapped_any:
        print("  no test ran, or no middleware chain got actionkit: nothing was compared")
        return 1
    return 1 if others else 0


if __name__ == "__main__":
    sys.exit(main())
