"""The entry type and the store protocol (see :mod:`actionkit.stores` for the rules)."""

from __future__ import annotations

import json
import typing as t

INFINITY = float("inf")

#: How many revalidation marks (the generation of the last revalidation of each tag and path) a
#: store remembers. Past that the oldest are forgotten and their highest generation becomes the
#: store's *floor*: a value computed before the floor is not stored, since nothing proves that
#: a forgotten revalidation did not concern it. Only a render that spans thousands of
#: revalidations is affected, and it is merely served uncached.
MAX_MARKS = 10_000

#: A generation is ``incarnation << COUNT_BITS | count``: the low bits count revalidations, the
#: high ones name the incarnation of the store's state (a Redis server's data since it started
#: or was emptied, an SQLite file since it was made). A store whose state can be lost and begun
#: again from zero refuses a ``since`` of another incarnation, so that a render that began
#: before the loss is never stored as fresh after it, however the counts compare.
COUNT_BITS = 48
_COUNT_MASK = (1 << COUNT_BITS) - 1


class Entry:
    """A cached value: ``body`` bytes plus ``meta`` (a small JSON-able dict).

    ``expires`` is when it stops being fresh, ``stale_until`` how long after that it may still be
    served while one request regenerates it (both ``clock()`` seconds; ``inf`` for "until
    revalidated").
    """

    __slots__ = (
        "_marks",
        "_size",
        "body",
        "expires",
        "meta",
        "path",
        "prepared",
        "stale_until",
        "stamp",
        "tags",
    )

    def __init__(
        self,
        body: bytes,
        meta: dict[str, t.Any],
        *,
        tags: t.Iterable[str] = (),
        path: str = "",
        expires: float = INFINITY,
        stale_until: float = INFINITY,
    ) -> None:
        self.body = body
        self.meta = meta
        self.tags = tuple(tags)
        self.path = path
        self.expires = expires
        self.stale_until = stale_until
        self._size: int | None = None
        self._marks: list[str] | None = None
        #: The store's generation when the entry was last known to be valid (a store's own
        #: bookkeeping; see MemoryStore).
        self.stamp = 0
        #: Whatever the cache derives from the entry once (a ready header list); in-process only.
        self.prepared: t.Any = None

    @property
    def size(self) -> int:
        """The bytes the entry is counted for against ``max_bytes``: body, meta, tags, path and
        a little for the bookkeeping (computed once, when a store asks).
        """
        if self._size is None:
            self._size = (
                len(self.body)
                + len(json.dumps(self.meta))
                + sum(len(tag) + 64 for tag in self.tags)
                + 2 * len(self.path)
                + 200
            )
        return self._size

    def __repr__(self) -> str:
        return f"<Entry {self.path!r} tags={self.tags!r} {len(self.body)} bytes>"


@t.runtime_checkable
class Store(t.Protocol):
    """What the page cache and the data cache need of a store."""

    def get(self, key: str) -> Entry | None: ...

    def set(self, key: str, entry: Entry, since: int) -> bool: ...

    def generation(self) -> int: ...

    def revalidate_tag(self, tag: str) -> None: ...

    def revalidate_path(self, path: str, layout: bool = False) -> None: ...

    def acquire(self, key: str, ttl: float) -> bool: ...

    def release(self, key: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def clear(self) -> None: ...


def make_generation(incarnation: int, count: int) -> int:
    """The generation of ``count`` revalidations in ``incarnation`` (see :data:`COUNT_BITS`)."""
    return incarnation << COUNT_BITS | count


def split_generation(generation: int) -> tuple[int, int]:
    """The incarnation and the count of revalidations of ``generation``."""
    return generation >> COUNT_BITS, generation & _COUNT_MASK


def ancestors(path: str) -> list[str]:
    """``path`` and every path above it: ``/a/b`` → ``["/a/b", "/a", "/"]``, ``/a/b/`` →
    ``["/a/b/", "/a/b", "/a", "/"]``.

    A ``layout`` revalidation of any of them (by its
    :func:`~actionkit.stores.base.layout_root`) covers ``path``.
    """
    result = [path]
    trimmed = path.rstrip("/")
    if trimmed:
        result.append(trimmed)  # /a/b/ lies in the layout /a/b
    while trimmed:
        trimmed = trimmed.rsplit("/", 1)[0]
        result.append(trimmed or "/")
    if result[-1] != "/" and path.startswith("/"):
        result.append("/")
    return list(dict.fromkeys(result))


def marks(entry: Entry) -> list[str]:
    """The names whose revalidation makes ``entry`` out of date: its tags, its path, and a
    ``layout`` revalidation of its path or any path above it (computed once per entry)."""
    names = entry._marks
    if names is None:
        names = [f"tag:{tag}" for tag in entry.tags]
        if entry.path:
            names.append(f"path:{entry.path}")
            names.extend(f"layout:{p}" for p in ancestors(entry.path))
        entry._marks = names
    return names


def mark_name(kind: str, name: str, layout: bool = False) -> str:
    """The name a revalidation marks: ``("tag", "posts")`` → ``tag:posts``, ``("path",
    "/posts")`` → ``path:/posts``, ``("path", "/posts/", True)`` → ``layout:/posts``."""
    if kind == "tag":
        return f"tag:{name}"
    if kind == "path":
        return f"layout:{layout_root(name)}" if layout else f"path:{name}"
    raise ValueError(f"A revalidation is of a 'tag' or a 'path', not {kind!r}.")


def layout_root(path: str) -> str:
    """The path a ``layout`` revalidation of ``path`` is about: ``/posts/`` means ``/posts``.

    A layout is the same with or without a trailing slash: ``revalidate_path("/posts/",
    "layout")`` drops ``/posts``, ``/posts/`` and every path below them, as
    ``revalidate_path("/posts", "layout")`` does. Every store records and matches a layout
    revalidation by this path.
    """
    return path.rstrip("/") or "/"


def is_below(path: str, parent: str) -> bool:
    """Whether a ``layout`` revalidation of ``parent`` covers the page at ``path``: ``path`` is
    ``parent`` (with or without a trailing slash) or lies below it."""
    root = layout_root(parent)
    if root == "/":
        return path.startswith("/")
    return path == root or path.startswith(root + "/")
