from __future__ import annotations

import fcntl
import functools
import json
import multiprocessing
import os
import random
import sqlite3
import threading
import time
import typing as t
from pathlib import Path

import pytest

from actionkit.stores import (
    Entry,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    Store,
    ancestors,
    sqlite_file,
    sqlite_writes,
)
from actionkit.stores.base import is_below, layout_root, split_generation

from .conftest import RedisServer


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> t.Iterator[t.Callable[..., Store]]:
    """A factory of empty stores of each kind (same database/server per test)."""
    made: list[t.Any] = []

    def make(**options: t.Any) -> Store:
        if request.param == "memory":
            store: Store = MemoryStore(**options)
        elif request.param == "sqlite":
            store = SQLiteStore(tmp_path / "cache.sqlite3", **options)
        else:
            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, prefix=f"test{random.getrandbits(32)}:", **options)
        made.append(store)
        return store

    yield make
    for store in made:
        if hasattr(store, "close"):
            store.clear()
            store.close()


@pytest.fixture
def store(make_store: t.Callable[..., Store]) -> Store:
    return make_store()


def _entry(body: bytes = b"x", tags: t.Iterable[str] = (), path: str = "/p", **kw: t.Any) -> Entry:
    return Entry(body, {"status": "200 OK"}, tags=tags, path=path, **kw)


def test_round_trip(store: Store) -> None:
    """An entry comes back with its bytes, meta, tags, path and lifetimes."""
    since = store.generation()
    assert store.set(
        "k", _entry(b"\x00body", ["a", "b"], "/x", expires=5.0, stale_until=9.0), since
    )
    entry = store.get("k")
    assert entry is not None
    assert (entry.body, entry.meta, entry.tags, entry.path) == (
        b"\x00body",
        {"status": "200 OK"},
        ("a", "b"),
        "/x",
    )
    assert (entry.expires, entry.stale_until) == (5.0, 9.0)
    assert store.get("missing") is None


def test_infinite_lifetime_survives_the_store(store: Store) -> None:
    """'Until revalidated' entries keep an infinite lifetime in every store."""
    store.set("k", _entry(), store.generation())
    entry = store.get("k")
    assert entry is not None and entry.expires == float("inf") == entry.stale_until


def test_revalidate_tag_drops_only_tagged_entries(store: Store) -> None:
    """revalidate_tag drops every entry with the tag and nothing else."""
    since = store.generation()
    store.set("a", _entry(tags=["posts", "post:1"]), since)
    store.set("b", _entry(tags=["posts"]), since)
    store.set("c", _entry(tags=["users"]), since)
    store.revalidate_tag("post:1")
    assert [store.get(k) is not None for k in "abc"] == [False, True, True]
    store.revalidate_tag("posts")
    assert [store.get(k) is not None for k in "abc"] == [False, False, True]
    assert store.generation() == since + 2


def test_revalidate_path_and_layout(store: Store) -> None:
    """A page revalidation drops its path (every query); layout drops the paths below too."""
    since = store.generation()
    for key, path in [
        ("posts", "/posts"),
        ("posts?page=2", "/posts"),
        ("post1", "/posts/1"),
        ("postsx", "/postsx"),
        ("home", "/"),
    ]:
        store.set(key, _entry(path=path), since)
    store.revalidate_path("/posts")
    present = {k for k in ("posts", "posts?page=2", "post1", "postsx", "home") if store.get(k)}
    assert present == {"post1", "postsx", "home"}
    store.revalidate_path("/posts", layout=True)
    assert store.get("post1") is None and store.get("postsx") is not None
    store.revalidate_path("/", layout=True)
    assert store.get("postsx") is None and store.get("home") is None


_PATHS = ["/", "/posts", "/posts/", "/posts/1", "/posts/1/", "/posts/1/edit", "/postsx", "/p"]


@pytest.mark.parametrize(
    ("path", "layout"),
    [
        pytest.param("/posts", True, id="layout"),
        pytest.param("/posts/", True, id="layout-trailing-slash"),
        pytest.param("/posts//", True, id="layout-two-slashes"),
        pytest.param("/posts/1/", True, id="layout-deeper-trailing-slash"),
        pytest.param("/", True, id="layout-root"),
        pytest.param("/posts", False, id="page"),
        pytest.param("/posts/", False, id="page-trailing-slash"),
    ],
)
def test_revalidate_path_with_and_without_a_trailing_slash(
    store: Store, path: str, layout: bool
) -> None:
    """A layout is the same with or without a trailing slash: revalidate_path("/posts/",
    "layout") drops /posts, /posts/ and every path below them, as "/posts" does, in every
    store; a page revalidation drops exactly the page it names ("/posts/" is not "/posts")."""
    since = store.generation()
    for page in _PATHS:
        assert store.set(page, _entry(path=page), since)
    store.revalidate_path(path, layout=layout)
    dropped = {page for page in _PATHS if store.get(page) is None}
    expected = {p for p in _PATHS if is_below(p, path)} if layout else {path}
    assert dropped == expected
    if layout and path in ("/posts", "/posts/"):
        assert dropped == {"/posts", "/posts/", "/posts/1", "/posts/1/", "/posts/1/edit"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/posts", id="no-slash"),
        pytest.param("/posts/", id="trailing-slash"),
    ],
)
def test_a_value_computed_before_a_layout_revalidation_with_a_slash_is_not_stored(
    store: Store, path: str
) -> None:
    """A page below a layout rendered before revalidate_path("/posts/", "layout") is refused
    as it is for "/posts": the revalidation is recorded under one name in every store."""
    since = store.generation()
    store.revalidate_path(path, layout=True)
    for page in ("/posts", "/posts/", "/posts/1"):
        assert not store.set(page, _entry(path=page), since), page
    assert store.set("/postsx", _entry(path="/postsx"), since)


@pytest.mark.parametrize(
    ("path", "parent", "below"),
    [
        pytest.param("/posts/1", "/posts", True, id="child"),
        pytest.param("/posts/1", "/posts/", True, id="child-of-slash"),
        pytest.param("/posts", "/posts/", True, id="itself-without-slash"),
        pytest.param("/posts/", "/posts", True, id="itself-with-slash"),
        pytest.param("/postsx", "/posts", False, id="sibling"),
        pytest.param("/postsx", "/posts/", False, id="sibling-of-slash"),
        pytest.param("/anything", "/", True, id="root"),
        pytest.param("/", "/posts", False, id="parent"),
    ],
)
def test_is_below(path: str, parent: str, below: bool) -> None:
    """is_below tells which pages a layout revalidation covers, trailing slash or not."""
    assert is_below(path, parent) is below
    assert (layout_root(parent) in ancestors(path)) is below


@pytest.mark.parametrize(
    ("revalidate", "stored"),
    [
        pytest.param(lambda s: s.revalidate_tag("posts"), False, id="own-tag"),
        pytest.param(lambda s: s.revalidate_path("/posts/1"), False, id="own-path"),
        pytest.param(lambda s: s.revalidate_path("/posts", layout=True), False, id="parent-layout"),
        pytest.param(lambda s: s.revalidate_tag("users"), True, id="other-tag"),
        pytest.param(lambda s: s.revalidate_path("/posts"), True, id="parent-page"),
    ],
)
def test_a_value_computed_before_a_revalidation_is_not_stored(
    store: Store, revalidate: t.Callable[[Store], None], stored: bool
) -> None:
    """set(since=...) refuses an entry whose tags or path were revalidated after `since`."""
    since = store.generation()
    revalidate(store)
    assert store.set("k", _entry(tags=["posts"], path="/posts/1"), since) is stored
    assert (store.get("k") is not None) is stored


