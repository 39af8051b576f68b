from __future__ import annotations

import logging
import random
import sqlite3
import threading
import typing as t
from pathlib import Path

import pytest
from werkzeug.test import Client

from actionkit import (
    ActionMiddleware,
    Registry,
    cache_life,
    cache_tag,
    cached,
    revalidate_path,
    revalidate_tag,
)
from actionkit.cache import PageCache, default_cache
from actionkit.stores import MemoryStore, RedisStore, SQLiteStore, Store, default_store
from actionkit.testing import ActionClient


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[Store]:
    """An empty store of each kind."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        made: t.Any = SQLiteStore(tmp_path / "cache.sqlite3")
    else:
        made = RedisStore(
            request.getfixturevalue("redis_url"), prefix=f"c{random.getrandbits(32)}:"
        )
    yield made
    made.clear()
    made.close()


class Site:
    """A WSGI app whose pages say how often they were rendered, wrapped by the middleware."""

    def __init__(self, store: Store, **options: t.Any) -> None:
        self.renders: dict[str, int] = {}
        self.data = {"version": 1}
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.clock = Clock()
        self.cache = PageCache(store, clock=self.clock, wait=5)
        self.registry = Registry()
        self.app = ActionMiddleware(self.page, cache=self.cache, registry=self.registry, **options)
        self.client = ActionClient(self.app)

    def page(self, environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        path = environ["PATH_INFO"]
        query = environ.get("QUERY_STRING", "")
        count = self.renders[path] = self.renders.get(path, 0) + 1
        version = self.data["version"]  # the data is read when the render starts
        headers = [("Content-Type", "text/html")]
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if path.startswith("/tagged"):
            cache_tag("posts", f"page:{path}")
        elif path == "/life":
            cache_life(60, stale=30)
        elif path == "/nostale":
            cache_life(60, stale=0)
        elif path == "/header":
            headers += [("Cache-Control", "public, s-maxage=60"), ("Cache-Tag", "h1, h2")]
        elif path == "/cookie":
            cache_tag("posts")
            headers.append(("Set-Cookie", "a=b"))
        elif path == "/vary":
            cache_tag("posts")
            headers.append(("Vary", environ.get("HTTP_X_VARY_ON", "Accept-Language")))
        elif path == "/private":
            cache_tag("posts")
            headers.append(("Cache-Control", "private"))
        elif path == "/missing":
            cache_tag("posts")
            start_response("404 Not Found", headers)
            return [b"missing"]
        body = f"{path}?{query} v{version} render {count}"
        start_response("200 OK", headers)
        return [body.encode()]

    def get(self, path: str, **kw: t.Any) -> tuple[str, str]:
        with self.client.get(path, **kw) as response:
            return response.headers.get("Actionkit-Cache", ""), response.text


def test_opted_in_page_is_stored_and_served(store: Store) -> None:
    """A page calling cache_tag() is a MISS once, then a HIT without calling the app."""
    site = Site(store)
    assert site.get("/tagged") == ("MISS", "/tagged? v1 render 1")
    assert site.get("/tagged") == ("HIT", "/tagged? v1 render 1")
    response = site.client.head("/tagged")
    assert response.headers["Actionkit-Cache"] == "HIT" and response.data == b""
    assert response.headers["Content-Length"] == str(len("/tagged? v1 render 1"))
    assert site.renders["/tagged"] == 1


def test_pages_that_did_not_opt_in_stream_through(store: Store) -> None:
    """Without cache_tag/cache_life/s-maxage, every request renders: BYPASS."""
    site = Site(store)
    assert site.get("/plain") == ("BYPASS", "/plain? v1 render 1")
    assert site.get("/plain") == ("BYPASS", "/plain? v1 render 2")


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        pytest.param("/cookie", {}, id="set-cookie"),
        pytest.param("/private", {}, id="private"),
        pytest.param("/missing", {}, id="not-200"),
        pytest.param("/tagged", {"headers": {"Authorization": "Basic eDp5"}}, id="authorization"),
        pytest.param("/vary", {"headers": {"X-Vary-On": "*"}}, id="vary-star"),
    ],
)
def test_never_stored(store: Store, path: str, kwargs: dict[str, t.Any]) -> None:
    """Set-Cookie, private, non-200, Authorization and Vary: * are never stored."""
    site = Site(store)
    site.get(path, **kwargs)
    site.get(path, **kwargs)
    assert site.renders[path] == 2


def test_s_maxage_and_cache_tag_header(store: Store) -> None:
    """s-maxage opts in; Cache-Tag tags the entry and is removed from the answer."""
    site = Site(store)
    with site.client.get("/header") as response:
        assert "Cache-Tag" not in response.headers and response.text
    assert site.get("/header")[0] == "HIT"
    revalidate_tag_in(site, "h2")
    assert site.get("/header")[0] == "MISS"


def revalidate_tag_in(site: Site, tag: str) -> None:
    site.cache.revalidate_tag(tag)


def test_query_is_part_of_the_key_and_path_revalidation_drops_all(store: Store) -> None:
    """Each query is its own entry; revalidate_path drops the path with every query."""
    site = Site(store)
    site.get("/tagged?a=1")
    site.get("/tagged?a=2")
    assert site.get("/tagged?a=1")[0] == "HIT" and site.get("/tagged?a=2")[0] == "HIT"
    site.cache.revalidate_path("/tagged")
    assert site.get("/tagged?a=1")[0] == "MISS" and site.get("/tagged?a=2")[0] == "MISS"


def test_layout_revalidation(store: Store) -> None:
    """type='layout' drops the path and every path below it, not its siblings."""
    site = Site(store)
    for path in ("/tagged", "/tagged/1", "/tagged/1/edit", "/taggedx"):
        site.get(path)
    site.cache.revalidate_path("/tagged", "layout")
    assert [site.get(p)[0] for p in ("/tagged", "/tagged/1", "/tagged/1/edit", "/taggedx")] == [
        "MISS",
        "MISS",
        "MISS",
        "HIT",
    ]


def test_vary_is_part_of_the_key(store: Store) -> None:
    """A page with Vary: Accept-Language is stored once per language."""
    site = Site(store)
    en, fr = {"Accept-Language": "en"}, {"Accept-Language": "fr"}
    assert site.get("/vary", headers=en)[0] == "MISS"
    assert site.get("/vary", headers=fr)[0] == "MISS"
    assert site.get("/vary", headers=en) == ("HIT", "/vary? v1 render 1")
    assert site.get("/vary", headers=fr) == ("HIT", "/vary? v1 render 2")
    site.cache.revalidate_tag("posts")
    assert site.get("/vary", headers=en)[0] == "MISS"


def test_revalidate_tag_from_an_action_is_read_at_once(store: Store) -> None:
    """An action's revalidate_tag makes the very next GET render the new data."""
    site = Site(store)

    @site.registry.action
    def bump(form: t.Any) -> None:
        site.data["version"] += 1
        revalidate_tag("posts")

    assert site.get("/tagged")[1].startswith("/tagged? v1")
    response = site.client.submit(bump, {}, path="/other")
    assert response.status_code == 200
    assert site.get("/tagged") == ("MISS", "/tagged? v2 render 2")


