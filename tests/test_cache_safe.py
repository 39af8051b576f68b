from __future__ import annotations

import logging
import threading
import time
import typing as t

import pytest

from actionkit.cache.safe import SafeStore
from actionkit.stores import Entry, MemoryStore, RedisStore

from .conftest import RedisServer


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FlakyStore(MemoryStore):
    """A store that can be switched off (every call raises), recording what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        #: Each call is carried out, then raises (its answer lost on the way back).
        self.mute = False
        self.calls: list[tuple[str, str]] = []

    def _check(self, name: str, arg: str = "") -> None:
        self.calls.append((name, arg))
        if self.down:
            raise ConnectionError("the store is away")

    def get(self, key: str) -> Entry | None:
        self._check("get", key)
        return super().get(key)

    def set(self, key: str, entry: Entry, since: int) -> bool:
        self._check("set", key)
        return super().set(key, entry, since)

    def generation(self) -> int:
        self._check("generation")
        return super().generation()

    def acquire(self, key: str, ttl: float) -> bool:
        self._check("acquire", key)
        taken = super().acquire(key, ttl)
        if self.mute:
            raise TimeoutError("no answer from the store")
        return taken

    def release(self, key: str) -> None:
        self._check("release", key)
        super().release(key)

    def revalidate_tag(self, tag: str) -> None:
        self._check("revalidate_tag", tag)
        super().revalidate_tag(tag)

    def revalidate_path(self, path: str, layout: bool = False) -> None:
        self._check("revalidate_path", path)
        super().revalidate_path(path, layout)

    def clear(self) -> None:
        self._check("clear")
        super().clear()


def _entry(tags: t.Iterable[str] = ("t",), path: str = "/p") -> Entry:
    return Entry(b"page", {"status": "200 OK"}, tags=tags, path=path)


def _settled(safe: SafeStore) -> None:
    """Wait for the thread that delivers waiting revalidations to end (it ends once none
    wait and the store is up)."""
    thread = safe._health.thread
    if thread is not None:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_revalidations_wait_for_the_store_and_reads_bypass_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the store is down, a revalidation returns without raising and is kept; reads and
    writes skip the store (served fresh, never stale); the kept revalidations are delivered,
    in order, before the process reads from the store again; going and coming back are
    logged."""
    store, clock = FlakyStore(), Clock()
    safe = SafeStore(store, clock=clock)
    store.set("k", _entry(tags=["t"], path="/p"), store.generation())
    assert safe.get("k") is not None

    store.down = True
    with caplog.at_level(logging.INFO, logger="actionkit"):
        safe.revalidate_tag("t")  # fails at the store: kept, no error
        safe.revalidate_path("/p", False)
        safe.revalidate_tag("other")
        safe.revalidate_tag("t")  # asked again: kept once, in its latest place
        assert safe.pending == [("path", "/p", False), ("tag", "other", False), ("tag", "t", False)]
        store.calls.clear()
        assert safe.get("k") is None
        assert safe.generation() == -1
        assert safe.set("k", _entry(), 0) is False
        assert safe.acquire("k", 30) is True
        assert store.calls == []  # none of them waited on the store

        store.down = False
        assert safe.get("k") is None  # not due for a try yet
        assert store.calls == []
        clock.now += SafeStore.retry_every
        assert safe.get("k") is None  # back, delivered, settling: still not read
        _settled(safe)
        assert safe.pending == []
        assert [call for call in store.calls if call[0].startswith("revalidate")] == [
            ("revalidate_path", "/p"),
            ("revalidate_tag", "other"),
            ("revalidate_tag", "t"),
        ]
        assert store.get("k") is None  # the stale page is gone from the store
        store.set("k", _entry(), store.generation())
        assert safe.get("k") is None  # settling
        clock.now += SafeStore.settle
        assert safe.get("k") is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 1 and "failed; serving uncached" in warnings[0].getMessage()
    assert len(infos) == 1 and "answers again; 3 waiting" in infos[0].getMessage()


