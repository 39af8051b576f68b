"""The page cache and the data cache, and the revalidation that keeps them honest.

Pages opt in while they render: call :func:`~actionkit.cache_tag` or
:func:`~actionkit.cache_life` from the view or the template, or answer with
``Cache-Control: s-maxage=N`` (plus an optional ``Cache-Tag: a, b`` header, removed before the
answer leaves). Only ``GET`` answers with status 200 are stored, and never one that sets a cookie,
says ``Cache-Control: private`` or ``no-store`` or ``Vary: *``, or shows somebody's
``action_state()``; a request with ``Authorization`` is neither answered from the cache nor
stored. The key is the host, the path and the query string, plus the request headers the answer
``Vary``-s on. ``HEAD`` is answered from the ``GET`` entry. Every answer says how it was served:
``Actionkit-Cache: HIT | MISS | STALE | BYPASS``. Answers that did not opt in stream through
unbuffered; the others are sent as they are produced and stored once they were sent whole.

.. code-block:: python

    @app.get("/posts")
    def posts():
        cache_tag("posts")  # kept until revalidate_tag("posts") or revalidate_path("/posts")
        return render_template("posts.html", posts=db.posts())

    @action
    def create_post(form):
        db.insert(form)
        revalidate_path("/posts")   # every later request, in any worker, sees the new list

A page tagged without a lifetime is kept until it is revalidated (or pushed out by
``max_bytes``), as Next.js keeps a static page until it is revalidated. With
``cache_life(60, stale=30)`` it is fresh for 60 seconds; for 30 more it is served ``STALE`` to
concurrent readers while exactly one request renders it anew (``s-maxage=60,
stale-while-revalidate=30`` says the same); with ``stale=0`` readers wait for that one render
instead of all rendering at once. ``cache_life(0)`` stores nothing.

The guarantees:

- **Read your writes.** ``revalidate_path`` / ``revalidate_tag`` drop the entries in the store
  before they return, so no later request in any thread or process sharing the store gets them.
  Inside an action they are sent when the action is over, before it answers (with or without
  JavaScript, and when it fails): the page rendered for the client's answer is stored with
  them in one write where the store can (``MemoryStore``, ``SQLiteStore``), so that other
  processes serve the old page until the new one replaces it, and none renders it again. A
  :func:`cached` value read in the action after them sends them first.
- **No stale store.** The store's generation is read before a page or value is computed; if a
  revalidation of its path or tags happened meanwhile, the result is served but not stored.
- **A store outage fails no request and no action, and serves nothing stale**: the process
  serves pages fresh while its store is unreachable, and keeps the revalidations it could not
  deliver until it has delivered them, before it reads from the store again (see
  :mod:`actionkit.cache.safe`).

The data cache is :func:`cached`, for values rather than pages: the same store, the same tags.
A cached page that used cached values carries their tags too.

The package, by job: :mod:`.policy` (what is stored, and the keys), :mod:`.pages`
(:class:`PageCache`), :mod:`.waiting` (waiting for a render under way elsewhere),
:mod:`.folding` (an action's revalidations stored with the page rendered for its answer),
:mod:`.recording` (streaming an answer through while recording it), :mod:`.safe` (a failing
store never fails a request) with :mod:`.health` (the store's state in the process),
:mod:`.data` (:func:`cached`) and :mod:`.api` (the hints and revalidation functions, and
which cache they use).

Inside a request, :func:`revalidate_path`, :func:`revalidate_tag` and :func:`cached` use the
store of the middleware handling it; elsewhere see :mod:`actionkit.cache.api`.
"""

from __future__ import annotations

from ..rendering import Rendered, render_app
from .api import (
    cache_life,
    cache_tag,
    current_cache,
    default_cache,
    revalidate_path,
    revalidate_tag,
)
from .data import cached
from .pages import PageCache

__all__ = [
    "PageCache",
    "Rendered",
    "cache_life",
    "cache_tag",
    "cached",
    "current_cache",
    "default_cache",
    "render_app",
    "revalidate_path",
    "revalidate_tag",
]