def _folding(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[t.Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        store: t.Any = SQLiteStore(tmp_path / "fold.sqlite3")
    else:
        url = request.getfixturevalue("redis_url")
        store = RedisStore(url, prefix=f"fold{random.getrandbits(32)}:")
    yield store
    if isinstance(store, RedisStore):
        store.clear()
    store.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def folding_store(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[t.Any]:
    """A store that can revalidate and store in one step."""
    yield from _folding(request, tmp_path)


@pytest.fixture(params=["memory", "sqlite"])
def clock_folding_store(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[t.Any]:
    """One that also compares the times of writes and renders (of one host's clock; RedisStore
    stores by set's rule: test_redis_revalidate_and_set_stores_by_the_rule_of_set)."""
    yield from _folding(request, tmp_path)


def test_revalidate_and_set_applies_the_revalidations_and_stores_the_entry(
    folding_store: t.Any,
) -> None:
    """The entry is stored although the revalidations in the same step concern it, and they
    apply to everything else."""
    store = folding_store
    since = store.generation()
    store.set("old", _entry(b"old", tags=["posts"], path="/posts"), since)
    store.set("other", _entry(b"other", tags=["users"], path="/users"), since)
    since = store.generation()
    stored = store.revalidate_and_set(
        [("path", "/posts", False), ("tag", "users", False)],
        "new",
        _entry(b"new", tags=["posts"], path="/posts"),
        since,
    )
    assert stored
    assert store.get("new").body == b"new"
    assert store.get("old") is None and store.get("other") is None
    assert store.generation() == since + 2
    # A value computed before the step is refused afterwards, as after any revalidation.
    assert not store.set("late", _entry(tags=["users"], path="/u"), since)


@pytest.mark.parametrize(
    ("revalidate", "stored"),
    [
        pytest.param(lambda s: s.revalidate_tag("posts"), False, id="own-tag"),
        pytest.param(lambda s: s.revalidate_path("/posts", layout=True), False, id="layout"),
        pytest.param(lambda s: s.revalidate_tag("users"), True, id="other-tag"),
    ],
)
def test_revalidate_and_set_refuses_an_entry_an_earlier_revalidation_concerns(
    folding_store: t.Any, revalidate: t.Callable[[Store], None], stored: bool
) -> None:
    """A revalidation made by someone else after `since` (an action in another process)
    keeps the entry out; the step's own revalidations are applied either way."""
    store = folding_store
    since = store.generation()
    store.set("page", _entry(b"v1", tags=["posts"], path="/posts/1"), since)
    revalidate(store)
    result = store.revalidate_and_set(
        [("path", "/posts/1", False)], "new", _entry(b"v2", tags=["posts"], path="/posts/1"), since
    )
    assert result is stored
    assert (store.get("new") is not None) is stored
    assert store.get("page") is None


def test_revalidate_and_set_stores_past_a_revalidation_of_data_written_before_it_began(
    clock_folding_store: t.Any,
) -> None:
    """With `started` (when the computation began, read after `since`): a revalidation made
    since `since` keeps the entry out only if its data may have been written after that
    (another worker's action that ended before this render began does not)."""
    store = clock_folding_store
    entry = functools.partial(_entry, b"v", tags=["posts"], path="/posts")
    since = store.generation()
    started = time.monotonic()
    store.revalidate_and_set([("tag", "posts", False)], written=started - 1)
    assert store.revalidate_and_set([], "k", entry(), since, started=started)
    assert store.get("k") is not None
    # Written after the start, or with no time of its own (now): kept out.
    since, started = store.generation(), time.monotonic()
    store.revalidate_and_set([("tag", "posts", False)], written=started + 0.5)
    assert not store.revalidate_and_set([], "k", entry(), since, started=started)
    since, started = store.generation(), time.monotonic()
    store.revalidate_tag("posts")
    assert not store.revalidate_and_set([], "k", entry(), since, started=started)
    # Any one of the revalidations since `since` may keep it out, in whichever order.
    since, started = store.generation(), time.monotonic()
    store.revalidate_and_set([("path", "/posts", False)], written=started + 0.5)
    store.revalidate_and_set([("path", "/posts", False)], written=started - 1)
    assert not store.revalidate_and_set([], "k", entry(), since, started=started)
    # Without `started`, any revalidation since `since` does.
    since = store.generation()
    store.revalidate_and_set([("tag", "posts", False)], written=0.0)
    assert not store.revalidate_and_set([], "k", entry(), since)


def test_redis_revalidate_and_set_stores_by_the_rule_of_set(redis_url: str) -> None:
    """Hosts sharing a Redis server have clocks of their own: `started` and `written` do not
    let an entry past a revalidation since `since` that concerns it; the step's own
    revalidations never keep it out, and it takes them and the entry in one script."""
    store = RedisStore(redis_url, prefix=f"rule{random.getrandbits(32)}:")
    try:
        entry = functools.partial(_entry, b"v", tags=["posts"], path="/posts")
        since, started = store.generation(), time.monotonic()
        store.revalidate_and_set([("tag", "posts", False)], written=started - 1)
        assert not store.revalidate_and_set([], "k", entry(), since, started=started)
        since = store.generation()
        store.revalidate_tag("users")  # concerns other entries only
        assert store.revalidate_and_set([("tag", "posts", False)], "k", entry(), since)
        assert store.get("k") is not None
        # Its lease goes with the step, stored or not.
        assert store.acquire("k", 30)
        store.revalidate_and_set([("path", "/posts", True)], "k", entry(), since)
        assert store.get("k") is None and store.acquire("k", 30)
    finally:
        store.clear()
        store.close()


def test_sqlite_marks_of_an_earlier_version_keep_values_out(tmp_path: Path) -> None:
    """A mark made by a process of a version without the `written` table has no time: it
    counts as data written just now; a file of that version gets the table."""
    path = tmp_path / "old.sqlite3"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE written")
    db.commit()
    store = SQLiteStore(path)  # makes the table again
    since, started = store.generation(), time.monotonic()
    db.execute("UPDATE touched SET generation = generation + 1 WHERE name = ''")
    count = split_generation(since)[1]
    db.execute("INSERT OR REPLACE INTO touched VALUES ('tag:posts', ?)", (count + 1,))
    db.commit()
    entry = _entry(tags=["posts"], path="/posts")
    assert not store.revalidate_and_set([], "k", entry, since, started=started)
    # The next revalidation of the name counts the old one as made by now.
    store.revalidate_and_set([("tag", "posts", False)], written=started - 1)
    assert not store.revalidate_and_set([], "k", entry, since, started=started)
    db.close()
    store.close()


@pytest.mark.parametrize("new_tags", [["posts"], ["users"]])
def test_revalidate_and_set_replacing_its_own_key_keeps_its_tags_right(
    folding_store: t.Any, new_tags: list[str]
) -> None:
    """The entry a step replaces is not dropped first: the new one's tags (the same or not)
    are the ones later revalidations find, and the bytes held count it once."""
    store = folding_store
    store.set("page", _entry(b"v1", tags=["posts"], path="/posts"), store.generation())
    held = getattr(store, "_bytes", None)
    since = store.generation()
    new = _entry(b"v2", tags=new_tags, path="/posts")
    assert store.revalidate_and_set([("path", "/posts", False)], "page", new, since)
    assert store.get("page").body == b"v2"
    if held is not None:
        assert store._bytes == new.size
    if isinstance(store, SQLiteStore):
        (total,) = (
            store._db().execute("SELECT generation FROM touched WHERE name = ' bytes'").fetchone()
        )
        assert total == new.size
    store.revalidate_tag("posts" if new_tags == ["users"] else "users")
    assert store.get("page") is not None
    store.revalidate_tag(new_tags[0])
    assert store.get("page") is None


def test_revalidate_and_set_without_an_entry_only_revalidates(folding_store: t.Any) -> None:
    store = folding_store
    since = store.generation()
    store.set("page", _entry(tags=["posts"], path="/p"), since)
    assert store.revalidate_and_set([("tag", "posts", False), ("tag", "x", False)]) is False
    assert store.get("page") is None
    assert store.generation() == since + 2


def test_revalidate_and_set_checks_every_revalidation_before_writing(folding_store: t.Any) -> None:
    store = folding_store
    since = store.generation()
    store.set("page", _entry(tags=["posts"], path="/p"), since)
    with pytest.raises(ValueError, match="'tag' or a 'path'"):
        store.revalidate_and_set([("tag", "posts", False), ("clear", "", False)])
    assert store.get("page") is not None and store.generation() == since


def test_leases_are_exclusive_and_expire(store: Store) -> None:
    """One caller at a time holds a key's lease, until release or its time runs out."""
    assert store.acquire("k", 30)
    assert not store.acquire("k", 30)
    store.release("k")
    assert store.acquire("k", 0.05)
    time.sleep(0.1)
    assert store.acquire("k", 30)


def test_max_bytes_evicts_least_recently_used(make_store: t.Callable[..., Store]) -> None:
    """Entries beyond max_bytes push out the oldest ones; the store stays bounded."""
    store = make_store(max_bytes=3000)
    since = store.generation()
    for key in "abcd":
        store.set(key, _entry(b"x" * 1000, tags=["t"]), since)
    present = [k for k in "abcd" if store.get(k) is not None]
    assert present == ["c", "d"]
    # Evicted entries leave no trace in the indexes: revalidation still works.
    store.revalidate_tag("t")
    assert all(store.get(k) is None for k in "abcd")


def test_sqlite_bytes_held_follow_entries_replaced_by_ones_of_the_same_size(
    tmp_path: Path,
) -> None:
    """The count of bytes held, which eviction goes by, stays the sum of the entries' sizes
    when an entry is replaced by one of the same size (not written then), a bigger or a
    smaller one, and a replacement of the same size still evicts nothing."""
    store = SQLiteStore(tmp_path / "cache.sqlite3", max_bytes=3000)
    db = store._db()
    bodies = [b"a" * 900, b"b" * 900, b"c" * 400, b"d" * 400, b"e" * 1000, b"f" * 1000]
    for body in bodies:
        assert store.set("k", _entry(body), store.generation())
        assert store.set("other", _entry(b"o" * 900), store.generation())
        (held,) = db.execute("SELECT generation FROM touched WHERE name = ' bytes'").fetchone()
        (total,) = db.execute("SELECT sum(size) FROM entries").fetchone()
        assert held == total
    assert store.get("k") is not None and store.get("other") is not None


def test_an_entry_bigger_than_max_bytes_is_refused_and_evicts_nothing(
    make_store: t.Callable[..., Store],
) -> None:
    """One page over the whole bound is not stored, and does not push out the others."""
    store = make_store(max_bytes=5000)
    since = store.generation()
    assert store.set("small", _entry(b"x" * 1000), since)
    assert not store.set("huge", _entry(b"x" * 6000), since)
    assert store.get("small") is not None and store.get("huge") is None


def test_entry_size_counts_meta_tags_and_path() -> None:
    """max_bytes counts headers and tags too, not only the body."""
    bare = Entry(b"x" * 100, {})
    heavy = Entry(b"x" * 100, {"headers": [["X-Big", "y" * 5000]]}, tags=["t" * 300], path="/p")
    assert heavy.size - bare.size > 5300


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_reads_refresh_recency(kind: str, request: pytest.FixtureRequest) -> None:
    """A read makes an entry the most recently used, so it outlives older unread ones."""
    if kind == "memory":
        store: t.Any = MemoryStore(max_bytes=3000)
    else:
        store = RedisStore(
            request.getfixturevalue("redis_url"),
            prefix=f"lru{random.getrandbits(32)}:",
            max_bytes=3000,
        )
    try:
        since = store.generation()
        store.set("a", _entry(b"x" * 1000), since)
        time.sleep(0.002)
        store.set("b", _entry(b"x" * 1000), since)
        time.sleep(0.002)
        store.get("a")
        store.set("c", _entry(b"x" * 1000), since)
        assert store.get("a") is not None and store.get("b") is None
    finally:
        if kind == "redis":
            store.clear()
            store.close()


def test_forgotten_marks_make_older_values_unstorable(store: Store) -> None:
    """Past max_marks the oldest revalidation marks are forgotten, and a value computed before
    them can no longer prove it is unaffected: it is refused. Newer values are stored."""
    store.max_marks = 4  # type: ignore[attr-defined]
    since = store.generation()
    for n in range(12):
        store.revalidate_tag(f"other:{n}")
    assert not store.set("old", _entry(tags=["mine"]), since)
    assert store.set("new", _entry(tags=["mine"]), store.generation())
    # The recent marks are still known: a value computed just before one of them is refused.
    since = store.generation()
    store.revalidate_tag("mine")
    assert not store.set("new", _entry(tags=["mine"]), since)


def _child_uses_inherited_store(store: SQLiteStore, queue: t.Any, parents: int) -> None:
    # The child runs in the thread that forked, which holds the parent's connection.
    fresh = id(store._db()) != parents
    store.revalidate_tag("t")
    queue.put((fresh, store.get("k") is None))
    store.close()


def test_sqlite_store_made_before_fork_works_in_the_child(tmp_path: Path) -> None:
    """A store opened before the workers fork (gunicorn --preload) opens fresh connections in
    each child and leaves the parent's alone; both sides see each other's writes."""
    store = SQLiteStore(tmp_path / "cache.sqlite3")
    store.set("k", _entry(tags=["t"]), store.generation())
    assert store.get("k") is not None
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    child = fork.Process(target=_child_uses_inherited_store, args=(store, queue, id(store._db())))
    child.start()
    assert queue.get(timeout=30) == (True, True)
    child.join(timeout=30)
    assert child.exitcode == 0
    queue.close()
    queue.join_thread()
    assert store.get("k") is None  # the child's revalidation reached the parent
    store.set("k", _entry(tags=["t"]), store.generation())
    assert store.get("k") is not None  # and the parent's connection still works
    store.close()


def test_sqlite_store_starts_afresh_after_a_reboot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is written without fsync: kept while the machine runs, emptied by the first
    store opened after a reboot, made again when it cannot be read at all."""

    path = tmp_path / "cache.sqlite3"
    monkeypatch.setattr(sqlite_file, "boot_id", lambda: "boot-1")
    store = SQLiteStore(path)
    assert store._db().execute("PRAGMA synchronous").fetchone() == (0,)  # OFF
    store.set("k", _entry(tags=["t"]), store.generation())
    store.revalidate_tag("other")
    store.close()

    same_boot = SQLiteStore(path)
    assert same_boot.get("k") is not None and split_generation(same_boot.generation())[1] == 1
    same_boot.close()

    monkeypatch.setattr(sqlite_file, "boot_id", lambda: "boot-2")
    rebooted = SQLiteStore(path)
    assert rebooted.get("k") is None and len(rebooted) == 0
    assert split_generation(rebooted.generation())[1] == 0
    rebooted.set("k", _entry(tags=["t"]), rebooted.generation())
    rebooted.close()
    noted = SQLiteStore(path)
    assert noted.get("k") is not None  # the new boot is noted
    noted.close()

    for suffix in ("-wal", "-shm"):
        (tmp_path / f"cache.sqlite3{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"not a database, as a power loss can leave one" * 100)
    monkeypatch.setattr(sqlite_file, "boot_id", lambda: "boot-3")
    remade = SQLiteStore(path)
    assert len(remade) == 0
    remade.set("k", _entry(), remade.generation())
    assert remade.get("k") is not None
    remade.close()


def test_sqlite_store_syncs_where_reboots_cannot_be_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a boot ID, the file is synced (synchronous=NORMAL) and never started afresh."""

    monkeypatch.setattr(sqlite_file, "boot_id", lambda: None)
    store = SQLiteStore(tmp_path / "cache.sqlite3")
    assert store._db().execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    store.set("k", _entry(), store.generation())
    store.close()
    again = SQLiteStore(tmp_path / "cache.sqlite3")
    assert again.get("k") is not None
    again.close()


def test_boot_id_is_this_boot() -> None:
    from actionkit.stores.sqlite import boot_id

    found = boot_id()
    assert found is None or (found == boot_id() and len(found) > 8)


@pytest.mark.parametrize("watch", ["wal index", "data_version"])
def test_sqlite_front_cache_follows_every_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: str
) -> None:
    """Entries read before are answered from memory until the database changes: a write by
    another connection (another process or thread), or by this one, is seen at the next read,
    whether the store watches the mapped WAL index or, where it has none, PRAGMA data_version."""

    if watch == "data_version":
        monkeypatch.setattr(sqlite_file._wal_index_maps, "acquire", lambda path: None)
    path = tmp_path / "cache.sqlite3"
    reader, writer = SQLiteStore(path), SQLiteStore(path)
    assert bool(reader._shm) is (watch == "wal index")
    reader.set("k", _entry(b"one", tags=["t"]), reader.generation())
    first = reader.get("k")
    assert first is not None and reader.get("k") is first  # from memory

    writer.set("k", _entry(b"two", tags=["t"]), writer.generation())
    second = reader.get("k")
    assert second is not None and second.body == b"two"
    writer.revalidate_tag("t")
    assert reader.get("k") is None

    reader.set("k", _entry(b"three"), reader.generation())  # its own write
    assert reader.get("k").body == b"three"  # type: ignore[union-attr]
    reader.delete("k")
    assert reader.get("k") is None

    seen: list[bytes | None] = []
    reader.set("k", _entry(b"four"), reader.generation())
    assert reader.get("k") is not None
    thread = threading.Thread(target=lambda: writer.set("k", _entry(b"five"), writer.generation()))
    thread.start()
    thread.join()
    found = reader.get("k")
    seen.append(found.body if found else None)
    assert seen == [b"five"]
    reader.close()
    writer.close()


@pytest.mark.parametrize("watch", ["wal index", "data_version"])
def test_sqlite_misses_and_generation_are_remembered_until_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: str
) -> None:
    """A key found missing and the generation are read from SQLite once, then from memory until
    any connection commits: the page that does not opt in costs no query per request."""
    from actionkit.stores import sqlite as sqlite_store

    if watch == "data_version":
        monkeypatch.setattr(sqlite_file._wal_index_maps, "acquire", lambda path: None)
    path = tmp_path / "cache.sqlite3"
    reader, writer = SQLiteStore(path), SQLiteStore(path)
    queries: list[str] = []
    reader._db().set_trace_callback(queries.append)
    since = reader.generation()
    assert reader.get("k") is None
    count = len(queries)
    assert reader.get("k") is None and reader.generation() == since
    assert [q for q in queries[count:] if not q.startswith("PRAGMA data_version")] == []

    writer.set("k", _entry(b"one"), writer.generation())  # another connection's commit
    found = reader.get("k")
    assert found is not None and found.body == b"one"
    writer.revalidate_path("/p")
    assert reader.get("k") is None and reader.generation() > since

    reader.set("other", _entry(b"two"), reader.generation())  # its own commit
    assert reader.get("other") is not None
    for n in range(sqlite_store._FRONT_ENTRIES + 5):
        assert reader.get(f"missing{n}") is None
    assert len(reader._local.misses) <= sqlite_store._FRONT_ENTRIES
    reader.close()
    writer.close()


def test_sqlite_front_cache_is_bounded_and_still_marks_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The front cache holds at most its bound, and an entry read from it for longer than the
    touch interval is read again so that its last use is written for eviction."""
    from actionkit.stores import sqlite as sqlite_store

    store = SQLiteStore(tmp_path / "cache.sqlite3")
    since = store.generation()
    for n in range(sqlite_store._FRONT_ENTRIES + 10):
        store.set(f"k{n}", _entry(), since)
    for n in range(sqlite_store._FRONT_ENTRIES + 10):
        assert store.get(f"k{n}") is not None
    assert len(store._local.front) <= sqlite_store._FRONT_ENTRIES

    clock = [time.time()]
    monkeypatch.setattr(sqlite_store.time, "time", lambda: clock[0])
    assert store.get("k5") is not None
    clock[0] += sqlite_store._TOUCH_EVERY + 1
    assert store.get("k5") is not None
    (used,) = store._db().execute("SELECT used FROM entries WHERE key = 'k5'").fetchone()
    assert used == clock[0]
    store.close()


def test_sqlite_a_read_does_not_wait_for_a_writer_to_mark_its_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read due to write an entry's last use, while another connection holds the write lock
    (a worker stopped inside its transaction), skips that write rather than wait for the lock
    for the store's whole timeout; the store's handler is back for what follows."""
    from actionkit.stores import sqlite as sqlite_store

    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path, timeout=30)
    store.set("k", _entry(), store.generation())
    clock = [time.time() + sqlite_store._TOUCH_EVERY + 1]
    monkeypatch.setattr(sqlite_store.time, "time", lambda: clock[0])
    store._local.front.clear()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert store.get("k") is not None
        assert time.monotonic() - started < 10  # not the 30 s of the timeout
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store._db().execute("PRAGMA busy_timeout").fetchone() == (30_000,)
    store.close()


def test_sqlite_an_entry_stored_again_is_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key stored again keeps its row (its rowid: the indexes of its key and path are not
    written again) with every field of the new entry; its last use is written again only once
    it is older than half the touch interval, and then counts for eviction."""
    from actionkit.stores import sqlite as sqlite_store

    store = SQLiteStore(tmp_path / "cache.sqlite3", max_bytes=2500)
    db = store._db()
    clock = [time.time()]
    monkeypatch.setattr(sqlite_store.time, "time", lambda: clock[0])

    def row(key: str) -> tuple[t.Any, ...]:
        return tuple(
            db.execute(
                "SELECT rowid, path, tags, body, used FROM entries WHERE key = ?", (key,)
            ).fetchone()
        )

    assert store.set("a", Entry(b"x" * 1000, {}, tags=["one"], path="/a"), store.generation())
    first = row("a")
    clock[0] += 1
    assert store.set("a", Entry(b"y" * 1000, {}, tags=["two"], path="/b"), store.generation())
    rowid, path, tags, body, used = row("a")
    assert (rowid, path, json.loads(tags), body, used) == (
        first[0],
        "/b",
        ["two"],
        b"y" * 1000,
        first[4],
    )
    store.revalidate_tag("one")
    assert store.get("a") is not None  # its old tag went with the old entry
    store.revalidate_path("/b")
    assert store.get("a") is None

    assert store.set("a", _entry(b"a" * 1000), store.generation())
    clock[0] += 1
    assert store.set("b", _entry(b"b" * 1000), store.generation())
    clock[0] += sqlite_store._TOUCH_EVERY / 2 + 1
    assert store.set("a", _entry(b"A" * 1000), store.generation())  # used now
    assert row("a")[4] == clock[0]
    clock[0] += 1
    assert store.set("c", _entry(b"c" * 1000), store.generation())  # over max_bytes
    assert store.get("a") is not None and store.get("c") is not None
    assert store.get("b") is None
    store.close()

    # Stored again within the interval, and grown past max_bytes: it pushes out an entry used
    # after its last written use, not itself.
    store = SQLiteStore(tmp_path / "other.sqlite3", max_bytes=2500)
    assert store.set("x", _entry(b"x" * 1000), store.generation())
    clock[0] += 3
    assert store.set("y", _entry(b"y" * 1000), store.generation())
    clock[0] += 2.5  # x's last use is 5.5 s old: written again
    assert store.set("x", _entry(b"X" * 1000), store.generation())
    clock[0] += 1.5  # y's is 4 s old: not written with its row
    assert store.set("y", _entry(b"Y" * 1600), store.generation())
    assert store.get("y") is not None and store.get("x") is None
    store.close()


def test_sqlite_stores_of_one_file_share_one_map(tmp_path: Path) -> None:
    """Two stores of a process on one file share the map of its WAL index; it is unmapped when
    the last of them closes, and made again when a closed store is used again."""

    path = tmp_path / "cache.sqlite3"
    first, second = SQLiteStore(path), SQLiteStore(path)
    assert first._shm and first._shm is second._shm
    key = first._shm_key
    first.close()
    assert key in sqlite_file._wal_index_maps._maps
    second.set("k", _entry(b"one"), second.generation())
    assert second.get("k") is not None
    second.close()
    assert key not in sqlite_file._wal_index_maps._maps
    assert second.get("k") is not None and second._shm  # reopened
    second.close()


def test_wal_index_maps_refuse_what_they_cannot_map(tmp_path: Path) -> None:
    """No map for a missing file, a file too short to be a WAL index, or a file that cannot be
    mapped; a map is released once per store, and a second release changes nothing."""
    from actionkit.stores.sqlite_index import _WalIndexMaps

    maps = _WalIndexMaps()
    assert maps.acquire(str(tmp_path / "missing-shm")) is None
    short = tmp_path / "short-shm"
    short.write_bytes(b"x" * 10)
    assert maps.acquire(str(short)) is None
    assert maps.acquire(str(tmp_path)) is None  # a directory: open, but not mappable
    index = tmp_path / "index-shm"
    index.write_bytes(bytes(32768))
    first, second = maps.acquire(str(index)), maps.acquire(str(index))
    assert first is not None and second is not None and first[1] is second[1]
    maps.release(first[0])
    assert first[0] in maps._maps
    maps.release(first[0])
    assert first[0] not in maps._maps
    maps.release(first[0])  # nothing held: nothing to do
    assert (
        len(maps._unusable) == 1
    )  # the directory's descriptor, kept (see sqlite_index._WalIndexMaps)
    os.close(maps._unusable.pop())  # no SQLite lock on it here


def _child_keeps_locks(path: str, ready: t.Any, go: t.Any) -> None:
    first, second = SQLiteStore(path), SQLiteStore(path)
    second.set("k", _entry(b"one"), second.generation())
    assert second.get("k") is not None
    first.close()  # must not drop the locks SQLite holds for `second`
    ready.set()
    go.wait(30)
    second.get("k")  # reads the map: SIGBUS here if the file was truncated under it
    second.close()


def test_sqlite_closing_a_store_keeps_the_locks_of_another(tmp_path: Path) -> None:
    """Closing one store must not drop the POSIX locks SQLite holds on the WAL index for another
    store of the same process (closing any descriptor of a file drops them all): with them gone,
    a connection from another process would truncate the file under the other store's map.

    SQLite's unix VFS holds a shared lock on byte 128 of ``-shm`` while a connection uses it
    (https://www.sqlite.org/walformat.html): here, the lock must still be held after the close.
    """
    path = str(tmp_path / "cache.sqlite3")
    SQLiteStore(path).close()
    spawn = multiprocessing.get_context("spawn")
    ready, go = spawn.Event(), spawn.Event()
    child = spawn.Process(target=_child_keeps_locks, args=(path, ready, go))
    child.start()
    try:
        assert ready.wait(30)
        fd = os.open(path + "-shm", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128, os.SEEK_SET)
        finally:
            os.close(fd)
        other = sqlite3.connect(path)
        other.execute("SELECT count(*) FROM entries").fetchone()
        other.close()
    finally:
        go.set()
        child.join(30)
    assert child.exitcode == 0


def test_sqlite_layout_revalidation_uses_the_path_index(tmp_path: Path) -> None:
    """Layout revalidation is a range over the path index, not a scan of the table."""
    store = SQLiteStore(tmp_path / "cache.sqlite3")
    db = store._db()
    plan = " ".join(
        row[-1]
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT key FROM entries WHERE path = ?"
            " UNION SELECT key FROM entries WHERE path >= ? AND path < ?",
            ("/a", "/a/", "/a0"),
        )
    )
    assert "SCAN entries" not in plan and "entries_path" in plan
    since = store.generation()
    for key, path in [("a", "/a"), ("a/", "/a/"), ("a/b", "/a/b"), ("a0", "/a0"), ("ab", "/ab")]:
        store.set(key, _entry(path=path), since)
    store.revalidate_path("/a", layout=True)
    assert {k for k in ("a", "a/", "a/b", "a0", "ab") if store.get(k)} == {"a0", "ab"}
    store.close()


def test_memory_store_revalidates_lazily() -> None:
    """The memory store's revalidation only records a mark: an out-of-date entry is dropped at
    its next read, and one that the revalidation does not concern stays."""
    store = MemoryStore()
    store.set("a", _entry(tags=["x"], path="/a"), 0)
    store.set("b", _entry(tags=["y"], path="/b/c"), 0)
    store.revalidate_tag("x")
    store.revalidate_path("/b")  # a page revalidation of the parent: /b/c is untouched
    assert len(store) == 2
    assert store.get("a") is None and len(store) == 1
    assert store.get("b") is not None and store.get("b") is not None
    store.revalidate_path("/b", layout=True)
    assert store.get("b") is None and len(store) == 0


def test_memory_store_refreshes_recency_on_read() -> None:
    """In the memory store a read makes an entry the most recently used."""
    store = MemoryStore(max_bytes=2500)
    store.set("a", _entry(b"x" * 1000), 0)
    store.set("b", _entry(b"x" * 1000), 0)
    store.get("a")
    store.set("c", _entry(b"x" * 1000), 0)
    assert store.get("a") is not None and store.get("b") is None
    assert len(store) == 2 and store.bytes <= 2500
    assert "2 entries" in repr(store)


def test_delete_and_clear(store: Store) -> None:
    """delete() drops one entry, clear() all of them."""
    since = store.generation()
    store.set("a", _entry(), since)
    store.set("b", _entry(), since)
    store.delete("a")
    assert store.get("a") is None and store.get("b") is not None
    store.clear()
    assert store.get("b") is None


def test_invalid_max_bytes(tmp_path: Path) -> None:
    """A nonsensical bound is refused with the value named."""
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryStore(max_bytes=0)
    with pytest.raises(ValueError, match="max_bytes"):
        SQLiteStore(tmp_path / "x.sqlite3", max_bytes=0)


def test_ancestors() -> None:
    """A path's ancestors, itself first, up to the root; /a/ lies in the layout /a."""
    assert ancestors("/a/b") == ["/a/b", "/a", "/"]
    assert ancestors("/") == ["/"]
    assert ancestors("/a/") == ["/a/", "/a", "/"]
    assert ancestors("/a/b/") == ["/a/b/", "/a/b", "/a", "/"]


def test_every_store_follows_the_protocol(store: Store) -> None:
    """Each shipped store satisfies the Store protocol."""
    assert isinstance(store, Store)


# -- read your writes under concurrency ----------------------------------------------------------


class _Checker:
    """Data with a version; renders record what they saw; reads must never go back in time.

    It counts the races that happened: reads under way while a revalidation ran (begun before
    it completed, ended after it began), and renders under way when a revalidation begun after
    they read the data completed, whose value the store must then refuse."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = 0
        self.completed = 0  # the version of the last revalidation that has returned
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.overlapping_reads = 0
        self.raced_renders = 0

    def revalidate(self) -> None:
        with self.lock:
            self.version += 1
            version = self.version
        self.store.revalidate_tag("data")
        with self.lock:
            self.completed = max(self.completed, version)

    def read(self) -> None:
        floor = self.completed
        entry = self.store.get("page")
        if entry is not None:
            seen = int(entry.body)
            if seen < floor:
                self.errors.append(f"read version {seen} after revalidation {floor} returned")
        else:
            since = self.store.generation()
            version = self.version  # "query the database"
            time.sleep(random.random() / 1000)  # a render that takes time
            # A revalidation begun after the query (so after ``since``) has returned.
            raced = self.completed > version
            stored = self.store.set("page", _entry(str(version).encode(), ["data"]), since)
            if raced:
                with self.lock:
                    self.raced_renders += 1
                if stored:
                    self.errors.append(f"stored version {version} after a later revalidation")
        if self.version > floor:  # one not complete when the read began had begun by its end
            with self.lock:
                self.overlapping_reads += 1

    def raced_enough(self) -> bool:
        return self.overlapping_reads >= 20 and self.raced_renders >= 3


def test_read_your_writes_across_threads(store: Store) -> None:
    """8 threads reading, rendering and revalidating never read an entry older than a
    completed revalidation, and the store refuses every value rendered across one; reads did
    overlap revalidations, and renders did see one complete while they ran."""
    checker = _Checker(store)

    def work(index: int) -> None:
        # At least 300 rounds each, and on until the races were seen (or the rounds run out).
        for rounds in range(1, 20_000):
            if rounds > 300 and checker.raced_enough():
                return
            if index < 2 and rounds % 5 == 0:
                checker.revalidate()
            else:
                checker.read()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert checker.version > 10
    assert checker.errors == []
    assert checker.raced_enough(), (checker.overlapping_reads, checker.raced_renders)


def _process_worker(
    path: str, data: str, role: str, started: t.Any, done: t.Any, queue: t.Any
) -> None:
    """One OS process: reads and renders (the reader), or revalidates for as long as the
    reader reads (the writer), through SQLite. The reader counts the races that happened:
    reads under way while a revalidation ran, and renders under way when a revalidation begun
    after they read the data completed."""
    store = SQLiteStore(path)
    db = sqlite3.connect(data, timeout=10, isolation_level=None)
    errors = []
    rounds = overlapping = raced = 0
    try:
        if role == "writer":
            # From the reader's first round to its last (the rounds bound a reader that died).
            while started.wait(60) and not done.is_set() and rounds < 30_000:
                rounds += 1
                db.execute("UPDATE data SET version = version + 1")
                (version,) = db.execute("SELECT version FROM data").fetchone()
                store.revalidate_tag("data")
                db.execute("UPDATE data SET completed = max(completed, ?)", (version,))
                time.sleep(0.001)
        else:
            started.set()
            # At least 300 rounds, and on until the races were seen.
            while rounds < 30_000 and not (rounds >= 300 and overlapping >= 20 and raced >= 3):
                rounds += 1
                (floor,) = db.execute("SELECT completed FROM data").fetchone()
                entry = store.get("page")
                if entry is not None:
                    if int(entry.body) < floor:
                        errors.append(f"{os.getpid()} read {int(entry.body)} after {floor}")
                else:
                    since = store.generation()
                    (version,) = db.execute("SELECT version FROM data").fetchone()
                    time.sleep(random.random() / 1000)  # a render that takes time
                    (completed,) = db.execute("SELECT completed FROM data").fetchone()
                    stored = store.set("page", _entry(str(version).encode(), ["data"]), since)
                    if completed > version:
                        raced += 1
                        if stored:
                            errors.append(f"stored {version} after revalidation {completed}")
                (version,) = db.execute("SELECT version FROM data").fetchone()
                if version > floor:
                    overlapping += 1
    finally:
        done.set()
        store.close()
        db.close()
    queue.put((role, rounds, errors, overlapping, raced))


def test_read_your_writes_across_processes(tmp_path: Path) -> None:
    """Two OS processes sharing one SQLiteStore: a reader never sees an entry older than a
    revalidation the writer completed, and the store refuses every value rendered across one;
    the reader's reads did overlap the writer's revalidations, and its renders did see one
    complete while they ran."""
    path, data = str(tmp_path / "cache.sqlite3"), str(tmp_path / "data.sqlite3")
    SQLiteStore(path).close()
    with sqlite3.connect(data) as db:
        db.execute("CREATE TABLE data (version INTEGER, completed INTEGER)")
        db.execute("INSERT INTO data VALUES (0, 0)")
    db.close()
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    started, done = spawn.Event(), spawn.Event()
    processes = [
        spawn.Process(target=_process_worker, args=(path, data, role, started, done, queue))
        for role in ("writer", "reader")
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    queue.close()
    queue.join_thread()
    by_role = {role: rest for role, *rest in results}
    rounds, errors, overlapping, raced = by_role["reader"]
    assert [e for _, _, errors, _, _ in results for e in errors] == []
    assert overlapping >= 20 and raced >= 3, (rounds, overlapping, raced)
    assert by_role["writer"][0] > 0


# -- a store whose state is lost and begun again -----------------------------------------------


def test_redis_restarted_empty_refuses_values_from_before(redis_server: RedisServer) -> None:
    """A render that read the generation before Redis restarted without its data is never
    stored after it, whether or not revalidations have since brought the new count past or
    near the old one; a render begun after the restart is."""
    store = RedisStore(redis_server.url, prefix="restart:")
    try:
        for _ in range(3):
            store.revalidate_tag("t")
        since = store.generation()
        redis_server.kill()
        redis_server.start()
        assert not store.set("k", _entry(tags=["t"]), since)  # the count restarted at 0
        store.revalidate_tag("t")
        assert not store.set("k", _entry(tags=["t"]), since)  # 1 revalidation of t, 1 < 3
        for _ in range(5):
            store.revalidate_tag("other")
        assert not store.set("k", _entry(tags=["t"]), since)
        assert store.get("k") is None
        assert store.set("k", _entry(tags=["t"]), store.generation())
        assert store.get("k") is not None
    finally:
        store.close()


def test_redis_restarted_from_a_snapshot_refuses_values_from_before(
    redis_server: RedisServer,
) -> None:
    """A server that restarts from an older snapshot brings back an older count and the same
    keys; a value computed before the restart is refused all the same."""
    store = RedisStore(redis_server.url, prefix="snapshot:")
    try:
        store.revalidate_tag("t")
        since_saved = store.generation()
        store._redis.save()  # the snapshot holds the epoch and one revalidation
        for _ in range(4):
            store.revalidate_tag("other")
        since = store.generation()
        redis_server.kill()
        redis_server.start()
        assert split_generation(store.generation())[1] == 1  # the snapshot's count
        store.revalidate_tag("t")  # count 2, below since's 5
        assert not store.set("k", _entry(tags=["t"]), since)
        assert not store.set("k", _entry(tags=["t"]), since_saved)
        assert store.set("k", _entry(tags=["t"]), store.generation())
    finally:
        store.close()


def test_redis_restarted_from_a_snapshot_serves_nothing_a_revalidation_since_dropped(
    redis_server: RedisServer,
) -> None:
    """A server that crashes and reloads a snapshot taken before a revalidation holds again the
    entry that revalidation dropped: it is never read back, nor any entry of the snapshot."""
    store = RedisStore(redis_server.url, prefix="resurrect:")
    try:
        assert store.set("page", _entry(tags=["posts"]), store.generation())
        assert store.set("other", _entry(tags=["other"]), store.generation())
        store._redis.save()  # a periodic snapshot runs now
        store.revalidate_tag("posts")
        assert store.get("page") is None
        redis_server.kill()
        redis_server.start()
        assert store._redis.exists("resurrect:e:page")  # the snapshot brought it back
        assert store.get("page") is None
        assert store.get("other") is None  # nothing tells it from a dropped one
        assert not store._redis.exists("resurrect:e:page")  # and it is gone for good
        assert len(store) == 0
        assert store.set("page", _entry(tags=["posts"]), store.generation())
        assert store.get("page") is not None
    finally:
        store.close()


def test_redis_flushed_refuses_values_from_before(redis_url: str) -> None:
    """Emptying the store (clear(), FLUSHDB) begins a new incarnation as a restart does."""
    store = RedisStore(redis_url, prefix=f"flush{random.getrandbits(32)}:")
    try:
        store.revalidate_tag("t")
        store.revalidate_tag("t")
        since = store.generation()
        store.clear()
        store.revalidate_tag("t")
        assert not store.set("k", _entry(tags=["t"]), since)
        assert store.set("k", _entry(tags=["t"]), store.generation())
    finally:
        store.clear()
        store.close()


@pytest.mark.parametrize(
    ("mine", "other"), [("shop:", "shop:admin:"), ("app", "app2"), ("site[1]:", "site1:")]
)
def test_redis_clear_empties_its_own_prefix_only(redis_url: str, mine: str, other: str) -> None:
    """Two applications share a server with their own prefixes: clear() empties its store and
    nothing of the other's, even when the other's prefix begins with its own, or its own holds
    characters a key pattern reads as a pattern."""
    run = f"{random.getrandbits(32)}-"
    store, neighbour = (
        RedisStore(redis_url, prefix=run + mine),
        RedisStore(redis_url, prefix=run + other),
    )
    try:
        for each in (store, neighbour):
            each.revalidate_tag("t")
            assert each.set("k", _entry(tags=["t"], path="/p"), each.generation())
            assert each.acquire("lease", 30)
        store.clear()
        assert len(store) == 0 and store.get("k") is None
        own = [run + mine + name for name in ("e:k", "t:t", "p:/p", "l:lease", "gen", "epoch")]
        assert store._redis.exists(*own) == 0
        assert len(neighbour) == 1 and neighbour.get("k") is not None
        assert not neighbour.acquire("lease", 30)  # its lease is still held
        since = neighbour.generation()
        neighbour.revalidate_tag("other")
        assert neighbour.set("k2", _entry(), since)  # its incarnation went on
    finally:
        neighbour.clear()
        store.close()
        neighbour.close()


@pytest.mark.parametrize("since", [0, 3, (1 << 60) | 3])
def test_redis_refuses_a_since_it_did_not_give(redis_url: str, since: int) -> None:
    """A since without this store's incarnation (a bare count, another store's) is refused."""
    store = RedisStore(redis_url, prefix=f"foreign{random.getrandbits(32)}:")
    try:
        for _ in range(3):
            store.revalidate_tag("x")
        assert not store.set("k", _entry(), since)
        assert store.set("k", _entry(), store.generation())
    finally:
        store.clear()
        store.close()


def test_sqlite_file_made_again_refuses_values_from_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the file is made again (after a reboot) its count of revalidations restarts at 0;
    a generation read from the old file is refused by the new one, from any connection."""

    path = tmp_path / "cache.sqlite3"
    monkeypatch.setattr(sqlite_file, "boot_id", lambda: "boot-1")
    store = SQLiteStore(path)
    for _ in range(3):
        store.revalidate_tag("t")
    since = store.generation()

    monkeypatch.setattr(sqlite_file, "boot_id", lambda: "boot-2")
    rebooted = SQLiteStore(path)
    rebooted.revalidate_tag("t")  # count 1 in the new file
    store.close()  # its next connection opens the new file
    assert not store.set("k", _entry(tags=["t"]), since)
    assert not rebooted.set("k", _entry(tags=["t"]), since)
    assert rebooted.get("k") is None
    assert store.set("k", _entry(tags=["t"]), store.generation())
    assert rebooted.get("k") is not None
    store.close()
    rebooted.close()


def test_sqlite_store_opened_while_another_writes_keeps_the_file(tmp_path: Path) -> None:
    """A store opened while another connection holds a long write neither waits for it nor
    takes the busy database for a damaged one: the file and its entries stay."""
    path = tmp_path / "cache.sqlite3"
    first = SQLiteStore(path)
    first.set("k", _entry(), first.generation())
    inode = os.stat(path).st_ino
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        second = SQLiteStore(path, timeout=0.05)
        assert os.stat(path).st_ino == inode
        assert second.get("k") is not None
        second.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    first.close()


def _contending_writer(path: str, name: str, rounds: int, queue: t.Any) -> None:
    """One OS process writing to a shared SQLiteStore as fast as it can."""
    store = SQLiteStore(path)
    for n in range(rounds):
        store.revalidate_path(f"/{name}")
        since = store.generation()
        assert store.set(f"{name}:{n}", _entry(f"{name}:{n}".encode(), path=f"/{name}/{n}"), since)
    store.close()
    queue.put(name)


def test_sqlite_contending_writers_lose_no_write(tmp_path: Path) -> None:
    """Threads and processes writing to one file at once, each asking for the write lock
    again after short pauses, neither lose nor damage a write: every revalidation is counted
    and every entry reads back whole."""
    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path)
    rounds = 150
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    processes = [
        spawn.Process(target=_contending_writer, args=(str(path), f"p{i}", rounds, queue))
        for i in range(2)
    ]
    for process in processes:
        process.start()
    threads = [
        threading.Thread(target=_contending_writer, args=(str(path), f"t{i}", rounds, queue))
        for i in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = sorted(queue.get(timeout=60) for _ in range(5))
    for process in processes:
        process.join(timeout=30)
    queue.close()
    queue.join_thread()
    assert done == ["p0", "p1", "t0", "t1", "t2"]
    _, count = split_generation(store.generation())
    assert count == 5 * rounds  # each revalidation counted once
    for name in done:
        for n in range(rounds):
            entry = store.get(f"{name}:{n}")
            assert entry is not None and entry.body == f"{name}:{n}".encode()
    assert store._db().execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.close()


def test_sqlite_writer_waits_for_the_lock_then_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that finds the lock taken asks again until it is let go, and then succeeds;
    reads keep SQLite's own busy handler (its timeout) meanwhile."""
    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path, timeout=30.0)
    store.generation()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    asking = threading.Event()
    errors: list[BaseException] = []
    busy = sqlite_writes._busy

    def found_busy(error: sqlite3.OperationalError) -> bool:
        if busy(error):
            asking.set()
            return True
        return False

    monkeypatch.setattr(sqlite_writes, "_busy", found_busy)

    def write() -> None:
        try:
            store.revalidate_tag("t")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    assert asking.wait(60)  # it found the lock taken, at least once
    holder.execute("ROLLBACK")
    holder.close()
    writer.join()
    assert errors == []
    _, count = split_generation(store.generation())
    assert count == 1
    (busy_timeout,) = store._db().execute("PRAGMA busy_timeout").fetchone()
    assert busy_timeout == 30_000
    store.close()