def test_a_store_that_stays_down_is_tried_now_and_then() -> None:
    """A down store is tried at most every retry_every seconds, by one caller; a failed try
    keeps the revalidations."""
    store, clock = FlakyStore(), Clock()
    safe = SafeStore(store, clock=clock)
    store.down = True
    safe.revalidate_tag("t")
    for _ in range(3):
        clock.now += SafeStore.retry_every
        store.calls.clear()
        for _ in range(5):
            assert safe.get("k") is None
        assert store.calls == [("generation", "")]  # one try, the others bypass
    assert safe.pending == [("tag", "t", False)]
    store.down = False
    clock.now += SafeStore.retry_every
    safe.get("k")
    _settled(safe)
    assert safe.pending == []


def test_waiting_revalidations_go_out_without_requests() -> None:
    """Kept revalidations are delivered by a thread once the store answers, even when no
    request comes to try it."""
    store = FlakyStore()
    safe = SafeStore(store)  # the real clock: the thread tries every retry_every seconds
    store.down = True
    safe.revalidate_tag("t")
    store.down = False
    _settled(safe)
    assert safe.pending == [] and safe.up
    assert ("revalidate_tag", "t") in store.calls


def test_a_revalidation_asked_again_while_delivered_goes_out_again() -> None:
    """A revalidation requested again while its delivery is under way is delivered once more
    (a render may have read the data between the first delivery and the new write)."""
    delivering, proceed = threading.Event(), threading.Event()

    class SlowStore(FlakyStore):
        def revalidate_tag(self, tag: str) -> None:
            if not self.down and not proceed.is_set():
                delivering.set()
                assert proceed.wait(10)
            super().revalidate_tag(tag)

    store, clock = SlowStore(), Clock()
    safe = SafeStore(store, clock=clock)
    store.down = True
    safe.revalidate_tag("t")
    store.down = False
    clock.now += SafeStore.retry_every
    delivery = threading.Thread(target=safe.get, args=("k",))
    delivery.start()
    assert delivering.wait(10)
    safe.revalidate_tag("t")  # still down for this process until every one is delivered
    proceed.set()
    delivery.join(10)
    _settled(safe)
    assert store.calls.count(("revalidate_tag", "t")) == 3  # the failed one and two deliveries
    assert safe.pending == []


def test_too_many_waiting_revalidations_clear_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past max_pending waiting revalidations, the store is cleared when it is back instead."""
    monkeypatch.setattr(SafeStore, "max_pending", 3)
    store, clock = FlakyStore(), Clock()
    safe = SafeStore(store, clock=clock)
    store.down = True
    for n in range(5):
        safe.revalidate_tag(f"t{n}")
    assert safe.pending == [("clear", "", False)]
    store.down = False
    clock.now += SafeStore.retry_every
    safe.get("k")
    _settled(safe)
    assert ("clear", "") in store.calls and safe.pending == []


def test_wrappers_of_one_store_share_its_state() -> None:
    """Every SafeStore of one store object in a process sees it down, and delivers the same
    waiting revalidations."""
    store, clock = FlakyStore(), Clock()
    first, second = SafeStore(store, clock=clock), SafeStore(store, clock=clock)
    store.down = True
    first.revalidate_tag("t")
    assert not second.up and second.pending == [("tag", "t", False)]
    store.down = False
    clock.now += SafeStore.retry_every
    assert second.get("k") is None
    _settled(first)
    assert first.pending == [] and first.up


def test_leases_an_outage_left_in_the_store_are_let_go_when_it_is_back() -> None:
    """A lease whose release was skipped while the store was down, or whose acquire was
    carried out without its answer arriving, is let go before the store is used again;
    otherwise every other process's miss of that page would wait for a render that is over,
    until the lease ran out."""
    store, clock = FlakyStore(), Clock()
    safe = SafeStore(store, clock=clock)
    assert safe.acquire("rendered", 30) is True  # a render holds it...
    store.mute = True
    assert safe.acquire("unanswered", 30) is True  # taken, but this process cannot know it
    assert not safe.up
    store.mute = False
    store.down = True
    safe.release("rendered")  # ...and ends while the store is down
    store.down = False
    assert not MemoryStore.acquire(store, "rendered", 30)  # both still held in the store
    assert not MemoryStore.acquire(store, "unanswered", 30)
    assert safe.generation() == -1  # not due for a try yet
    clock.now += SafeStore.retry_every
    _settled(safe)  # tried by the thread that waits for the store, without any request
    assert safe.up
    assert ("release", "rendered") in store.calls and ("release", "unanswered") in store.calls
    assert MemoryStore.acquire(store, "rendered", 30)  # free for another process's render
    assert MemoryStore.acquire(store, "unanswered", 30)


def test_only_leases_taken_in_the_store_are_let_go_in_it() -> None:
    """A lease granted while the store is down (the request renders by itself) is never let go
    in the store: an outage does not pile up releases to send, and one let go once the store
    is back does not end another process's lease of the key."""
    store, clock = FlakyStore(), Clock()
    safe = SafeStore(store, clock=clock)
    store.down = True
    safe.revalidate_tag("t")  # found down
    for n in range(100):
        assert safe.acquire(f"page{n}", 30) is True
        safe.release(f"page{n}")
    assert safe.acquire("late", 30) is True  # a render still under way when the store is back
    store.down = False
    clock.now += SafeStore.retry_every
    _settled(safe)
    assert safe.up
    assert [call for call in store.calls if call[0] in {"acquire", "release"}] == []
    assert MemoryStore.acquire(store, "late", 30)  # another process's render of it
    safe.release("late")
    assert not MemoryStore.acquire(store, "late", 30)  # still that render's