def test_js_rerender_uses_the_cache(store: Store) -> None:
    """After a JS call the page in the answer comes from the cache when not invalidated."""
    site = Site(store)

    @site.registry.action
    def touch_other() -> None:
        revalidate_path("/elsewhere")

    @site.registry.action
    def touch_page() -> None:
        site.data["version"] += 1
        revalidate_path("/tagged")

    site.get("/tagged")
    answer = site.client.call(touch_other, page="/tagged").json
    assert answer["html"] == "/tagged? v1 render 1" and site.renders["/tagged"] == 1
    answer = site.client.call(touch_page, page="/tagged").json
    assert answer["html"] == "/tagged? v2 render 2"
    assert site.get("/tagged") == ("HIT", "/tagged? v2 render 2")


def test_form_rerender_is_never_read_nor_stored(store: Store) -> None:
    """The page re-rendered with action_state() bypasses the cache both ways."""
    site = Site(store)

    @site.registry.action
    def noop(form: t.Any) -> None:
        pass

    site.get("/tagged")
    response = site.client.submit(noop, {}, path="/tagged")
    assert response.text == "/tagged? v1 render 2"  # rendered, not the cached render 1
    assert site.get("/tagged") == ("HIT", "/tagged? v1 render 1")  # and not stored


def test_render_started_before_revalidation_is_not_stored(store: Store) -> None:
    """A render that began before a revalidation of its tags is served but not stored."""
    site = Site(store)
    site.gate = threading.Event()
    result: list[tuple[str, str]] = []
    thread = threading.Thread(target=lambda: result.append(site.get("/tagged")))
    thread.start()
    assert site.started.wait(5)
    site.data["version"] = 2
    site.cache.revalidate_tag("posts")
    site.gate.set()
    thread.join()
    site.gate = None
    assert result == [("MISS", "/tagged? v1 render 1")]
    assert site.get("/tagged") == ("MISS", "/tagged? v2 render 2")


