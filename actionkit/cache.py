"""The page cache and the data cache.

(Interface in place; the caching itself is being built: for now every page passes through.)
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from . import context

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


@dataclass
class Rendered:
    """A page rendered to bytes (the re-render after an action)."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_code(self) -> int:
        return int(self.status.split(None, 1)[0])


class PageCache:
    """Caches the pages of a WSGI application that opted in, in a store."""

    def __init__(self, store: object | None = None) -> None:
        self.store = store

    def serve(
        self, app: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        """Answer a ``GET``/``HEAD`` from the cache, or from ``app`` (storing it when it opted in).

        The request's :class:`~actionkit.context.RequestContext` is current.
        """
        return app(environ, start_response)

    def render(self, app: WSGIApplication, environ: WSGIEnvironment, *, use_cache: bool) -> Rendered:
        """Render a ``GET`` to bytes; read and store the cache only when ``use_cache``."""
        captured: list[t.Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> t.Callable[[bytes], object]:
            captured[:] = [status, list(headers)]
            return lambda data: None

        iterable = app(environ, start_response)
        try:
            body = b"".join(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        return Rendered(captured[0], captured[1], body)

    def revalidate_path(self, path: str, type: t.Literal["page", "layout"] = "page") -> None:
        pass

    def revalidate_tag(self, tag: str) -> None:
        pass


_default: PageCache | None = None


def default_cache() -> PageCache:
    global _default
    if _default is None:
        _default = PageCache()
    return _default


def _cache() -> PageCache:
    ctx = context.current()
    if ctx is not None and ctx.cache is not None:
        return ctx.cache
    return default_cache()


def revalidate_path(path: str, type: t.Literal["page", "layout"] = "page") -> None:
    """Drop the cached pages of ``path`` (any query); ``type="layout"``: and every path below."""
    if type not in ("page", "layout"):
        raise ValueError(f"Unknown revalidate type {type!r}; use 'page' or 'layout'.")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"revalidate_path() takes a path starting with '/', not {path!r}.")
    _cache().revalidate_path(path, type)
    ctx = context.current()
    if ctx is not None:
        ctx.revalidated_paths.append(path)


def revalidate_tag(tag: str) -> None:
    """Drop every cached page and data entry tagged with ``tag``."""
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"revalidate_tag() takes a non-empty string, not {tag!r}.")
    _cache().revalidate_tag(tag)
    ctx = context.current()
    if ctx is not None:
        ctx.revalidated_tags.append(tag)
