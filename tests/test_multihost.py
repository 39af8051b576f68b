"""Several hosts sharing one Redis store, as a deployment runs them: two gunicorn instances of
one Flask app, one SQLite database of record and a private redis-server that is paused, killed
and restarted under load."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest

from actionkit.flask import get_middleware
from actionkit.stores import MemoryStore, RedisStore, SQLiteStore

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