def test_stale_while_revalidate(store: Store) -> None:
    """Past its lifetime a page is regenerated by one request while others get it STALE."""
    site = Site(store)
    assert site.get("/life") == ("MISS", "/life? v1 render 1")
    site.clock.now += 30
    assert site.get("/life")[0] == "HIT"
    site.clock.now += 31  # past the 60 s lifetime, inside the 30 s of staleness
    key = "page:localhost/life?"
    assert site.cache.store.acquire(key, 30)  # another request is regenerating it
    assert site.get("/life") == ("STALE", "/life? v1 render 1")
    site.cache.store.release(key)
    assert site.get("/life") == ("MISS", "/life? v1 render 2")  # this one regenerates
    assert site.get("/life") == ("HIT", "/life? v1 render 2")
    site.clock.now += 1000  # past staleness too: rendered again
    assert site.get("/life") == ("MISS", "/life? v1 render 3")


def test_stale_zero_readers_wait_for_the_one_render(store: Store) -> None:
    """With stale=0 concurrent readers wait for the regenerating request instead of
    rendering themselves."""
    site = Site(store)
    site.get("/nostale")
    site.clock.now += 61
    site.gate = threading.Event()
    site.started.clear()
    results: list[tuple[str, str]] = []
    threads = [threading.Thread(target=lambda: results.append(site.get("/nostale")))]
    threads[0].start()
    assert site.started.wait(5)  # the first reader holds the lease and renders
    for _ in range(3):
        threads.append(threading.Thread(target=lambda: results.append(site.get("/nostale"))))
        threads[-1].start()
    site.gate.set()
    for thread in threads:
        thread.join()
    assert site.renders["/nostale"] == 2
    assert sorted(results) == [("HIT", "/nostale? v1 render 2")] * 3 + [
        ("MISS", "/nostale? v1 render 2")
    ]