def test_sqlite_connections_of_threads_that_ended_are_closed(tmp_path: Path) -> None:
    """A server that starts a thread per request (Werkzeug's, Django's runserver) left each
    thread's connection open, two file descriptors each, until the limit of open files; they
    are closed once another thread connects."""
    import os

    store = SQLiteStore(tmp_path / "cache.sqlite3")
    store.generation()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        thread = threading.Thread(target=store.get, args=("page:/x",))
        thread.start()
        thread.join()
    assert len(store._connections) <= 2  # this thread's, and the last one's
    assert len(os.listdir("/proc/self/fd")) <= before + 4
    # Threads not started by threading (a server's own, in C) look alive for ever to it;
    # theirs are closed as well once they end.
    import _thread

    for _ in range(20):
        ended = threading.Event()
        _thread.start_new_thread(lambda done: (store.get("page:/x"), done.set()), (ended,))
        assert ended.wait(10)
        time.sleep(0.01)  # its locals are dropped as it ends
    last = threading.Thread(target=store.get, args=("page:/x",))
    last.start()  # connecting, it closes those of the threads that ended
    last.join()
    assert len(os.listdir("/proc/self/fd")) <= before + 6
    assert store.set("k", Entry(b"v", {}), store.generation()) and store.get("k") is not None
    store.close()


