"""The functions pages and actions call: cache hints while a page renders, and revalidation.

Inside a request, :func:`revalidate_path`, :func:`revalidate_tag` and
:func:`~actionkit.cached` use the page cache of the middleware handling it; anywhere else (a CLI
command, a job, a webhook handled outside the middleware) the cache over the process-wide
:func:`~actionkit.stores.default_store`, which is also the store of every middleware made with
``cache=None``.
"""

from __future__ import annotations

import threading
import typing as t

from .. import context
from .pages import PageCache

_default: PageCache | None = None
_default_lock = threading.Lock()


def default_cache() -> PageCache:
    """The cache over the process-wide default store, used outside requests."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PageCache()
    return _default


def current_cache() -> PageCache:
    """The page cache of the request being handled, else :func:`default_cache`."""
    ctx = context.current()
    if ctx is not None and isinstance(ctx.cache, PageCache):
        return ctx.cache
    return default_cache()


def revalidate_path(path: str, type: t.Literal["page", "layout"] = "page") -> None:
    """Drop the cached pages of ``path`` with any query; ``type="layout"``: and every path
    below it.

    Works inside actions and anywhere else (a webhook view, a CLI command, a job): inside a
    request it uses that middleware's store, elsewhere the process-wide default store.
    """
    if type not in ("page", "layout"):
        raise ValueError(f"Unknown revalidate type {type!r}; use 'page' or 'layout'.")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"revalidate_path() takes a path starting with '/', not {path!r}.")
    current_cache().revalidate_path(path, type)
    ctx = context.current()
    if ctx is not None:
        ctx.revalidated_paths.append(path)


def revalidate_tag(tag: str) -> None:
    """Drop every cached page and data entry tagged ``tag``."""
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"revalidate_tag() takes a non-empty string, not {tag!r}.")
    current_cache().revalidate_tag(tag)
    ctx = context.current()
    if ctx is not None:
        ctx.revalidated_tags.append(tag)


def cache_tag(*tags: str) -> None:
    """Make the page being rendered cacheable, tagged with ``tags`` for :func:`revalidate_tag`."""
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"Cache tags are non-empty strings, not {tag!r}.")
    ctx = context.current()
    if ctx is not None:
        ctx.hints.tags.update(tags)


def cache_life(seconds: float, stale: float | None = None) -> None:
    """Make the page being rendered cacheable for ``seconds``.

    After that it is served stale for up to ``stale`` more seconds (default: as long again)
    while exactly one request renders it anew; ``stale=0`` makes readers wait for that render.
    """
    if seconds < 0 or (stale is not None and stale < 0):
        raise ValueError(f"cache_life() takes durations >= 0, not {seconds!r}, {stale!r}.")
    ctx = context.current()
    if ctx is not None:
        ctx.hints.ttl = float(seconds)
        ctx.hints.stale = None if stale is None else float(stale)
