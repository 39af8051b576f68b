from __future__ import annotations

from werkzeug.test import Client

from actionkit import ActionMiddleware
from actionkit.assets import Assets, assets


def _page(environ: object, start_response: object) -> list[bytes]:
    raise AssertionError("asset requests never reach the app")


def test_hashed_urls_with_long_caching() -> None:
    """Each static file is served at a content-hashed URL, cached for a year."""
    client = Client(ActionMiddleware(_page, cache=False))
    url = assets().url("actionkit.js")
    assert url.startswith("/_actionkit/actionkit.") and url.endswith(".js")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.mimetype == "text/javascript"
    assert b"window.actionkit" in response.data
    etag = response.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    head = client.head(url)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(response.data))


def test_unknown_files_and_methods() -> None:
    """Unknown asset paths are 404 (never the app's); other methods 405."""
    client = Client(ActionMiddleware(_page, cache=False))
    assert client.get("/_actionkit/actionkit.js").status_code == 404  # unhashed
    assert client.get("/_actionkit/nope.123.js").status_code == 404
    url = assets().url("idiomorph.js")
    environ_app = Assets()
    response = Client(environ_app).put(url)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"


def test_url_lookup_error_lists_files() -> None:
    """Asking for a file that is not there names the ones that are."""
    try:
        assets().url("missing.js")
    except LookupError as e:
        assert "actionkit.js" in str(e)
    else:
        raise AssertionError("no error")


def test_vendored_idiomorph_keeps_version_and_licence() -> None:
    """The vendored morphing library says which version it is and under which licence."""
    from actionkit.assets import STATIC_DIR

    head = (STATIC_DIR / "idiomorph.js").read_text()[:300]
    assert "idiomorph 0.8.0" in head and "0BSD" in head
    assert "Zero-Clause BSD" in (STATIC_DIR / "idiomorph.LICENSE").read_text()