def test_sqlite_threads_of_a_process_take_turns_to_write(tmp_path: Path) -> None:
    """A thread whose process is writing waits for its turn without asking SQLite for the
    lock (it asks once, when the other is done), and gives up after the store's timeout."""
    store = SQLiteStore(tmp_path / "cache.sqlite3", timeout=30.0)
    store.generation()
    holding, done = threading.Event(), threading.Event()
    asked: list[str] = []

    def hold() -> None:
        with store._transaction():
            holding.set()
            done.wait(30)

    def write() -> None:
        store._db().set_trace_callback(
            lambda sql: asked.append(sql) if sql.startswith("BEGIN") else None
        )
        store.revalidate_tag("t")

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.2)  # asking SQLite all along, it would have asked several times by now
    assert writer.is_alive() and asked == []
    done.set()
    holder.join()
    writer.join()
    assert asked == ["BEGIN IMMEDIATE"]
    assert split_generation(store.generation())[1] == 1

    impatient = SQLiteStore(tmp_path / "cache.sqlite3", timeout=0.05)
    holding.clear()
    done.clear()
    holder = threading.Thread(target=lambda: _hold_until(impatient, holding, done))
    holder.start()
    assert holding.wait(30)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            impatient.revalidate_tag("t")
    finally:
        done.set()
        holder.join()
    impatient.revalidate_tag("t")  # the turn was let go
    assert split_generation(store.generation())[1] == 2
    impatient.close()
    store.close()


