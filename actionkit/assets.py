"""Serving the client script and its assets under ``/_actionkit/``.

Every file of ``actionkit/static/`` is read once, hashed, and served at a URL holding its content
hash (``/_actionkit/actionkit.3f2a9c1d0b7e.js``) with ``Cache-Control: public, max-age=31536000,
immutable``: browsers keep it for a year, and a new release has new URLs. Everything is computed
when the middleware starts, so an asset request costs a dict lookup.
"""

from __future__ import annotations

import functools
import hashlib
import typing as t
from pathlib import Path

from .protocol import STATIC_PREFIX

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

STATIC_DIR = Path(__file__).parent / "static"


class _Asset(t.NamedTuple):
    body: bytes
    headers: list[tuple[str, str]]
    etag: str


_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
}
_NOT_FOUND = b"Not Found"


class Assets:
    """The WSGI app answering ``/_actionkit/...``: the static files at content-hashed URLs.

    :param directory: the files to serve (``.js``, ``.css`` and ``.map`` files only).

    ``ActionMiddleware`` makes one and hands it every ``GET``/``HEAD`` under ``/_actionkit/``;
    templates get the URLs from :meth:`url` (``actionkit_script()`` does it).
    """

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        #: Hashed URL of each file, by file name: ``{"actionkit.js": "/_actionkit/..."}``.
        self.urls: dict[str, str] = {}
        self._files: dict[str, _Asset] = {}
        for path in sorted(directory.iterdir()):
            content_type = _CONTENT_TYPES.get(path.suffix)
            if content_type is None or not path.is_file():
                continue
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            url = f"{STATIC_PREFIX}{path.stem}.{digest}{path.suffix}"
            etag = f'"{digest}"'
            headers = [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                # The URL changes with the content, so the browser never needs to ask again.
                ("Cache-Control", "public, max-age=31536000, immutable"),
                ("ETag", etag),
                ("X-Content-Type-Options", "nosniff"),
            ]
            self.urls[path.name] = url
            self._files[url] = _Asset(body, headers, etag)

    def url(self, name: str) -> str:
        """The hashed URL of the static file ``name`` (``"actionkit.js"``).

        :raises LookupError: there is no such file; the message lists the ones there are.
        """
        try:
            return self.urls[name]
        except KeyError:
            raise LookupError(
                f"No static file {name!r}; there are: {', '.join(sorted(self.urls))}."
            ) from None

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        # Mounted on its own (SCRIPT_NAME="/_actionkit"), or behind the middleware.
        asset = self._files.get(environ.get("SCRIPT_NAME", "") + path) or self._files.get(path)
        if asset is None:
            return _plain(start_response, "404 Not Found", _NOT_FOUND)
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"", [("Allow", "GET, HEAD")])
        if _matches(environ.get("HTTP_IF_NONE_MATCH"), asset.etag):
            start_response(
                "304 Not Modified", [h for h in asset.headers if h[0] != "Content-Length"]
            )
            return []
        start_response("200 OK", list(asset.headers))
        return [] if method == "HEAD" else [asset.body]

    def __repr__(self) -> str:
        return f"<Assets {sorted(self.urls)!r}>"


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


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
