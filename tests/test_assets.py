from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from werkzeug.test import Client

from actionkit import ActionMiddleware
from actionkit.assets import STATIC_DIR, Assets, assets
from actionkit.protocol import STATIC_PREFIX


def _page(environ: t.Any, start_response: t.Any) -> list[bytes]:
    raise AssertionError("asset requests never reach the app")


@pytest.fixture
def client() -> Client:
    return Client(ActionMiddleware(_page, cache=False))


def test_hashed_urls_with_long_caching(client: Client) -> None:
    """Each static file is served through the middleware at a content-hashed URL under the
    static prefix, cached for a year, with its type and length."""
    url = assets().url("actionkit.js")
    assert url.startswith(STATIC_PREFIX + "actionkit.") and url.endswith(".js")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == (STATIC_DIR / "actionkit.js").read_bytes()
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_head_and_conditional_requests(client: Client) -> None:
    """HEAD answers the headers alone; If-None-Match with the ETag (also weak, in a list, or
    ``*``) answers 304 without a body; another ETag gets the file."""
    url = assets().url("idiomorph.js")
    full = client.get(url)
    head = client.head(url)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(full.data))
    etag = full.headers["ETag"]
    for header in (etag, f'"other", W/{etag}', "*"):
        response = client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.data == b"" and response.headers["ETag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(STATIC_PREFIX + "actionkit.js", id="unhashed"),
        pytest.param(STATIC_PREFIX + "actionkit.000000000000.js", id="wrong-hash"),
        pytest.param(STATIC_PREFIX + "idiomorph.LICENSE", id="not-served-type"),
        pytest.param(STATIC_PREFIX, id="directory"),
    ],
)
def test_unknown_files_are_404(client: Client, path: str) -> None:
    """Any other path under the static prefix is 404, never the application's."""
    response = client.get(path)
    assert response.status_code == 404 and response.data == b"Not Found"


def test_other_methods_are_405() -> None:
    """Assets answer GET and HEAD only."""
    response = Client(Assets()).put(assets().url("idiomorph.js"))
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"


def test_mounted_on_its_own() -> None:
    """Mounted at ``/_actionkit`` (SCRIPT_NAME) by a dispatcher, the same URLs work."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    app = DispatcherMiddleware(_page, {STATIC_PREFIX.rstrip("/"): Assets()})
    assert Client(app).get(assets().url("actionkit.js")).status_code == 200


def test_any_directory_hash_follows_content(tmp_path: Path) -> None:
    """The served types are .js, .css and .map; the hash in the URL changes with the content;
    everything is read when the object is made."""
    (tmp_path / "a.css").write_text("p{}")
    (tmp_path / "a.js.map").write_text("{}")
    (tmp_path / "notes.txt").write_text("no")
    (tmp_path / "sub.js").mkdir()
    first = Assets(tmp_path)
    assert sorted(first.urls) == ["a.css", "a.js.map"]
    client = Client(first)
    assert client.get(first.url("a.css")).headers["Content-Type"] == "text/css; charset=utf-8"
    assert client.get(first.url("a.js.map")).headers["Content-Type"] == "application/json"
    (tmp_path / "a.css").write_text("p{color:red}")
    assert client.get(first.url("a.css")).data == b"p{}"  # precomputed
    assert Assets(tmp_path).url("a.css") != first.url("a.css")
    assert repr(first) == "<Assets ['a.css', 'a.js.map']>"


def test_url_lookup_error_lists_files() -> None:
    """Asking for a file that is not there names the ones that are."""
    with pytest.raises(LookupError, match=r"'missing.js'.*actionkit\.js, idiomorph\.js"):
        assets().url("missing.js")


def test_process_wide_instance() -> None:
    """assets() is computed once per process."""
    assert assets() is assets()


def test_vendored_idiomorph_keeps_version_and_licence() -> None:
    """The vendored morphing library says which version it is and under which licence, and
    defines the global the client uses."""
    text = (STATIC_DIR / "idiomorph.js").read_text()
    assert "idiomorph 0.8.0" in text[:300] and "0BSD" in text[:300]
    assert "\nvar Idiomorph = (function () {" in text
    assert "Zero-Clause BSD" in (STATIC_DIR / "idiomorph.LICENSE").read_text()
