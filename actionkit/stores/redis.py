"""A store in Redis, shared by every host of a deployment.

Each operation that must be atomic (store-unless-revalidated, revalidation, eviction) is one Lua
script, a single step on the server: once ``revalidate_*`` has returned, no client of the same
server can read a dropped entry. Needs ``redis`` (``pip install actionkit[redis]``).

A server restarted without its data, or flushed, would count revalidations from zero again, and
a render begun before could be stored as fresh after a later revalidation. So the generation
also names the server's *incarnation*: a digest of the server's ``run_id``
(new at every start, even one that loads a snapshot) and of an epoch key set at first contact
(gone with a flush), and ``set`` refuses a value computed in another incarnation, in the same
step as it stores; ``get`` ignores an entry stored in another (a server that crashed and
reloaded an older snapshot holds again the entries that revalidations since had dropped). The
server must not evict the store's keys (``maxmemory-policy`` ``noeviction`` or ``volatile-*``;
``max_bytes`` bounds the store itself), nor rename ``INFO``; its ``maxmemory`` must leave room
for the store beyond its other data (refused writes are an outage: see :mod:`actionkit.cache.safe`).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import typing as t

from .base import (
    MAX_MARKS,
    Entry,
    layout_root,
    make_generation,
    mark_name,
    marks,
    split_generation,
)

# Drop the entries whose keys are in KEYS-like list `victims`; shared by the scripts below.
_DROP = """
local function drop(p, victims)
  local freed = 0
  for _, k in ipairs(victims) do
    local ek = p .. 'e:' .. k
    local data = redis.call('HMGET', ek, 'tags', 'path', 'size')
    if data[3] then
      for _, tag in ipairs(cjson.decode(data[1])) do redis.call('SREM', p .. 't:' .. tag, k) end
      redis.call('SREM', p .. 'p:' .. data[2], k)
      if redis.call('SCARD', p .. 'p:' .. data[2]) == 0 then
        redis.call('SREM', p .. 'paths', data[2])
      end
      redis.call('DEL', ek)
      redis.call('ZREM', p .. 'lru', k)
      freed = freed + tonumber(data[3])
    end
  end
  redis.call('DECRBY', p .. 'bytes', freed)
end
"""

# The incarnation of the store's data (see the module): a digest of the server's run ID and of
# the epoch key, which is set to `fresh` when missing (or, without `fresh`, nil).
_INCARNATION = """
local function incarnation(p, fresh)
  local epoch = redis.call('GET', p .. 'epoch')
  if not epoch then
    if not fresh then return nil end
    redis.call('SET', p .. 'epoch', fresh)
    epoch = fresh
  end
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
  return string.sub(redis.sha1hex(run .. ':' .. epoch), 1, 15)
end
"""

_GENERATION = (
    _INCARNATION
    + """
return {incarnation(ARGV[1], ARGV[2]), redis.call('GET', ARGV[1] .. 'gen') or '0'}
"""
)

# Whether a value computed at generation `since` (of incarnation `inc`, hex) may be stored
# with marks `names`: the incarnation is the same and no revalidation since concerns it.
_MAY_STORE = """
local function may_store(p, since, names, inc)
  -- A value computed in another incarnation of the data (before a restart or flush) is refused:
  -- the count of revalidations started again, so comparing counts would prove nothing.
  if incarnation(p, nil) ~= inc then return false end
  local gen = tonumber(redis.call('GET', p .. 'gen') or '0')
  if gen == since then return true end
  if since < tonumber(redis.call('GET', p .. 'floor') or '0') then return false end
  if #names > 0 then
    for _, v in ipairs(redis.call('HMGET', p .. 'touched', unpack(names))) do
      if v and tonumber(v) > since then return false end
    end
  end
  return true
