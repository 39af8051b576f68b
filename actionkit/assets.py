"""Serving the client script and its assets under ``/_actionkit/``.

Every file of ``actionkit/static/`` is read once, hashed, and served at a URL holding its content
hash (``/_actionkit/actionkit.3f2a9c1d0b.js``) with ``Cache-Control: public, max-age=31536000,
immutable``: browsers keep it for a year, and a new release has new URLs. Everything is computed
when the middleware starts, so an asset request costs a dict lookup.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import typing as t
from pathlib import Path

from .protocol import STATIC_PREFIX

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

STATIC_DIR = Path(__file__).parent / "static"
_SERVED = (".js", ".css", ".map")


class _Asset(t.NamedTuple):
    body: bytes
    headers: list[tuple[str, str]]
    etag: str


class Assets:
    """The WSGI app answering ``/_actionkit/...``: the static files at content-hashed URLs."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.urls: dict[str, str] = {}
        self._files: dict[str, _Asset] = {}
        for path in sorted(directory.iterdir()):
            if path.suffix not in _SERVED:
                continue
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            url = f"{STATIC_PREFIX}{path.stem}.{digest}{path.suffix}"
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or path.suffix == ".js":
                content_type = (
                    "text/javascript" if path.suffix == ".js" else content_type
                ) + "; charset=utf-8"
            etag = f'"{digest}"'
            headers = [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "public, max-age=31536000, immutable"),
                ("ETag", etag),
                ("X-Content-Type-Options", "nosniff"),
            ]
            self.urls[path.name] = url
            self._files[url] = _Asset(body, headers, etag)

    def url(self, name: str) -> str:
        """The hashed URL of the static file ``name`` (``"actionkit.js"``)."""
        try:
            return self.urls[name]
        except KeyError:
            raise LookupError(
                f"No static file {name!r}; there are: {', '.join(sorted(self.urls))}."
            ) from None

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        asset = self._files.get(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        if asset is None:
            asset = self._files.get(environ.get("PATH_INFO", ""))
        if asset is None:
            return _plain(start_response, "404 Not Found", b"Not Found")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"", [("Allow", "GET, HEAD")])
        if environ.get("HTTP_IF_NONE_MATCH") == asset.etag:
            start_response(
                "304 Not Modified", [h for h in asset.headers if h[0] != "Content-Length"]
            )
            return []
        start_response("200 OK", list(asset.headers))
        return [] if method == "HEAD" else [asset.body]


def _plain(
    start_response: StartResponse,
    status: str,
    body: bytes,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra or []))
    return [body]


@functools.cache
def assets() -> Assets:
    """The process-wide :class:`Assets` (the files never change while it runs)."""
    return Assets()