def test_after_callbacks_still_run_on_cached_pages(store: Store) -> None:
    """A page that registers after() and is stored still runs its callback after sending."""
    from actionkit import after

    ran: list[str] = []

    def app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        cache_tag("x")
        after(lambda: ran.append("after"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"page"]

    client = Client(ActionMiddleware(app, cache=store))
    response = client.get("/")
    assert response.headers["Actionkit-Cache"] == "MISS" and response.data == b"page"
    response.close()
    assert ran == ["after"]
    assert client.get("/").headers["Actionkit-Cache"] == "HIT"


def test_max_bytes_bounds_the_page_cache() -> None:
    """A small store holds only the most recent pages."""
    site = Site(MemoryStore(max_bytes=1000))
    for n in range(20):
        site.get(f"/tagged/{n}")
    assert len(site.cache.store) < 20  # type: ignore[arg-type]
    assert site.get("/tagged/19")[0] == "HIT" and site.get("/tagged/0")[0] == "MISS"


class BrokenStore(MemoryStore):
    """A store whose disk is full."""

    def get(self, key: str) -> t.Any:
        raise sqlite3.OperationalError("database or disk is full")

    def set(self, key: str, entry: t.Any, since: int) -> bool:
        raise OSError(28, "No space left on device")

    def generation(self) -> int:
        raise sqlite3.OperationalError("database is locked")


def test_failing_store_serves_uncached_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    """A store that raises never fails the request; the error is logged once."""
    site = Site(BrokenStore())
    with caplog.at_level(logging.ERROR, logger="actionkit"):
        assert site.get("/tagged")[1] == "/tagged? v1 render 1"
        assert site.get("/tagged")[1] == "/tagged? v1 render 2"
    assert caplog.text.count("failed; serving uncached") == 1


# -- the data cache -------------------------------------------------------------------------------


def test_cached_memoizes_by_arguments_and_tags(store: Store) -> None:
    """@cached keeps a value per arguments; revalidate_tag drops one entry or all."""
    calls: list[int] = []
    cache = PageCache(store)

    @cached(tags=["posts", "post:{0}"])
    def get_post(post_id: int) -> dict[str, t.Any]:
        calls.append(post_id)
        return {"id": post_id, "n": len(calls)}

    from actionkit import context
    from actionkit.context import RequestContext

    token = context.push(RequestContext({}, cache=cache))
    try:
        assert get_post(1) == {"id": 1, "n": 1}
        assert get_post(1) == {"id": 1, "n": 1}
        assert get_post(2) == {"id": 2, "n": 2}
        revalidate_tag("post:1")
        assert get_post(1) == {"id": 1, "n": 3}
        assert get_post(2) == {"id": 2, "n": 2}
        revalidate_tag("posts")
        assert get_post(2) == {"id": 2, "n": 4}
        assert get_post.uncached(5) == {"id": 5, "n": 5}  # type: ignore[attr-defined]
    finally:
        context.pop(token)


def test_cached_ttl_and_callable_tags() -> None:
    """ttl expires a value by the cache's clock; tags may be computed from the arguments."""
    clock = Clock()
    cache = PageCache(MemoryStore(), clock=clock)
    calls: list[str] = []

    @cached(tags=lambda user, **kw: [f"user:{user}"], ttl=10)
    def profile(user: str, lang: str = "en") -> str:
        calls.append(user)
        return f"{user}/{lang}/{len(calls)}"

    from actionkit import context
    from actionkit.context import RequestContext

    token = context.push(RequestContext({}, cache=cache))
    try:
        assert profile("ada", lang="fr") == "ada/fr/1" == profile("ada", lang="fr")
        clock.now += 11
        assert profile("ada", lang="fr") == "ada/fr/2"
        cache.revalidate_tag("user:ada")
        assert profile("ada", lang="fr") == "ada/fr/3"
    finally:
        context.pop(token)


def test_cached_refuses_what_is_not_json() -> None:
    """Arguments and results must be JSON values; the error names the function and value."""

    @cached()
    def echo(value: t.Any) -> t.Any:
        return value

    with pytest.raises(TypeError, match="echo takes JSON values"):
        echo(object())
    with pytest.raises(TypeError, match="must return a JSON value"):
        echo.uncached  # noqa: B018
        cached()(lambda: {1, 2})()
    with pytest.raises(ValueError, match="ttl"):
        cached(ttl=-1)


def test_revalidation_outside_requests_uses_the_default_store() -> None:
    """revalidate_* outside a request reach the process-wide store of cache=None middlewares."""
    assert default_cache().store is default_store()
    site_app = ActionMiddleware(lambda e, s: (cache_tag("dflt"), s("200 OK", []), [b"x"])[2])
    assert site_app.cache is not None and site_app.cache.store is default_store()
    client = Client(site_app)

    def status() -> str:
        with client.get("/dflt-page") as response:
            return response.headers["Actionkit-Cache"] + response.text

    assert status() == "MISSx"
    assert status() == "HITx"
    revalidate_tag("dflt")
    assert status() == "MISSx"
    revalidate_path("/dflt-page")
    assert status() == "MISSx"
    with pytest.raises(ValueError, match="'page' or 'layout'"):
        revalidate_path("/x", "tree")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="starting with '/'"):
        revalidate_path("x")
    with pytest.raises(ValueError, match="non-empty"):
        revalidate_tag("")