class _FailingCommit:
    """A connection whose ``COMMIT`` fails, as one on a full disk would: the transaction stays
    open (SQLite keeps it after a failed commit)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args: t.Any) -> t.Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.db, name)


def test_sqlite_failed_commit_lets_go_of_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write whose commit fails raises, writes nothing, and leaves neither SQLite's write
    lock nor the process's turn taken: the next write, from another process too, goes in."""
    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path, timeout=0.5)
    before = store.generation()
    made = store._transaction

    def failing() -> t.Any:
        tx = made()
        tx.db = _FailingCommit(tx.db)  # type: ignore[assignment]
        return tx

    monkeypatch.setattr(store, "_transaction", failing)
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.revalidate_tag("t")
    monkeypatch.undo()
    assert not store._db().in_transaction
    assert store.generation() == before
    other = SQLiteStore(path, timeout=0.5)
    other.revalidate_tag("t")  # would wait for the lock, then fail, had it been kept
    store.revalidate_tag("t")
    assert split_generation(store.generation())[1] == 2
    other.close()
    store.close()


def _hold_until(store: SQLiteStore, holding: threading.Event, done: threading.Event) -> None:
    with store._transaction():
        holding.set()
        done.wait(30)


@pytest.mark.parametrize("write", ["revalidate_path", "set", "acquire", "release", "delete"])
def test_sqlite_writer_gives_up_after_its_timeout(tmp_path: Path, write: str) -> None:
    """While another connection holds the write lock for longer than the store's ``timeout``,
    each kind of write raises ``database is locked`` and leaves nothing half done."""
    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path, timeout=0.05)
    store.set("k", _entry(), store.generation())
    assert store.acquire("lease", 10)
    before = store.generation()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    calls: dict[str, t.Callable[[], object]] = {
        "revalidate_path": lambda: store.revalidate_path("/p"),
        "set": lambda: store.set("other", _entry(), before),
        "acquire": lambda: store.acquire("lease", 10),
        "release": lambda: store.release("lease"),
        "delete": lambda: store.delete("k"),
    }
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            calls[write]()
        assert not store._db().in_transaction
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.generation() == before
    assert store.get("k") is not None and store.get("other") is None
    store.close()