end
"""

# Store an entry under `k` (replacing any), evicting the least recently used entries past
# `maxbytes`; whether it is held. `e`: tags (JSON), body, meta, path, expires, stale_until, size,
# and the incarnation it is stored in (which `get` checks).
_PUT = """
local function put(p, k, now, maxbytes, e)
  drop(p, {k})
  -- An entry over max_bytes would push out everything else, and then itself.
  if tonumber(e[7]) > maxbytes then return 0 end
  redis.call('HSET', p .. 'e:' .. k, 'body', e[2], 'meta', e[3], 'path', e[4],
    'tags', e[1], 'expires', e[5], 'stale_until', e[6], 'size', e[7], 'inc', e[8])
  for _, tag in ipairs(cjson.decode(e[1])) do redis.call('SADD', p .. 't:' .. tag, k) end
  redis.call('SADD', p .. 'p:' .. e[4], k)
  redis.call('SADD', p .. 'paths', e[4])
  redis.call('ZADD', p .. 'lru', now, k)
  local total = redis.call('INCRBY', p .. 'bytes', tonumber(e[7]))
  while total > maxbytes do
    local victims = redis.call('ZRANGE', p .. 'lru', 0, 0)
    if #victims == 0 then break end
    drop(p, victims)
    total = tonumber(redis.call('GET', p .. 'bytes'))
  end
  return redis.call('EXISTS', p .. 'e:' .. k)