def test_a_lease_taken_as_redis_pauses_is_let_go_when_it_is_back(
    redis_server: RedisServer,
) -> None:
    """Redis paused with a lease's ``SET`` on its way carries it out once it resumes, after
    the client gave up waiting for the answer: the process lets it go before using the store
    again."""
    store = RedisStore(redis_server.url, prefix="lease:")
    clock = Clock()
    safe = SafeStore(store, clock=clock)
    try:
        assert safe.generation() != -1  # a connection in the pool, on which the SET goes out
        redis_server.pause()
        assert safe.acquire("k", 30) is True  # no answer: rendered without the store
        assert not safe.up
        redis_server.resume()
        deadline = time.monotonic() + 5
        while not store._redis.exists("lease:l:k"):
            assert time.monotonic() < deadline, "the paused SET never ran"
            time.sleep(0.01)
        clock.now += SafeStore.retry_every
        _settled(safe)
        assert safe.up
        assert store.acquire("k", 30)  # the lease the outage left is gone
    finally:
        redis_server.resume()
        store.close()


def test_a_paused_redis_keeps_revalidations_and_fails_nothing(redis_server: RedisServer) -> None:
    """With Redis paused, a revalidation returns within about the store's timeout instead of
    raising, every read bypasses the store at once, and the revalidation reaches Redis when
    it is back."""
    store = RedisStore(redis_server.url, prefix="safe:")
    clock = Clock()
    safe = SafeStore(store, clock=clock)
    try:
        store.set("k", _entry(tags=["t"]), store.generation())
        assert safe.get("k") is not None
        redis_server.pause()
        started = time.monotonic()
        safe.revalidate_tag("t")
        assert time.monotonic() - started < 2
        started = time.monotonic()
        assert safe.get("k") is None and safe.generation() == -1
        assert time.monotonic() - started < 0.1  # bypassed, not waited for
        redis_server.resume()
        clock.now += SafeStore.retry_every
        assert safe.get("k") is None
        _settled(safe)
        assert store.get("k") is None  # delivered
    finally:
        redis_server.resume()
        store.close()


def test_settling_lasts_whoever_else_uses_the_store() -> None:
    """A store back up is not read for `settle` seconds, even when a writer that found it
    down a moment before (another thread) uses it meanwhile."""
    store, clock = FlakyStore(), Clock()
    safe = SafeStore(store, clock=clock)
    store.set("k", _entry(), store.generation())
    store.down = True
    safe.revalidate_tag("other")
    store.down = False
    clock.now += SafeStore.retry_every
    assert safe.get("k") is None  # back, settling
    _settled(safe)
    assert safe._usable()  # what generation() of a thread that saw it down just before does
    assert safe.get("k") is None
    clock.now += SafeStore.settle
    assert safe.get("k") is not None