def test_sqlite_storing_a_key_lets_go_of_its_lease(tmp_path: Path) -> None:
    """set() ends the render that held the key's lease, stored or refused: the lease is free
    again, and release() then needs no write (it succeeds while another connection holds the
    write lock); other keys' leases stay."""
    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path, timeout=0.05)
    since = store.generation()
    assert store.acquire("k", 30) and store.acquire("refused", 30) and store.acquire("other", 30)
    assert store.set("k", _entry(), since)
    store.revalidate_path("/p")
    assert not store.set("refused", _entry(), since)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        store.release("k")
        store.release("refused")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.acquire("k", 30) and store.acquire("refused", 30)
    assert not store.acquire("other", 30)
    store.close()


def test_sqlite_damaged_file_is_made_again_without_a_boot_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the boot cannot be known, a file that is not a database is still made again."""

    monkeypatch.setattr(sqlite_file, "boot_id", lambda: None)
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"not a database" * 100)
    store = SQLiteStore(path)
    assert store.set("k", _entry(), store.generation())
    assert store.get("k") is not None
    store.close()


def test_sqlite_file_of_an_earlier_version_gets_an_incarnation(tmp_path: Path) -> None:
    """A file made before files had an incarnation is kept, and given one."""
    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path)
    store.set("k", _entry(), store.generation())
    store._db().execute("DELETE FROM settings WHERE name = 'incarnation'")
    store.close()
    again = SQLiteStore(path)
    assert again.get("k") is not None
    incarnation, _ = split_generation(again.generation())
    assert incarnation != 0
    again.close()


# -- a Redis server that does not answer ----------------------------------------------------------


def test_redis_store_timeouts_default_and_options(redis_url: str) -> None:
    """Commands wait half a second by default; keyword arguments change that, and options in
    the URL's query win over both."""

    def timeouts(store: t.Any) -> tuple[float, float]:
        options = store._redis.connection_pool.connection_kwargs
        store.close()
        return options["socket_timeout"], options["socket_connect_timeout"]

    assert timeouts(RedisStore(redis_url)) == (0.5, 0.5)
    assert timeouts(RedisStore(redis_url, socket_timeout=2, socket_connect_timeout=1)) == (2, 1)
    assert timeouts(RedisStore(redis_url + "?socket_timeout=5", socket_timeout=2)) == (5.0, 0.5)