end
"""

# Record a revalidation (mark `name`; `mode` 'tag', 'path' or 'layout' of `arg`) and drop the
# entries it concerns; returns the new generation.
_REVALIDATE_ONE = """
local function revalidate(p, name, mode, arg, maxmarks, every)
  local gen = redis.call('INCR', p .. 'gen')
  redis.call('HSET', p .. 'touched', name, gen)
  if gen % every == 0 and redis.call('HLEN', p .. 'touched') > maxmarks then
    -- Forget the oldest half of the marks; 'floor' sums them up (see base.MAX_MARKS).
    local all = redis.call('HGETALL', p .. 'touched')
    local gens = {}
    for i = 2, #all, 2 do table.insert(gens, tonumber(all[i])) end
    table.sort(gens)
    local cutoff = gens[math.max(1, math.floor(maxmarks / 2))]
    for i = 1, #all, 2 do
      if tonumber(all[i + 1]) <= cutoff then redis.call('HDEL', p .. 'touched', all[i]) end
    end
    redis.call('SET', p .. 'floor', cutoff)
  end
  local victims = {}
  if mode == 'tag' then
    victims = redis.call('SMEMBERS', p .. 't:' .. arg)
  elseif mode == 'path' then
    victims = redis.call('SMEMBERS', p .. 'p:' .. arg)
  else
    local prefix = arg
    if string.sub(prefix, -1) ~= '/' then prefix = prefix .. '/' end
    for _, path in ipairs(redis.call('SMEMBERS', p .. 'paths')) do
      if path == arg or string.sub(path, 1, #prefix) == prefix then
        for _, k in ipairs(redis.call('SMEMBERS', p .. 'p:' .. path)) do
          table.insert(victims, k)
        end
      end
    end
  end
  drop(p, victims)
  return gen
end
"""

_STORING = _DROP + _INCARNATION + _MAY_STORE + _PUT

# ARGV: prefix, key, since, now, max_bytes, marks (JSON), the entry (7, see _PUT), incarnation.
_SET = (
    _STORING
    + """
local p, k = ARGV[1], ARGV[2]
-- Storing the key ends the render that held its lease (stored or refused), or shows that the
-- one holding it died with its process: let it go.
redis.call('DEL', p .. 'l:' .. k)
if not may_store(p, tonumber(ARGV[3]), cjson.decode(ARGV[6]), ARGV[14]) then return 0 end
return put(p, k, ARGV[4], tonumber(ARGV[5]), {unpack(ARGV, 7, 14)})
"""
)

# ARGV: prefix, key, now. The entry, made the most recently used; nil: none of this incarnation.
_GET = (
    _DROP
    + _INCARNATION
    + """
local p, k = ARGV[1], ARGV[2]
local f = redis.call('HMGET', p .. 'e:' .. k, 'body', 'meta', 'path', 'tags', 'expires',
  'stale_until', 'inc')
if not f[1] then return nil end
if f[7] ~= incarnation(p, nil) then drop(p, {k}) return nil end
redis.call('ZADD', p .. 'lru', 'XX', ARGV[3], k)
return {f[1], f[2], f[3], f[4], f[5], f[6]}
"""
)

# ARGV: prefix, mark name, mode, path or tag, max marks, how often to forget some.
_REVALIDATE = (
    _DROP
    + _REVALIDATE_ONE
    + "return revalidate(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))"
)

# ARGV: prefix, max marks, how often, count n, n × (name, mode, path or tag), then for an entry
# the arguments of _SET from the key on.
_REVALIDATE_AND_SET = (
    _STORING
    + _REVALIDATE_ONE
    + """
local p, maxmarks, every, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local at = 5 + 3 * n
local k = ARGV[at]
local storing = false
if k then
  redis.call('DEL', p .. 'l:' .. k)
  storing = may_store(p, tonumber(ARGV[at + 1]), cjson.decode(ARGV[at + 4]), ARGV[at + 12])
end
for i = 5, at - 1, 3 do revalidate(p, ARGV[i], ARGV[i + 1], ARGV[i + 2], maxmarks, every) end
if not storing then return 0 end
return put(p, k, ARGV[at + 2], tonumber(ARGV[at + 3]), {unpack(ARGV, at + 5, at + 12)})
"""
)

_DELETE = _DROP + "drop(ARGV[1], {ARGV[2]}) return 1"
_SINGLE_KEYS = ("paths", "lru", "bytes", "gen", "touched", "floor", "epoch")


class RedisStore:
    """Keeps entries in the Redis server at ``url``.

    A store that cannot be reached must fail fast rather than hold requests up: every command
    waits at most ``socket_timeout`` seconds for its answer (``socket_connect_timeout`` for a
    connection), and a command is tried again once, at once, only when its connection broke
    (as every pooled connection does when the server restarts), never after a timeout. A paused
    or unreachable server then costs a request about half a second, after which the page cache
    serves it uncached.

    .. code-block:: python

        RedisStore("redis://cache.internal:6379/0")
        RedisStore("redis://cache.internal:6379/0?socket_timeout=2")  # a slow network

    :param url: ``redis://host:port/db`` (also ``rediss://`` and ``unix://``). Options of
        redis-py's ``from_url`` in its query, such as ``socket_timeout``, win over the keyword
        arguments.
    :param prefix: the key prefix, so several applications can share one server.
    :param max_bytes: bound on the bytes held; the least recently used entries go first.
    :param socket_timeout: seconds to wait for an answer (0.5).
    :param socket_connect_timeout: seconds to wait for a connection (0.5).
    """

    #: How many revalidation marks to remember (see :data:`~actionkit.stores.base.MAX_MARKS`).
    max_marks = MAX_MARKS

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "actionkit:",
        max_bytes: int = 256 * 1024 * 1024,
        socket_timeout: float = 0.5,
        socket_connect_timeout: float = 0.5,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                f"RedisStore needs the redis package, which is not installed ({e}): pip install"
                " 'actionkit[redis]'."
            ) from e

        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}.")
        self.url = url
        self.prefix = prefix
        self.max_bytes = max_bytes
        # redis-py's default retries a failed command ten times with a growing pause, which
        # turns a paused server into seconds of waiting per command. Once, at once, and only
        # for a broken connection.
        retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
        self._redis: t.Any = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=retry,
        )
        self._get = self._redis.register_script(_GET)
        self._generation = self._redis.register_script(_GENERATION)
        self._set = self._redis.register_script(_SET)
        self._revalidate = self._redis.register_script(_REVALIDATE)
        self._revalidate_and_set = self._redis.register_script(_REVALIDATE_AND_SET)
        self._delete = self._redis.register_script(_DELETE)

    def get(self, key: str) -> Entry | None:
        fields = self._get(args=[self.prefix, key, time.time()])  # one script, one round trip
        if fields is None:
            return None
        body, meta, path, tags, expires, stale_until = fields
        return Entry(
            bytes(body),
            json.loads(meta),
            tags=json.loads(tags),
            path=path.decode(),
            expires=float(expires),
            stale_until=float(stale_until),
        )

    def set(self, key: str, entry: Entry, since: int) -> bool:
        return bool(self._set(args=[self.prefix, *self._storing(key, entry, since)]))

    def revalidate_and_set(
        self,
        revalidations: t.Sequence[tuple[str, str, bool]],
        key: str | None = None,
        entry: Entry | None = None,
        since: int = -1,
        *,
        started: float | None = None,
        written: float | None = None,
    ) -> bool:
        """See :mod:`actionkit.stores`: one script, so one round trip and one step on the
        server. ``started`` and ``written`` are times of one host's clock, which the other
        hosts sharing the server cannot compare with theirs: they are not used, and the entry
        is stored by the rule of ``set`` (kept out by any revalidation since ``since``
        that concerns it, other than the ones given here)."""
        args: list[t.Any] = [self.prefix, *self._marks(), len(revalidations)]
        for kind, name, layout in revalidations:
            args += self._revalidation(kind, name, layout)  # a bad one fails before any write
        if key is not None and entry is not None:
            args += self._storing(key, entry, since)
        return bool(self._revalidate_and_set(args=args))

    def _storing(self, key: str, entry: Entry, since: int) -> list[t.Any]:
        """The arguments of the scripts that store ``entry`` under ``key`` (see _SET)."""
        incarnation, count = split_generation(since)
        return [
            key,
            count,
            time.time(),
            self.max_bytes,
            json.dumps(marks(entry)),
            json.dumps(list(entry.tags)),
            entry.body,
            json.dumps(entry.meta),
            entry.path,
            repr(entry.expires),
            repr(entry.stale_until),
            entry.size,
            f"{incarnation:015x}",
        ]

    @staticmethod
    def _revalidation(kind: str, name: str, layout: bool) -> tuple[str, str, str]:
        """A revalidation as the scripts take it: its mark, its mode and its tag or path."""
        mark = mark_name(kind, name, layout)  # raises for anything but a tag or a path
        if kind == "tag":
            return mark, "tag", name
        return mark, "layout" if layout else "path", layout_root(name) if layout else name

    def generation(self) -> int:
        incarnation, count = self._generation(args=[self.prefix, secrets.token_hex(16)])
        return make_generation(int(incarnation, 16), int(count))

    def revalidate_tag(self, tag: str) -> None:
        self._revalidate(args=[self.prefix, *self._revalidation("tag", tag, False), *self._marks()])

    def revalidate_path(self, path: str, layout: bool = False) -> None:
        revalidation = self._revalidation("path", path, layout)
        self._revalidate(args=[self.prefix, *revalidation, *self._marks()])

    def _marks(self) -> tuple[int, int]:
        return self.max_marks, max(1, self.max_marks // 10)

    def acquire(self, key: str, ttl: float) -> bool:
        return bool(
            self._redis.set(f"{self.prefix}l:{key}", b"1", nx=True, px=max(1, int(ttl * 1000)))
        )

    def release(self, key: str) -> None:
        self._redis.delete(f"{self.prefix}l:{key}")

    def delete(self, key: str) -> None:
        self._delete(args=[self.prefix, key])

    def clear(self) -> None:
        # Only its own keys (another prefix may begin with this one: "shop:admin:").
        glob = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix)
        names = [self.prefix + name for name in _SINGLE_KEYS]
        for family in ("e:", "t:", "p:", "l:"):
            names += self._redis.scan_iter(match=f"{glob}{family}*", count=1000)
        for start in range(0, len(names), 500):
            self._redis.delete(*names[start : start + 500])

    def close(self) -> None:
        self._redis.close()

    def __len__(self) -> int:
        return int(self._redis.zcard(f"{self.prefix}lru"))

    def __repr__(self) -> str:
        return f"<RedisStore {self.url!r} prefix={self.prefix!r}>"
