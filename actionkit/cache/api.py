"""The functions pages and actions call: cache hints while a page renders, and revalidation.

Which cache :func:`revalidate_path`, :func:`revalidate_tag` and :func:`~actionkit.cached` use:

- inside a request, the page cache of the middleware handling it;
- outside a request, the cache of the current application where a framework adapter can tell
  (Flask: inside ``with app.app_context()``, and so in ``flask`` commands; Django: the
  project's store wherever Django is set up with ``actionkit.django``, so in management
  commands and jobs);
- anywhere else (a script, a job, a thread of your own), revalidation reaches *every* store of
  the process's middlewares and the process-wide :func:`~actionkit.stores.default_store`, so it
  can never miss the store that holds the page; :func:`~actionkit.cached` uses the store of the
  middlewares when they all use one, else the default store.
"""

from __future__ import annotations

import logging
import threading
import typing as t
import weakref

from .. import context
from ..rendering import canonical_paths
from ..stores import MemoryStore
from .pages import PageCache

logger = logging.getLogger("actionkit")

_default: PageCache | None = None
_default_lock = threading.Lock()
# The caches of the process's middlewares (see current_cache).
_caches: weakref.WeakSet[PageCache] = weakref.WeakSet()
# Functions that return the cache of the current application outside a request, or None.
_finders: list[t.Callable[[], PageCache | None]] = []


def add_finder(finder: t.Callable[[], PageCache | None]) -> None:
    """Let ``finder`` name the cache of the current application outside a request (a framework
    adapter's application context)."""
    if finder not in _finders:
        _finders.append(finder)


made: list[bool] = []  # a middleware was made in this process (its cache off, maybe)


def track(cache: PageCache) -> None:
    """Note that a middleware of this process uses ``cache``."""
    _caches.add(cache)


def default_cache() -> PageCache:
    """The cache over the process-wide default store, used outside requests."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PageCache()
    return _default


def current_cache() -> PageCache:
    """The page cache that :func:`~actionkit.cached` uses now (see the module)."""
    ctx = context.current()
    if ctx is not None:
        return ctx.cache if isinstance(ctx.cache, PageCache) else default_cache()
    for finder in _finders:
        found = finder()
        if found is not None:
            return found
    caches = _by_store()
    if len(caches) == 1:
        return caches[0]
    if caches and not _ambiguous:
        _ambiguous.append(len(caches))
        logger.warning(
            "cached() was called outside a request and outside any application's context, in a"
            " process whose middlewares use %d stores: it uses the process-wide default store,"
            " which the revalidations made in their requests do not reach. Call it inside"
            " `with app.app_context():` (Flask), or give the middlewares one store.",
            len(caches),
        )
    return default_cache()


_ambiguous: list[int] = []  # logged once per process (see current_cache)


def _targets() -> list[PageCache]:
    """The caches a revalidation made now must reach (see the module)."""
    ctx = context.current()
    if ctx is not None:
        return [ctx.cache if isinstance(ctx.cache, PageCache) else default_cache()]
    for finder in _finders:
        found = finder()
        if found is not None:
            return [found]
    caches = _by_store()
    store = default_cache().store
    if (
        not caches
        and not _unreached
        and not made
        and isinstance(store, MemoryStore)
        and not len(store)
    ):
        _unreached.append(True)
        logger.warning(
            "A revalidation was made outside a request in a process where no actionkit"
            " middleware has been made and nothing is cached: it reached only this process's"
            " empty default store, not the store of the app serving the pages. Make the app"
            " first (Flask: create it and revalidate inside `with app.app_context():`; Django:"
            " django.setup() with actionkit.django installed)."
        )
    if not any(cache.store is store for cache in caches):
        caches.append(default_cache())
    return caches


_unreached: list[bool] = []  # logged once per process (see _targets)


def _by_store() -> list[PageCache]:
    """One cache per store among the process's middlewares."""
    return list({id(cache.store): cache for cache in list(_caches)}.values())


def revalidate_path(path: str, type: t.Literal["page", "layout"] = "page") -> None:
    """Drop the cached pages of ``path`` with any query; ``type="layout"``: and every path
    below it.

    A page is the exact path: ``revalidate_path("/posts/")`` drops the page ``/posts/``, not
    ``/posts``. A layout is the same with or without a trailing slash:
    ``revalidate_path("/posts/", "layout")`` and ``revalidate_path("/posts", "layout")`` both
    drop ``/posts``, ``/posts/``, ``/posts/1`` and everything else below, never ``/postsx``.

    The path is the one in the page's URL, the application's mount point (``SCRIPT_NAME``)
    included, as ``url_for()`` gives it; escapes are read as such: ``/tag/café`` and
    ``/tag/caf%C3%A9`` are the same page. A query in it is left out, so
    ``revalidate_path(url_for("posts", page=2))`` drops ``/posts`` with every query; as a
    ``?`` or ``#`` may also be a character of a path written as text (the tag ``C#``), the
    whole text is dropped as a path too.

    Works inside actions and anywhere else (a webhook view, a CLI command, a job): see
    :mod:`actionkit.cache.api` for which store it uses.
    """
    if type not in ("page", "layout"):
        raise ValueError(f"Unknown revalidate type {type!r}; use 'page' or 'layout'.")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"revalidate_path() takes a path starting with '/', not {path!r}.")
    for each in canonical_paths(path):
        _revalidate_one_path(each, type)


def _revalidate_one_path(path: str, type: t.Literal["page", "layout"]) -> None:
    ctx = context.current()
    if ctx is not None and ctx.pending is not None and ctx.in_action:
        # Sent when the action is over, with the page rendered after it (see RequestContext).
        ctx.pending.append(("path", path, type == "layout"))
    else:
        for cache in _targets():
            cache.revalidate_path(path, type)
    if ctx is not None and path not in ctx.revalidated_paths:
        ctx.revalidated_paths.append(path)


def revalidate_tag(tag: str) -> None:
    """Drop every cached page and data entry tagged ``tag``."""
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"revalidate_tag() takes a non-empty string, not {tag!r}.")
    ctx = context.current()
    if ctx is not None and ctx.pending is not None and ctx.in_action:
        ctx.pending.append(("tag", tag, False))
    else:
        for cache in _targets():
            cache.revalidate_tag(tag)
    if ctx is not None and tag not in ctx.revalidated_tags:
        ctx.revalidated_tags.append(tag)


def cache_tag(*tags: str) -> None:
    """Make the page being rendered cacheable, tagged with ``tags`` for :func:`revalidate_tag`."""
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"Cache tags are non-empty strings, not {tag!r}.")
    ctx = context.current()
    if ctx is not None:
        _too_late(ctx, "cache_tag")
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
        _too_late(ctx, "cache_life")
        ctx.hints.ttl = float(seconds)
        ctx.hints.stale = None if stale is None else float(stale)


_late: list[str] = []  # the first call that came too late (logged once per process)


def _too_late(ctx: context.RequestContext, name: str) -> None:
    """Log, once, a call made once the page's answer had started: it cannot make that page
    cacheable any more (a ``cache_tag()`` in a streamed template)."""
    if ctx.hints.planned and not _late:
        _late.append(name)
        logger.warning(
            "%s() was called once the page's answer had started (a streamed template?): it"
            " does not make that page cacheable. Call it in the view, before the answer.",
            name,
        )