def test_a_paused_redis_fails_fast(redis_server: RedisServer) -> None:
    """While the server is paused (SIGSTOP), each command fails within about its timeout
    instead of waiting for the server to come back; once it is back, commands work again."""
    import redis

    store = RedisStore(redis_server.url, prefix="paused:")
    store.set("k", _entry(), store.generation())
    # Should a command wait for the server, it comes back after 10 s and the test fails.
    wake = threading.Timer(10, redis_server.resume)
    try:
        redis_server.pause()
        wake.start()
        calls: list[t.Callable[[], object]] = [
            lambda: store.get("k"),
            store.generation,
            lambda: store.revalidate_tag("t"),
            lambda: store.set("k", _entry(), 0),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
                call()
            assert time.monotonic() - started < 2
    finally:
        wake.cancel()
        redis_server.resume()
    assert store.get("k") is not None
    store.close()


@pytest.mark.parametrize("how", ["deleted", "replaced", "damaged"])
def test_sqlite_a_process_moves_to_the_file_another_made_at_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """Workers whose file was deleted under them keep sharing it; once a worker started since
    made another at the path (or the file was replaced, even by one that is not a database),
    they move to it within _CHECK_FILE_EVERY, with a warning: the revalidations made by either
    side reach the other, where each kept its own file for good. Every thread moves."""
    monkeypatch.setattr(sqlite_file, "_CHECK_FILE_EVERY", 0.2)
    path = tmp_path / "cache.sqlite3"
    old, other = SQLiteStore(path), SQLiteStore(path)
    old.set("page", _entry(b"before", tags=["t"]), old.generation())

    def remove() -> None:
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"cache.sqlite3{suffix}").unlink(missing_ok=True)

    remove()
    time.sleep(0.25)
    assert old.get("page") is not None  # still the file both have open
    other.revalidate_tag("t")
    assert old.get("page") is None
    if how == "replaced":
        sqlite3.connect(path).close()  # another program's file at the path
        new = SQLiteStore(path)
    elif how == "damaged":
        path.write_bytes(b"not a database " * 100)
        new = old
    else:
        new = SQLiteStore(path)  # a worker started since
    time.sleep(0.25)
    seen: list[object] = []
    with caplog.at_level("WARNING", logger="actionkit"):
        thread = threading.Thread(target=lambda: seen.append(old.get("page")))
        thread.start()
        thread.join()
        new.set("page", _entry(b"after", tags=["t"]), new.generation())
        found = old.get("page")
    assert seen == [None] and found is not None and found.body == b"after"
    assert caplog.text.count("deleted or replaced while in use") == 1
    old.revalidate_tag("t")
    assert new.get("page") is None
    time.sleep(0.25)
    assert other.get("page") is None  # it moved too
    old.set("again", _entry(b"x"), old.generation())
    assert new.get("again") is not None and other.get("again") is not None
    for store in {id(s): s for s in (old, other, new)}.values():
        store.close()


