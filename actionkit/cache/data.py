"""The data cache: :func:`cached` keeps a function's results in the page cache's store.

The same store and tags as pages: ``revalidate_tag`` drops both, and a cached page that showed a
cached value carries that value's tags and lifetime (see :mod:`actionkit.cache`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import re
import string
import typing as t
from contextvars import ContextVar

from .. import context
from ..stores import Entry
from ..stores.base import INFINITY
from .api import current_cache
from .policy import page_path

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

TagSpec = str | t.Iterable[str] | t.Callable[..., str | t.Iterable[str]]


def cached(
    tags: TagSpec = (), ttl: float | None = None, key: str | t.Sequence[str] = ()
) -> t.Callable[[F], F]:
    """Cache a function's result by its arguments (the data cache, like Next.js's
    ``unstable_cache``).

    Arguments and results must be JSON values (the result comes back as JSON gives it: tuples
    as lists, the keys of a dict as strings; a dict argument's keys must be strings). ``tags``
    may be format strings filled from the arguments, by position or by name, or a callable
    taking the same arguments, so one entry can be revalidated alone::

        @cached(tags=["posts", "post:{post_id}"])
        def get_post(post_id):
            return db.fetch_post(post_id)

        revalidate_tag("post:42")   # drops get_post(42) only; "posts" drops them all

    ``get_post(42)`` and ``get_post(post_id=42)`` share one entry. A cached page that calls a
    cached function carries that function's tags, and stays fresh no longer than its value,
    so ``revalidate_tag("post:42")`` also drops the pages that showed post 42.

    The function stays callable as before; ``fn.uncached`` calls it without the cache.

    A thread of your own (a ``ThreadPoolExecutor``) does not inherit the page or the value
    being computed: run the work in a copy of the context, or the values it reads do not tag
    what shows them (``revalidate_tag`` would leave those stale)::

        pool.submit(contextvars.copy_context().run, get_post, 42)

    Entries are named by the function's module and qualified name, so functions of one name
    share them: closures made by one factory, which may read different data, need ``key``::

        def reader(table):
            @cached(key=table)
            def count():
                return db.count(table)
            return count

    :param tags: the tags of every entry (see above).
    :param ttl: seconds before the value is computed again; ``None``: until revalidated.
    :param key: one string or several (Next.js's ``keyParts``) that name this function's
        entries together with its module and qualified name.
    """
    if ttl is not None:
        ttl = _seconds(ttl)
    if not callable(tags):
        specs = [tags] if isinstance(tags, str) else list(tags)
        for spec in specs:
            if not isinstance(spec, str) or not spec:
                raise ValueError(f"Cache tags are non-empty strings, not {spec!r}.")

    parts = [key] if isinstance(key, str) else list(key) if isinstance(key, list | tuple) else None
    if parts is None or not all(isinstance(part, str) for part in parts):
        raise ValueError(f"key is a string or a list of strings, not {key!r}.")

    def decorator(fn: F) -> F:
        name = f"{fn.__module__}.{fn.__qualname__}"
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"cached() takes a plain function; {name} is async (actionkit runs no event"
                " loop): cache a synchronous function."
            )
        if inspect.isgeneratorfunction(fn):
            raise TypeError(
                f"cached() takes a function that returns its value; {name} is a generator:"
                " return a list."
            )
        prefix = "data:" + name + (_json(parts) if parts else "") + ":"
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins
            signature = None
        if not callable(tags):
            _check_fields(name, specs, signature)

        @functools.wraps(fn)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            call = _bind(signature, args, kwargs)
            if call is None:
                return fn(*args, **kwargs)  # raises the usual TypeError for a bad call
            entry_key = prefix + _argument_key(name, call[2])
            cache = current_cache()
            ctx = context.current()
            if ctx is not None and ctx.pending:
                # The action's revalidations first: they may concern this value.
                cache.flush(ctx.pending)
            now = cache.clock()
            entry = cache.lookup(entry_key)
            if entry is not None and now < entry.expires:
                _record_use(entry.tags, entry.expires)
                return json.loads(entry.body)
            since = cache.generation()
            # The cached values fn reads itself: their tags and lifetimes are this value's too.
            inner = _Scope()
            token = _scope.set(inner)
            try:
                value = fn(*args, **kwargs)
            finally:
                _scope.reset(token)
            try:
                body = _json(value).encode()
            except (TypeError, ValueError):
                raise TypeError(
                    f"The cached function {name} must return a JSON value (str, int, float,"
                    f" bool, None, list, dict), not {value!r}."
                ) from None
            entry_tags = sorted(inner.tags.union(_tags(name, tags, args, kwargs, call)))
            now = cache.clock()
            expires = min(INFINITY if ttl is None else now + ttl, inner.expires)
            _record_use(entry_tags, expires)
            if expires > now:  # (ttl=0, or a value it read that is not kept: not stored)
                entry = Entry(
                    body,
                    {},
                    tags=entry_tags,
                    path=_page(ctx),
                    expires=expires,
                    stale_until=expires,
                )
                cache.put(entry_key, entry, since)
            return json.loads(body)

        wrapper.uncached = fn  # type: ignore[attr-defined]
        return t.cast(F, wrapper)

    return decorator


def _json(value: t.Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


_Call = tuple[tuple[t.Any, ...], dict[str, t.Any], dict[str, t.Any]]


def _bind(
    signature: inspect.Signature | None, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
) -> _Call | None:
    """``(positional, named, key arguments)`` of a call, defaults filled in, so that ``f(1)``
    and ``f(x=1)`` make one key; ``None`` when the call does not fit the signature.
    """
    if signature is None:
        return args, kwargs, {"args": args, "kwargs": kwargs}
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return bound.args, {**bound.arguments, **bound.kwargs}, bound.arguments


def _seconds(ttl: t.Any) -> float:
    """``ttl`` as a finite number of seconds >= 0, else a ValueError."""
    try:
        seconds = float(ttl) if isinstance(ttl, int | float) and not isinstance(ttl, bool) else -1
    except OverflowError:
        seconds = math.inf
    if not 0 <= seconds < math.inf:  # (NaN too)
        raise ValueError(f"ttl must be a finite number of seconds >= 0 or None, not {ttl!r}.")
    return seconds


_KEY_NOT_TEXT = re.compile(r'"(?:-?\d[^"]*|true|false|null|NaN|-?Infinity)":')

#: Arguments whose JSON is longer are named in the key by its SHA-256: the key is not counted
#: against a store's ``max_bytes``, and a long text argument must not make it grow.
_LONG_ARGUMENTS = 128


def _argument_key(name: str, arguments: dict[str, t.Any]) -> str:
    """The part of an entry's key made from the call's arguments (their JSON, or its hash)."""
    try:
        text = _json(arguments)
    except (TypeError, ValueError):
        text = None
    # JSON writes a dict's keys 1, 1.5, True and None as strings: only when its text has such a
    # key (or "1" was one) are the arguments looked through for keys that were not strings.
    if text is None or _KEY_NOT_TEXT.search(text):
        for param, value in arguments.items():
            try:
                problem = _not_json(value, leaves=text is None)
            except RecursionError:  # a list or dict that holds itself
                problem = ""
            if problem is not None:
                raise TypeError(
                    f"The cached function {name} got {value!r} for {param!r}; its arguments"
                    f" must be JSON values (str, int, float, bool, None, list, dict){problem}"
                    " to make the key."
                )
    assert text is not None
    if len(text) > _LONG_ARGUMENTS:
        return "#" + hashlib.sha256(text.encode()).hexdigest()
    return text


def _not_json(value: t.Any, leaves: bool = True) -> str | None:
    """Why ``value`` is not a JSON value that comes back as itself: ``None`` when it is. A dict
    key that is not a string would share its key with the string (``{1: x}`` and
    ``{"1": x}``). ``leaves=False``: the values inside are known to be JSON."""
    if isinstance(value, dict):
        if not all(issubclass(kind, str) for kind in set(map(type, value))):
            bad = next(k for k in value if not isinstance(k, str))
            return f", with strings as the keys of a dict (not {bad!r})"
        value = list(value.values())
    if isinstance(value, list | tuple):
        kinds = set(map(type, value))  # (looked at one by one only when they need it)
        if not leaves and not any(issubclass(kind, dict | list | tuple) for kind in kinds):
            return None
        for item in value:
            problem = _not_json(item, leaves)
            if problem is not None:
                return problem
        return None
    if not leaves:
        return None
    try:
        _json(value)
    except (TypeError, ValueError):
        return ""
    return None


def _check_fields(name: str, specs: list[str], signature: inspect.Signature | None) -> None:
    """Refuse at decoration time a tag naming an argument the function does not have."""
    if signature is None:
        return
    params = signature.parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()):
        return
    positional = [
        p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for spec in specs:
        for _, field, _, _ in string.Formatter().parse(spec):
            if field is None:
                continue
            first = field.split(".", 1)[0].split("[", 1)[0]
            if first == "" or (first.isdigit() and int(first) >= len(positional)):
                raise ValueError(
                    f"The tag {spec!r} of {name} refers to argument {{{first}}}, but the"
                    f" function takes {[p.name for p in positional]!r} by position; use their"
                    " names or positions."
                )
            if "." in re.sub(r"\[[^\]]*\]", "", field[len(first) :]):
                raise ValueError(
                    f"The tag {spec!r} of {name} reads an attribute ({{{field}}}); its arguments"
                    " are JSON values: name an item of a dict with [key]."
                )
            if not first.isdigit() and first not in params:
                raise ValueError(
                    f"The tag {spec!r} of {name} refers to {first!r}, which is not one of its"
                    f" arguments {list(params)!r}."
                )


def _tags(
    name: str,
    spec: TagSpec,
    args: tuple[t.Any, ...],
    kwargs: dict[str, t.Any],
    call: _Call,
) -> list[str]:
    if callable(spec):
        spec = spec(*args, **kwargs)
        if isinstance(spec, str):
            spec = [spec]
        tags = list(spec)
        for tag in tags:
            if not isinstance(tag, str) or not tag:
                raise ValueError(
                    f"The tags function of {name} returned {tag!r}; tags are non-empty strings."
                )
        return tags
    if isinstance(spec, str):
        spec = [spec]
    positional, named, _ = call
    return [tag.format(*positional, **named) for tag in spec]


def _page(ctx: context.RequestContext | None) -> str:
    """The path of the page whose render computes a value, which its ``revalidate_path``
    (or a layout's above it) then drops, as Next.js tags such data with the route; ``""``
    outside a page (an action, a job)."""
    if ctx is None or ctx.in_action:
        return ""
    return page_path(ctx.environ)


class _Scope:
    """The tags and earliest expiry of the cached values read while a cached function runs."""

    __slots__ = ("expires", "tags")

    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.expires = INFINITY


_scope: ContextVar[_Scope | None] = ContextVar("actionkit.cached", default=None)


def _record_use(tags: t.Iterable[str], expires: float) -> None:
    """Tell the cached function being computed, else the page being rendered (if any), that
    it shows this cached value."""
    scope = _scope.get()
    if scope is not None:
        scope.tags.update(tags)
        scope.expires = min(scope.expires, expires)
        return
    ctx = context.current()
    if ctx is None or ctx.in_action:
        return
    hints = ctx.hints
    hints.data_tags.update(tags)
    if expires < hints.data_expires:
        hints.data_expires = expires
