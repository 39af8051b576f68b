"""The distributions: what the wheel and the sdist hold, and that the sdist's tests run."""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import typing as t
import zipfile

import pytest

import actionkit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = f"actionkit-{actionkit.__version__}"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The sdist, and the wheel built from it, as ``python -m build`` makes them (without
    network access: the build backend is the one installed)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), ROOT],
        check=True,
        capture_output=True,
        timeout=120,
    )
    files = sorted(os.listdir(out))
    assert files == [f"{NAME}-py3-none-any.whl", f"{NAME}.tar.gz"], files
    return {"wheel": str(out / files[0]), "sdist": str(out / files[1])}


def test_wheel_contents(dist: dict[str, str]) -> None:
    """The wheel holds the package, its static assets, ``py.typed``, the command line and both
    licences, and nothing of the repository around it."""
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = email.parser.Parser().parsestr(wheel.read(f"{NAME}.dist-info/METADATA").decode())
    for name in (
        "actionkit/__init__.py",
        "actionkit/__main__.py",
        "actionkit/cli.py",
        "actionkit/py.typed",
        "actionkit/static/actionkit.js",
        "actionkit/static/idiomorph.js",
        "actionkit/static/idiomorph.LICENSE",
        "actionkit/stores/__init__.py",
        f"{NAME}.dist-info/licenses/LICENSE",
        f"{NAME}.dist-info/licenses/actionkit/static/idiomorph.LICENSE",
    ):
        assert name in names, name
    assert not [n for n in names if n.startswith(("tests/", "sample_app/", "docs/", "bench/"))]
    assert not [n for n in names if "__pycache__" in n]
    assert metadata["Version"] == actionkit.__version__
    assert metadata["License-Expression"] == "BSD-3-Clause AND 0BSD"
    assert metadata["Requires-Python"] == ">=3.11"
    assert set(metadata.get_all("Provides-Extra") or ()) >= {"flask", "redis", "test", "docs"}
    classifiers = metadata.get_all("Classifier") or ()
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.13" in classifiers


def test_sdist_contents(dist: dict[str, str]) -> None:
    """The sdist holds what its tests and docs need: the tests with their conftest, the
    sample app, the docs, the changes, the licences, the assets and ``py.typed``."""
    with tarfile.open(dist["sdist"]) as sdist:
        names = {n.removeprefix(NAME + "/") for n in sdist.getnames()}
    for name in (
        "LICENSE",
        "README.rst",
        "CHANGES.rst",
        "pyproject.toml",
        "actionkit/py.typed",
        "actionkit/static/actionkit.js",
        "actionkit/static/idiomorph.js",
        "actionkit/static/idiomorph.LICENSE",
        "tests/conftest.py",
        "tests/test_cli.py",
        "tests/cli_apps/flask_app.py",
        "sample_app/app.py",
        "sample_app/templates/posts.html",
        "docs/conf.py",
        "docs/index.rst",
        "examples/django/manage.py",
        "examples/django/posts/actions.py",
        "bench/mutation.md",
    ):
        assert name in names, name
    assert not [n for n in names if "__pycache__" in n or n.startswith("sample_app/instance")]
    assert not [n for n in names if ".sqlite3" in n]
    assert not [n for n in names if n.startswith("docs/_build")]


def test_sdist_tests_run(dist: dict[str, str], tmp_path: t.Any) -> None:
    """Tests run from the unpacked sdist, against the package in it."""
    with tarfile.open(dist["sdist"]) as sdist:
        sdist.extractall(tmp_path, filter="data")
    unpacked = tmp_path / NAME
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = str(unpacked)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_cli.py",
            "-k",
            "json or factory or find_middleware",
        ],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import actionkit; print(actionkit.__file__)"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == str(unpacked / "actionkit" / "__init__.py")
    shutil.rmtree(unpacked)