def test_sqlite_a_write_goes_to_the_file_made_at_the_path_a_moment_ago(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A process that looked at its path a moment ago and writes once another process made a
    file there (the old one deleted) writes to the new file: its revalidation reaches every
    process, where it went to the deleted file and was lost for good."""
    path = tmp_path / "cache.sqlite3"
    old = SQLiteStore(path)
    assert old.get("warm") is None  # it looked at the path just now
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"cache.sqlite3{suffix}").unlink(missing_ok=True)
    new = SQLiteStore(path)  # a worker started since
    new.set("page", _entry(b"old list", tags=["posts"]), new.generation())
    with caplog.at_level("WARNING", logger="actionkit"):
        old.revalidate_tag("posts")
    assert new.get("page") is None
    assert "deleted or replaced while in use" in caplog.text
    old.close()
    new.close()


def test_sqlite_a_file_made_at_the_path_while_its_own_is_made_again_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread making the file again (it was damaged) under the lock file, which finds a file
    another worker's first connection made at the path meanwhile, takes it: looking at the
    path from there, it moved again and asked for the lock it holds, and hung for good."""
    import types

    path = tmp_path / "cache.sqlite3"
    store = SQLiteStore(path)
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"cache.sqlite3{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"not a database " * 100)

    def unlink(name: str) -> None:
        os.unlink(name)
        if name == str(path):  # another worker connects now, without the lock
            sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchone()

    patched = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if k[0] != "_"})
    patched.unlink = unlink
    monkeypatch.setattr(sqlite_file, "os", patched)
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(store.get("k")), daemon=True)
    thread.start()
    thread.join(10)
    assert done == [None]
    monkeypatch.undo()
    store.set("k", _entry(b"one"), store.generation())
    assert SQLiteStore(path).get("k") is not None
    store.close()


def test_sqlite_close_lets_go_of_the_index_maps_of_every_file_it_used(tmp_path: Path) -> None:
    """close() lets go of the WAL index map of each file the store used (a new file, made
    after the store looked at the path, and one moved to), not only the last one."""
    from actionkit.stores.sqlite_index import _wal_index_maps

    before = len(_wal_index_maps._maps)
    store = SQLiteStore(tmp_path / "cache.sqlite3")
    store.get("k")
    store.close()
    assert len(_wal_index_maps._maps) == before


def test_sqlite_a_file_that_cannot_be_opened_does_not_stop_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store whose file cannot be opened when the worker starts (a read-only or full file
    system) is made all the same, with a warning: it fails each use, which the page cache
    serves uncached, until the file can be opened; then it works."""
    blocker = tmp_path / "dir"
    blocker.write_text("a file where the directory should be")
    with caplog.at_level("WARNING", logger="actionkit"):
        store = SQLiteStore(blocker / "cache.sqlite3")
    assert "cannot be opened yet" in caplog.text
    with pytest.raises(OSError):
        store.get("k")
    blocker.unlink()
    blocker.mkdir()
    store.set("k", _entry(b"one"), store.generation())
    assert store.get("k") is not None
    store.close()
