from __future__ import annotations

import functools
import logging
import random
import sqlite3
import threading
import time
import typing as t
from pathlib import Path

import pytest
from werkzeug.http import is_resource_modified
from werkzeug.test import Client, EnvironBuilder

from actionkit import (
    ActionMiddleware,
    Registry,
    cache_life,
    cache_tag,
    cached,
    cookies,
    revalidate_path,
    revalidate_tag,
)
from actionkit.cache import PageCache, folding, policy
from actionkit.stores import MemoryStore, RedisStore, SQLiteStore, Store
from actionkit.testing import ActionClient


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _patient_folds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The renders after actions that these tests hold at a gate keep their action's
    revalidations as long as they are held (the watch that sends them sooner is tested on its
    own: test_the_revalidations_of_an_action_whose_page_renders_long_are_sent_on_their_own)."""
    monkeypatch.setattr(folding, "FOLD_PATIENCE", 600.0)


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
        elif path == "/greeting":
            cache_tag("posts")
            query = f"hello {cookies().get('name', 'stranger')}"
            if environ.get("HTTP_X_VARY_ON"):
                headers.append(("Vary", environ["HTTP_X_VARY_ON"]))
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


def _conditional_page(environ: t.Any, start_response: t.Any) -> list[bytes]:
    """A page that answers conditional requests itself, as Flask's make_conditional does."""
    cache_tag("posts")
    etag, modified = '"v1"', "Tue, 14 Nov 2023 22:13:20 GMT"
    if environ["PATH_INFO"] == "/weak":
        etag = 'W/"v1"'
    elif environ["PATH_INFO"] == "/dated":
        etag = None
    if not is_resource_modified(environ, etag, last_modified=modified):
        start_response("304 Not Modified", [("ETag", str(etag))])
        return []
    headers = [("Content-Type", "text/html"), ("Last-Modified", modified)]
    if etag is not None:
        headers.append(("ETag", etag))
    start_response("200 OK", headers)
    return [b"<p>page</p>"]


@pytest.mark.parametrize("path", ["/strong", "/weak", "/dated"])
def test_a_stored_page_answers_conditional_requests_as_its_view_did(path: str) -> None:
    """A stored page with an ETag or Last-Modified answers a request it satisfies with 304,
    and any other with the page; a Range is answered whole."""
    client = Client(ActionMiddleware(_conditional_page, cache=PageCache(MemoryStore())))
    first = client.get(path)
    assert first.headers["Actionkit-Cache"] == "MISS" and first.data == b"<p>page</p>"
    etag = first.headers.get("ETag")
    matching = [{"If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"}]
    other = [
        {"If-Modified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"},
        {"If-None-Match": '"v0"'},
        {"Range": "bytes=0-3"},
        {},
        # A precondition: the whole page, never a 304 (a view not evaluating it answers so).
        {"If-Match": '"nope"'},
        {"If-Match": '"nope"', "If-None-Match": '"other"'},
        {"If-Unmodified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"},
        {"If-Unmodified-Since": "Mon, 13 Nov 2023 00:00:00 GMT", "If-None-Match": "*"},
    ]
    if etag is None:
        # If-None-Match decides alone, even against a page without an ETag (RFC 9110, 13.1.3).
        other += [{"If-None-Match": '"v0"', "If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"}]
    if etag is not None:
        matching += [{"If-None-Match": etag}, {"If-None-Match": '"v0", "v1"'}]
        matching += [{"If-None-Match": "*"}]
        # If-None-Match wins over If-Modified-Since.
        other += [{"If-None-Match": '"v0"', "If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"}]
    for headers in matching:
        for method in ("GET", "HEAD"):
            answer = client.open(path, method=method, headers=headers)
            assert (answer.status_code, answer.data) == (304, b""), headers
            assert answer.headers["Actionkit-Cache"] == "HIT"
            assert answer.headers.get("ETag") == etag
            assert "Content-Type" not in answer.headers and "Content-Length" not in answer.headers
    for headers in other:
        answer = client.get(path, headers=headers)
        assert (answer.status_code, answer.data) == (200, b"<p>page</p>"), headers
        assert answer.headers["Actionkit-Cache"] == "HIT"
        assert answer.headers["Content-Length"] == "11"


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


def test_a_query_given_to_revalidate_path_is_left_out(store: Store) -> None:
    """A path with a query (``url_for("posts", page=2)``) or a fragment drops the path's
    pages with every query, from an action and from the cache; it was a path of no page. As
    a ``?`` or ``#`` may be a character of a path written as text (the tag ``C#``), that
    path is dropped too."""
    site = Site(store)

    @site.registry.action
    def drop(path: str) -> None:
        revalidate_path(path)

    for spelling in ("/tagged?a=1", "/tagged?b=2#top", "/tagged#top", "/tagged?"):
        for how in ("action", "cache"):
            site.get("/tagged?a=1")
            site.get("/tagged")
            if how == "cache":
                site.cache.revalidate_path(spelling)
            else:
                answer = site.client.call(drop, spelling, path="/").json
                assert answer["revalidated"]["paths"][0] == "/tagged"
            assert site.get("/tagged?a=1")[0] == "MISS", (spelling, how)
            assert site.get("/tagged")[0] == "MISS", (spelling, how)
    for text, url in (("/tagged/C#", "/tagged/C%23"), ("/tagged/why?", "/tagged/why%3F")):
        for how in ("action", "cache"):
            site.get(url)
            assert site.get(url)[0] == "HIT"
            if how == "cache":
                site.cache.revalidate_path(text)
            else:
                site.client.call(drop, text, path="/")
            assert site.get(url)[0] == "MISS", (text, how)


def test_what_an_action_revalidated_is_named_once(store: Store) -> None:
    """The answer names each path and tag the action revalidated once, however many times it
    (and the signal handlers it set off) asked."""
    site = Site(store)

    @site.registry.action
    def twice() -> None:
        for _ in range(2):
            revalidate_path("/tagged")
            revalidate_tag("t1")

    answer = site.client.call(twice, path="/").json
    assert answer["revalidated"] == {"paths": ["/tagged"], "tags": ["t1"]}


@pytest.mark.parametrize(
    ("url", "spellings"),
    [
        ("/tagged/caf%C3%A9", ["/tagged/café", "/tagged/caf%C3%A9", "/tagged/caf%c3%a9"]),
        ("/tagged/a%20b", ["/tagged/a b", "/tagged/a%20b"]),
        ("/tagged/100%25", ["/tagged/100%", "/tagged/100%25"]),
    ],
)
def test_a_path_is_revalidated_however_it_is_spelled(
    store: Store, url: str, spellings: list[str]
) -> None:
    """A path is named as in its URL or as its text (``url_for()``'s ``/tag/caf%C3%A9`` or
    ``/tag/café``): either drops the page, from an action, from the cache and as a layout."""
    site = Site(store)

    @site.registry.action
    def drop(path: str, layout: bool) -> None:
        revalidate_path(path, "layout" if layout else "page")

    for spelling in spellings:
        for how in ("action", "cache", "layout"):
            site.get(url)
            assert site.get(url)[0] == "HIT"
            if how == "cache":
                site.cache.revalidate_path(spelling)
            else:
                site.client.call(drop, spelling, how == "layout", path="/")
            assert site.get(url)[0] == "MISS", (spelling, how)


def test_a_process_that_only_read_a_page_waits_for_a_dead_render_as_long_as_its_own_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that only ever served a page from the shared store, whose miss meets the lease
    of a render that died with its process, waits as long as its own renders of other pages
    would allow (at least _LEAST_WAIT), not the cache's whole wait, then renders."""
    from actionkit.cache import waiting

    monkeypatch.setattr(waiting, "_LEAST_WAIT", 0.3)
    path = tmp_path / "cache.sqlite3"
    a, b = Site(SQLiteStore(path)), Site(SQLiteStore(path))
    assert a.get("/tagged")[0] == "MISS" and b.get("/tagged")[0] == "HIT"
    (key,) = [k for k in a.cache._shared if "/tagged" in k]
    a.cache.revalidate_path("/tagged")
    assert b.cache.safe.store.acquire(key, 30)  # the render of a process killed since
    started = time.monotonic()
    answer = b.get("/tagged")
    waited = time.monotonic() - started
    assert answer[0] == "MISS" and 0.25 < waited < 2, waited  # the cache's wait is 5 s


def test_a_reader_of_an_expired_page_waits_for_a_dead_regeneration_as_for_a_dead_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page past its lifetime (``stale=0``) whose regeneration another process took the
    lease for, and died doing: its readers wait as a miss waits for a dead render (at least
    _LEAST_WAIT, about four times a render), not the cache's whole wait, then render."""
    from actionkit.cache import waiting

    monkeypatch.setattr(waiting, "_LEAST_WAIT", 0.3)
    path = tmp_path / "cache.sqlite3"
    a, b = Site(SQLiteStore(path)), Site(SQLiteStore(path))
    assert a.get("/nostale")[0] == "MISS" and b.get("/nostale")[0] == "HIT"
    a.clock.now += 61
    b.clock.now += 61  # expired, and no stale window
    (key,) = [k for k in a.cache._shared if "/nostale" in k]
    assert a.cache.safe.store.acquire(key, 30)  # a's regeneration, killed with its process
    started = time.monotonic()
    answer = b.get("/nostale")
    waited = time.monotonic() - started
    assert answer == ("MISS", "/nostale? v1 render 1") and 0.25 < waited < 2, waited  # wait=5


def test_the_wait_for_another_process_render_reads_the_pages_while_threads_change_them() -> None:
    """A miss of a page this process only served from the store times its wait by the renders
    of the others, which threads serving other pages add and drop meanwhile: the miss never
    fails with "dictionary changed size during iteration"."""
    import sys

    cache = PageCache(MemoryStore())
    cache._shared.update({f"page:{i}": 0.001 * (i % 7) for i in range(5_000)})
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can
    stop = threading.Event()
    errors: list[BaseException] = []

    def serve(n: int) -> None:  # as serve() and _store() do for the pages they answer
        i = 0
        while not stop.is_set():
            key = f"other:{n}:{i % 300}"
            if cache._shared.pop(key, 1) == 1:
                cache._shared[key] = None
            i += 1

    def miss() -> None:
        try:
            for _ in range(300):
                cache._render_deadline("page:missed")
        except BaseException as e:
            errors.append(e)

    servers = [threading.Thread(target=serve, args=(n,)) for n in range(3)]
    try:
        for thread in servers:
            thread.start()
        missing = threading.Thread(target=miss)
        missing.start()
        missing.join(60)
    finally:
        stop.set()
        for thread in servers:
            thread.join()
        sys.setswitchinterval(interval)
    assert errors == []


def test_a_page_another_process_rendered_is_rendered_once_after_a_revalidation(
    tmp_path: Path,
) -> None:
    """A process that only ever served a page from the shared store still makes its misses of
    it, after a revalidation, wait for the one render under way rather than all render."""
    path = tmp_path / "cache.sqlite3"
    a, b = Site(SQLiteStore(path)), Site(SQLiteStore(path))
    assert a.get("/tagged")[0] == "MISS" and b.get("/tagged")[0] == "HIT"
    a.cache.revalidate_path("/tagged")
    b.gate = threading.Event()
    answers: list[tuple[str, str]] = []

    def get() -> None:
        answers.append(b.get("/tagged"))

    threads = [threading.Thread(target=get) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert b.started.wait(5)
    time.sleep(0.2)  # the other misses reach their wait
    b.gate.set()
    for thread in threads:
        thread.join()
    assert b.renders == {"/tagged": 1}
    assert sorted(answers) == [("HIT", "/tagged? v1 render 1")] * 3 + [
        ("MISS", "/tagged? v1 render 1")
    ]


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


def test_an_answer_without_the_vary_of_a_stored_page_does_not_replace_its_variants(
    store: Store,
) -> None:
    """A page stored with ``Vary`` whose answer for another request has none (Flask-CORS adds
    ``Vary: Origin`` for allowed origins only) is stored as one more variant: stored without
    it, it replaced every variant, so one request from anywhere served the allowed origins a
    page without their headers."""
    site = Site(store)
    en, fr = {"Accept-Language": "en"}, {"Accept-Language": "fr", "X-Vary-On": ""}
    assert site.get("/vary", headers=en)[0] == "MISS"
    assert site.get("/vary", headers=fr)[0] == "MISS"
    assert site.get("/vary", headers=en) == ("HIT", "/vary? v1 render 1")
    assert site.get("/vary", headers=fr) == ("HIT", "/vary? v1 render 2")


def _varying_site(store: Store) -> tuple[ActionMiddleware, t.Any, list[str]]:
    """A page with a lifetime of 5 s and no stale window that varies on Accept-Language,
    but not when asked with ``X-Plain`` (as Flask-CORS says ``Vary: Origin`` to some requests
    only); the clock is ``state.now``, and each render takes ``state.delay`` seconds."""
    import types

    state, renders = types.SimpleNamespace(now=1000.0, delay=0.0), []

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        renders.append(environ.get("HTTP_ACCEPT_LANGUAGE", ""))
        time.sleep(state.delay)
        headers = [("Cache-Control", "s-maxage=5, stale-while-revalidate=0")]
        if not environ.get("HTTP_X_PLAIN"):
            headers.append(("Vary", "Accept-Language"))
        start_response("200 OK", headers)
        return [environ.get("HTTP_ACCEPT_LANGUAGE", "").encode()]

    cache = PageCache(store, clock=lambda: state.now)
    return ActionMiddleware(app, cache=cache, secret_key="k" * 32), state, renders


def test_an_expired_variant_rendered_again_without_vary_keeps_the_others(store: Store) -> None:
    """The variant of a page past its lifetime, rendered again for a request whose answer
    has no ``Vary``, is stored as that variant: it replaced the page's variants, and the next
    request of another language got it."""
    app, state, _ = _varying_site(store)
    client = Client(app)
    assert client.get("/p", headers={"Accept-Language": "en"}, buffered=True).text == "en"
    state.now += 6
    plain = client.get("/p", headers={"Accept-Language": "en", "X-Plain": "1"}, buffered=True)
    assert plain.headers["Actionkit-Cache"] == "MISS"
    french = client.get("/p", headers={"Accept-Language": "fr"}, buffered=True)
    assert french.headers["Actionkit-Cache"] == "MISS" and french.text == "fr"


def test_a_reader_waits_for_the_regeneration_of_a_variant_under_way_in_its_process() -> None:
    """An expired variant being regenerated by another thread of this process, which holds
    its lease: its readers wait for that render (up to ``wait``), as before (they waited a
    second, the bound for another process's render that may have died, then all rendered)."""
    from actionkit.cache import waiting

    app, state, renders = _varying_site(MemoryStore())
    client = Client(app)
    en = {"Accept-Language": "en"}
    assert client.get("/p", headers=en, buffered=True).headers["Actionkit-Cache"] == "MISS"
    state.now += 6
    state.delay = 1.0  # the regeneration takes a second
    answers: list[str] = []
    regenerate = threading.Thread(
        target=lambda: answers.append(client.get("/p", headers=en, buffered=True).text)
    )
    original, waiting._LEAST_WAIT = waiting._LEAST_WAIT, 0.2
    try:
        regenerate.start()
        time.sleep(0.3)
        reader = Client(app).get("/p", headers=en, buffered=True)
    finally:
        waiting._LEAST_WAIT = original
        regenerate.join()
    assert reader.headers["Actionkit-Cache"] == "HIT" and answers == ["en"]
    assert renders == ["en", "en"]


def test_a_page_reading_cookies_is_stored_only_if_it_varies_with_them(store: Store) -> None:
    """A page that reads cookies() shows this request's cookies: it is never served to somebody
    else, unless it answers Vary: Cookie, and then once per Cookie header."""
    site = Site(store)

    def greet(name: str | None, **headers: str) -> tuple[str, str]:
        if name is None:
            site.client.delete_cookie("name")
        else:
            site.client.set_cookie("name", name)
        return site.get("/greeting", headers=headers)

    assert greet("ada") == ("BYPASS", "/greeting?hello ada v1 render 1")
    assert greet("bob") == ("BYPASS", "/greeting?hello bob v1 render 2")
    assert greet(None) == ("BYPASS", "/greeting?hello stranger v1 render 3")

    assert greet("ada", X_Vary_On="Cookie")[0] == "MISS"
    assert greet("ada", X_Vary_On="Cookie") == ("HIT", "/greeting?hello ada v1 render 4")
    assert greet("bob", X_Vary_On="Accept, cookie") == ("MISS", "/greeting?hello bob v1 render 5")
    assert greet("ada", X_Vary_On="Accept")[0] == "BYPASS"


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda jar: jar.has("name"), id="has"),
        pytest.param(lambda jar: "name" in jar, id="in"),
        pytest.param(lambda jar: jar.get("name"), id="get"),
        pytest.param(lambda jar: jar.all(), id="all"),
        pytest.param(lambda jar: jar["name"], id="getitem"),
    ],
)
def test_every_way_of_reading_cookies_keeps_the_page_out_of_the_cache(
    read: t.Callable[[t.Any], object],
) -> None:
    """has(), in, get(), all() and [] each show the page this request's cookies: the page is
    not stored unless it answers Vary: Cookie, and then is stored per Cookie header."""
    renders: list[str] = []

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("cookies")
        shown = repr(read(cookies()))
        renders.append(shown)
        headers = [("Content-Type", "text/plain")]
        if environ.get("HTTP_X_VARY_ON"):
            headers.append(("Vary", environ["HTTP_X_VARY_ON"]))
        start_response("200 OK", headers)
        return [shown.encode()]

    client = Client(ActionMiddleware(app, cache=MemoryStore()))
    client.set_cookie("name", "ada")

    def get(**headers: str) -> str:
        with client.get("/", headers=headers) as response:
            assert response.text
            return response.headers["Actionkit-Cache"]

    assert [get(), get()] == ["BYPASS", "BYPASS"]
    assert len(renders) == 2
    assert [get(X_Vary_On="Cookie"), get(X_Vary_On="Cookie")] == ["MISS", "HIT"]
    assert len(renders) == 3


@pytest.mark.parametrize(
    "cache_control",
    [
        pytest.param("no-store", id="no-store"),
        pytest.param("private", id="private"),
        pytest.param("No-Store", id="no-store-capitalised"),
        pytest.param("public, s-maxage=60, no-store", id="s-maxage-and-no-store"),
        pytest.param("s-maxage=60, private", id="s-maxage-and-private"),
        pytest.param('private="Set-Cookie", s-maxage=60', id="private-with-fields"),
    ],
)
@pytest.mark.parametrize(
    "opt_in",
    [pytest.param("cache_tag", id="cache_tag"), pytest.param("header", id="s-maxage-header")],
)
def test_no_store_and_private_are_never_stored(cache_control: str, opt_in: str) -> None:
    """A page that says Cache-Control: no-store or private is rendered for every request,
    even when it opted in with cache_tag() or s-maxage."""
    renders: list[int] = []

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        if opt_in == "cache_tag":
            cache_tag("posts")
        else:
            cache_life(60)
        renders.append(1)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Cache-Control", cache_control)])
        return [b"page"]

    client = Client(ActionMiddleware(app, cache=MemoryStore()))
    for _ in range(3):
        with client.get("/") as response:
            assert response.headers["Actionkit-Cache"] == "BYPASS" and response.text == "page"
    assert len(renders) == 3


@pytest.mark.parametrize(
    "cache",
    [
        pytest.param(None, id="default-store"),
        pytest.param("memory", id="memory"),
        pytest.param("sqlite", id="sqlite"),
    ],
)
@pytest.mark.parametrize(
    "started",
    [
        pytest.param(False, id="generator-app"),
        pytest.param(True, id="app-starting-then-returning-a-generator"),
    ],
)
def test_pages_that_did_not_opt_in_are_streamed_not_buffered(
    cache: str | None, started: bool, tmp_path: Path
) -> None:
    """With the cache on, a page that did not opt in reaches the server chunk by chunk: its
    first chunk is handed over before the app's generator runs its second step (whether the
    app calls start_response from the generator or before returning it)."""
    steps: list[str] = []

    def body(start_response: t.Any) -> t.Iterator[bytes]:
        if not started:
            start_response("200 OK", [("Content-Type", "text/plain")])
        steps.append("first")
        yield b"one"
        steps.append("second")
        yield b"two"

    def app(environ: t.Any, start_response: t.Any) -> t.Iterator[bytes]:
        if started:
            start_response("200 OK", [("Content-Type", "text/plain")])
        return body(start_response)

    store: t.Any = {
        None: None,
        "memory": MemoryStore(),
        "sqlite": SQLiteStore(tmp_path / "s.sqlite3") if cache == "sqlite" else None,
    }[cache]
    middleware = ActionMiddleware(app, cache=store)
    assert middleware.cache is not None
    headers: list[tuple[str, str]] = []
    iterable = middleware(
        EnvironBuilder("/stream", method="GET").get_environ(),
        lambda status, h, exc_info=None: headers.extend(h),
    )
    try:
        iterator = iter(iterable)
        assert next(iterator) == b"one"
        assert steps == ["first"]  # nothing past the first chunk has run
        assert next(iterator) == b"two" and steps == ["first", "second"]
        assert ("Actionkit-Cache", "BYPASS") in headers
    finally:
        getattr(iterable, "close", lambda: None)()
        if cache == "sqlite":
            store.close()


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


class Recording:
    """A store that notes the writes made to it (and has revalidate_and_set only if the
    store it wraps has)."""

    _WRITES = ("set", "revalidate_and_set", "revalidate_tag", "revalidate_path", "acquire")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> t.Any:
        method = getattr(self.store, name)
        if name not in self._WRITES:
            return method

        def noted(*args: t.Any, **kwargs: t.Any) -> t.Any:
            self.writes.append(name)
            return method(*args, **kwargs)

        return noted


def _liking_site(store: Store, *revalidate: t.Callable[[], None]) -> tuple[Site, t.Any]:
    """A site whose ``like`` action writes (version + 1) and revalidates ``/tagged`` (or
    calls ``revalidate``), with ``/tagged`` cached."""
    site = Site(store)

    @site.registry.action
    def like() -> None:
        site.data["version"] += 1
        for call in revalidate or (lambda: revalidate_path("/tagged"),):
            call()

    site.get("/tagged")
    return site, like


def _other_process(site: Site, store: Store) -> Site:
    """A second page cache on the store and the data of ``site``, as another worker."""
    other = Site(store)
    other.data = site.data
    return other


def _held_call(site: Site, action: t.Any) -> tuple[threading.Thread, list[t.Any]]:
    """Call ``action`` from JS in a thread, and return once its page's render has begun and is
    held at ``site.gate`` (set it to go on)."""
    site.gate = threading.Event()
    site.started.clear()
    answers: list[t.Any] = []
    thread = threading.Thread(
        target=lambda: answers.append(site.client.call(action, page="/tagged"))
    )
    thread.start()
    assert site.started.wait(10)
    return thread, answers


@pytest.mark.parametrize(
    "revalidate",
    [
        pytest.param(lambda: revalidate_path("/tagged"), id="path"),
        pytest.param(lambda: revalidate_path("/", "layout"), id="layout"),
        pytest.param(lambda: revalidate_tag("posts"), id="tag"),
    ],
)
def test_the_page_after_an_action_is_stored_with_its_revalidation(
    store: Store, revalidate: t.Callable[[], None]
) -> None:
    """A JS action revalidating the page it is on: one write revalidates and stores the new
    page, and until then every other process is served the old page (none misses it, none
    renders it)."""
    recording = Recording(store)
    site, like = _liking_site(
        t.cast(Store, recording), revalidate, lambda: revalidate_tag("unrelated")
    )
    other = _other_process(site, store)
    other.get("/tagged")
    recording.writes.clear()
    thread, answers = _held_call(site, like)
    folds = hasattr(store, "revalidate_and_set")
    if folds:
        # The action has written its data and is rendering: not answered yet.
        assert other.get("/tagged") == ("HIT", "/tagged? v1 render 1")
    site.gate.set()
    thread.join(10)
    assert answers[0].json["html"] == "/tagged? v2 render 2"
    if folds:
        assert recording.writes == ["revalidate_and_set"]
    else:
        assert recording.writes[:2] in (
            ["revalidate_path", "revalidate_tag"],
            ["revalidate_tag", "revalidate_tag"],
        )
    assert other.get("/tagged") == ("HIT", "/tagged? v2 render 2")
    assert "/tagged" not in other.renders or other.renders["/tagged"] == 1


def test_the_revalidations_of_an_action_whose_page_renders_long_are_sent_on_their_own(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page after an action renders longer than FOLD_PATIENCE: the action's revalidations
    are sent without it meanwhile (a process killed while rendering loses none of them past
    that), so other processes render the new data while the render is still held; its page is
    then stored alone (by the store's rule), and nothing is sent twice."""
    monkeypatch.setattr(folding, "FOLD_PATIENCE", 0.05)
    recording = Recording(store)
    site, like = _liking_site(t.cast(Store, recording))
    other = _other_process(site, store)
    recording.writes.clear()
    thread, answers = _held_call(site, like)
    deadline = time.monotonic() + 10
    while (answer := other.get("/tagged")) == ("HIT", "/tagged? v1 render 1"):
        assert time.monotonic() < deadline, "the revalidations were never sent"
        time.sleep(0.01)
    assert answer == ("MISS", "/tagged? v2 render 1")
    assert recording.writes == ["revalidate_and_set"]
    site.gate.set()
    thread.join(10)
    site.gate = None
    assert answers[0].json["html"] == "/tagged? v2 render 2"
    assert recording.writes == ["revalidate_and_set", "revalidate_and_set"]  # the page alone
    cache, page = other.get("/tagged")
    assert cache == "HIT" and page.startswith("/tagged? v2 render ")


def test_an_action_whose_revalidations_are_being_sent_on_their_own_answers_once_they_are(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render after an action ends while the watch is still sending the action's
    revalidations: the action answers only once they are in the store (read your writes)."""
    monkeypatch.setattr(folding, "FOLD_PATIENCE", 0.05)
    sending, go_on = threading.Event(), threading.Event()

    class Slow(Recording):
        def __getattr__(self, name: str) -> t.Any:
            method = super().__getattr__(name)
            if name != "revalidate_and_set":
                return method

            def slowly(*args: t.Any, **kwargs: t.Any) -> t.Any:
                if threading.current_thread().name == "actionkit-fold-watch":
                    sending.set()
                    assert go_on.wait(10)
                return method(*args, **kwargs)

            return slowly

    site, like = _liking_site(t.cast(Store, Slow(store)))
    other = _other_process(site, store)
    thread, answers = _held_call(site, like)
    assert sending.wait(10)
    site.gate.set()  # the render ends; its page is stored (or not) without the revalidations
    thread.join(0.3)
    assert thread.is_alive() and not answers
    go_on.set()
    thread.join(10)
    site.gate = None
    assert answers[0].json["html"] == "/tagged? v2 render 2"
    cache, page = other.get("/tagged")
    assert page.startswith("/tagged? v2 render ")


def test_the_page_after_an_action_is_not_stored_over_a_revalidation_made_meanwhile(
    store: Store,
) -> None:
    """Another process revalidating the page while the action's page renders (its like came
    in between): the action's page may not show it, so it is not stored, and the action's
    own revalidation still drops the old page."""
    site, like = _liking_site(store)
    other = _other_process(site, store)
    thread, answers = _held_call(site, like)
    site.data["version"] += 1
    other.cache.revalidate_tag("posts")
    site.gate.set()
    thread.join(10)
    site.gate = None
    assert answers[0].json["html"] == "/tagged? v2 render 2"
    assert other.get("/tagged") == ("MISS", "/tagged? v3 render 1")


def test_the_page_after_an_action_is_stored_over_a_revalidation_of_data_it_shows(
    store: Store,
) -> None:
    """Another process's action that was over before this page's render began, and sent its
    revalidation during it: the page shows its writes, so it is stored (where the store
    keeps when data was written: MemoryStore, SQLiteStore, not RedisStore)."""
    site, like = _liking_site(store)
    other = _other_process(site, store)
    site.data["version"] += 1  # the other action's write, in before the render below
    written = time.monotonic()
    thread, answers = _held_call(site, like)
    other.cache.flush([("tag", "posts", False)], written)
    site.gate.set()
    thread.join(10)
    site.gate = None
    assert answers[0].json["html"] == "/tagged? v3 render 2"
    expected = ("HIT", "/tagged? v3 render 2")
    if isinstance(store, RedisStore):
        # Its hosts' clocks do not compare: any revalidation since the render began that
        # concerns the page keeps it out, as with set().
        expected = ("MISS", "/tagged? v3 render 1")
    assert other.get("/tagged") == expected


def test_the_pages_after_two_actions_of_one_process_take_turns(store: Store) -> None:
    """Two threads liking at once: the second page is rendered once the first is stored, so
    it shows both likes and is stored; no reader has to render the page again."""
    site, like = _liking_site(store)
    first, answered = _held_call(site, like)
    second = threading.Thread(
        target=lambda: answered.append(site.client.call(like, page="/tagged"))
    )
    second.start()
    time.sleep(0.3)
    folds = hasattr(store, "revalidate_and_set")
    if folds:
        assert site.renders["/tagged"] == 2  # the second waits for its turn
    site.gate.set()
    first.join(10)
    second.join(10)
    site.gate = None
    answers = [answer.json["html"] for answer in answered]
    assert sorted(answers)[-1] == "/tagged? v3 render 3"
    if folds:
        assert answers == ["/tagged? v2 render 2", "/tagged? v3 render 3"]
        assert site.get("/tagged") == ("HIT", "/tagged? v3 render 3")


def _calls_waiting_for_the_turn(
    site: Site, calls: list[t.Callable[[], t.Any]], answered: list[t.Any]
) -> list[threading.Thread]:
    """Start ``calls`` in threads (the page after one action is held at ``site.gate``), and
    return once each waits for the turn of the page's renders after actions."""

    def waiting() -> int:
        return sum(len(turn.waiting) for turn in list(site.cache._turns.values()))

    already = waiting()
    threads = [threading.Thread(target=lambda c=call: answered.append(c())) for call in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while waiting() < already + len(calls):
        assert time.monotonic() < deadline, "the calls never waited for the turn"
        time.sleep(0.005)
    return threads


def test_the_render_that_takes_the_turn_is_the_page_of_every_action_waiting_for_it(
    store: Store,
) -> None:
    """Three likes at once in one process: while the first page renders, the other two wait
    for the turn. The one that takes it renders once for both (it begins after both likes),
    stores both revalidations with its page in one write, and both answers show that page."""
    recording = Recording(store)
    site, like = _liking_site(t.cast(Store, recording))
    other = _other_process(site, store)
    first, answered = _held_call(site, like)
    recording.writes.clear()
    call = functools.partial(site.client.call, like, page="/tagged")
    others = _calls_waiting_for_the_turn(site, [call, call], answered)
    assert site.data["version"] == 4 and site.renders["/tagged"] == 2
    site.gate.set()
    for thread in [first, *others]:
        thread.join(10)
    site.gate = None
    assert sorted(answer.json["html"] for answer in answered) == [
        "/tagged? v2 render 2",
        "/tagged? v4 render 3",
        "/tagged? v4 render 3",
    ]
    assert site.renders["/tagged"] == 3
    assert recording.writes == ["revalidate_and_set", "revalidate_and_set"]
    # Stored with every revalidation it answers for: no process renders it again.
    assert other.get("/tagged") == ("HIT", "/tagged? v4 render 3")
    assert site.get("/tagged") == ("HIT", "/tagged? v4 render 3")
    assert not site.cache._turns


@pytest.mark.parametrize("path", ["/private", "/vary"])
def test_actions_waiting_for_the_turn_of_a_page_for_somebody_render_their_own(
    store: Store, path: str
) -> None:
    """A page that is not one for everyone (private, or varying with a request header) is
    never the page of another action's answer: the actions that waited for the render that
    took the turn render their own once it is over (their revalidations were sent with it)."""
    site, like = _liking_site(store, lambda: revalidate_path(path))
    site.gate = threading.Event()
    site.started.clear()
    answered: list[t.Any] = []
    call = functools.partial(site.client.call, like, page=path)
    first = threading.Thread(target=lambda: answered.append(call()))
    first.start()
    assert site.started.wait(10)
    others = _calls_waiting_for_the_turn(site, [call, call], answered)
    site.gate.set()
    for thread in [first, *others]:
        thread.join(10)
    site.gate = None
    pages = sorted(answer.json["html"] for answer in answered)
    assert site.renders[path] == 3
    assert pages[0] == f"{path}? v2 render 1"
    assert {page.split(" render ")[0] for page in pages[1:]} == {f"{path}? v4"}
    assert len(set(pages)) == 3


def test_an_answer_showing_its_action_state_is_rendered_for_it_alone(store: Store) -> None:
    """A form re-rendered with its action's state (no JavaScript, no redirect) while a JS
    like waits for the turn of the page's renders after actions: the form's page is neither
    read from nor stored in the cache, so it takes no turn, neither takes over the like's
    revalidations nor gives it its page; the like renders its own."""
    site, like = _liking_site(store)

    @site.registry.action
    def like_form(form: t.Any) -> None:
        site.data["version"] += 1
        revalidate_path("/tagged")

    first, answered = _held_call(site, like)
    call = functools.partial(site.client.call, like, page="/tagged")
    threads = _calls_waiting_for_the_turn(site, [call], answered)
    form_thread = threading.Thread(
        target=lambda: answered.append(site.client.submit(like_form, {}, path="/tagged"))
    )
    form_thread.start()
    deadline = time.monotonic() + 10
    while site.data["version"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.1)  # the form's render would have reached the turn
    assert sum(len(turn.waiting) for turn in site.cache._turns.values()) == 1
    site.gate.set()
    for thread in [first, *threads, form_thread]:
        thread.join(10)
    site.gate = None
    form = next(a for a in answered if not a.headers["Content-Type"].startswith("application"))
    likes = sorted(a.json["html"] for a in answered if a is not form)
    assert site.renders["/tagged"] == 4  # the first like's, the form's, the second like's
    assert form.text.startswith("/tagged? v") and form.text not in likes
    assert likes[0] == "/tagged? v2 render 2" and likes[1].startswith("/tagged? v4 render ")


def test_the_revalidations_a_render_took_over_are_sent_when_it_renders_long(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render that took over the revalidations of an action waiting for the turn renders
    longer than FOLD_PATIENCE: the watch sends them all; that action answers only after."""
    monkeypatch.setattr(folding, "FOLD_PATIENCE", 0.05)
    site, like = _liking_site(store)
    other = _other_process(site, store)
    first, answered = _held_call(site, like)
    call = functools.partial(site.client.call, like, page="/tagged")
    others = _calls_waiting_for_the_turn(site, [call, call], answered)
    held, site.gate = site.gate, threading.Event()  # the next render is held too
    site.started.clear()
    held.set()
    first.join(10)
    assert site.started.wait(10)  # the render that took the turn, for both waiting likes
    deadline = time.monotonic() + 10
    while (answer := other.get("/tagged"))[1].startswith("/tagged? v2 "):
        assert time.monotonic() < deadline, "the revalidations taken over were never sent"
        time.sleep(0.01)
    assert answer == ("MISS", "/tagged? v4 render 1")
    assert len(answered) == 1
    site.gate.set()
    for thread in others:
        thread.join(10)
    site.gate = None
    assert [answer.json["html"] for answer in answered[1:]] == ["/tagged? v4 render 3"] * 2


def test_a_render_that_takes_over_revalidations_sends_them_as_of_the_latest_write(
    store: Store,
) -> None:
    """The revalidations a render takes over are sent with the time of the latest write among
    their actions, not its own action's: a render elsewhere that began between the two writes
    shows only the first, and is not stored once they are sent."""
    site, like = _liking_site(store, lambda: revalidate_tag("posts"))
    other = _other_process(site, store)
    first, answered = _held_call(site, like)
    call = functools.partial(site.client.call, like, page="/tagged")
    threads = _calls_waiting_for_the_turn(site, [call], answered)  # v3, its write in
    other.gate, other.started = threading.Event(), threading.Event()
    elsewhere: list[tuple[str, str]] = []
    reader = threading.Thread(target=lambda: elsewhere.append(other.get("/tagged-too")))
    reader.start()
    assert other.started.wait(10)  # it shows v3
    threads += _calls_waiting_for_the_turn(site, [call], answered)  # v4, written after
    site.gate.set()
    for thread in [first, *threads]:
        thread.join(10)
    site.gate = None
    other.gate.set()
    reader.join(10)
    other.gate = None
    assert elsewhere == [("MISS", "/tagged-too? v3 render 1")]
    assert sorted(answer.json["html"] for answer in answered)[1:] == ["/tagged? v4 render 3"] * 2
    assert other.get("/tagged-too") == ("MISS", "/tagged-too? v4 render 2")


def test_a_render_taking_over_others_revalidations_keeps_the_latest_write_time() -> None:
    """Fold.take_over: the revalidations in order, the latest of the writes' times, and the
    render they are now sent with."""
    mine = folding.Fold([("tag", "a", False)], 2.0)
    earlier = folding.Fold([("path", "/x", False)], 1.0)
    later = folding.Fold([("tag", "b", False)], 3.0)
    mine.take_over([earlier, later])
    assert mine.pending == [("tag", "a", False), ("path", "/x", False), ("tag", "b", False)]
    assert mine.written == 3.0
    assert earlier.pending == later.pending == []
    assert earlier.by is mine and later.by is mine


def test_an_action_reading_cached_data_after_revalidating_it_gets_it_anew(store: Store) -> None:
    """revalidate_tag() then a cached() read in the same action: the read computes anew."""
    site = Site(store)
    calls: list[int] = []

    @cached(tags=["numbers"])
    def number() -> int:
        calls.append(1)
        return len(calls)

    @site.registry.action
    def bump() -> int:
        first = number()
        revalidate_tag("numbers")
        return first * 10 + number()

    assert site.client.call(bump, page="/elsewhere").json["result"] == 12
    assert site.client.call(bump, page="/elsewhere").json["result"] == 23


@pytest.mark.parametrize("client", [True, False])
def test_the_revalidations_of_a_failing_action_are_sent(store: Store, client: bool) -> None:
    """An action that revalidates, then raises: its writes may be in, so is its revalidation."""
    site = Site(store)

    @site.registry.action
    def broken(form: t.Any = None) -> None:
        site.data["version"] += 1
        revalidate_tag("posts")
        raise RuntimeError("after the write")

    site.get("/tagged")
    if client:
        assert site.client.call(broken, page="/tagged").status_code == 500
    else:
        assert site.client.submit(broken, {}, path="/tagged").status_code == 500
    assert site.get("/tagged") == ("MISS", "/tagged? v2 render 2")


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
    assert site.started.wait(30)
    site.data["version"] = 2
    site.cache.revalidate_tag("posts")
    site.gate.set()
    thread.join()
    site.gate = None
    assert result == [("MISS", "/tagged? v1 render 1")]
    assert site.get("/tagged") == ("MISS", "/tagged? v2 render 2")


def _in_threads(fn: t.Callable[[], t.Any], n: int, into: list[t.Any]) -> list[threading.Thread]:
    threads = [threading.Thread(target=lambda: into.append(fn())) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads


class _Watched(threading.Event):
    """The end of a render under way, counting the requests that waited for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiters = 0
        self._changed = threading.Condition()

    def wait(self, timeout: float | None = None) -> bool:
        with self._changed:
            self.waiters += 1
            self._changed.notify_all()
        return super().wait(timeout)

    def waited_by(self, count: int) -> bool:
        """Whether ``count`` requests wait for the render (it blocks until they do; the bound
        only ends a failing test)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.waiters >= count, timeout=60)


def _watch_render(site: Site | PageCache, path: str) -> _Watched:
    """The render of ``path`` under way in this process (held by its test), made to count the
    misses that wait for it."""
    cache = site.cache if isinstance(site, Site) else site
    render = cache._rendering[f"page:http://localhost\0{path}?"]
    watched = render.done = _Watched()
    return watched


class _Waiting:
    """Counts the requests that entered ``PageCache.<name>`` (a wait for another request's
    render), calling it as before."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.count = 0
        self._changed = threading.Condition()
        original = getattr(PageCache, name)

        def waiting(cache: PageCache, *args: t.Any) -> t.Any:
            with self._changed:
                self.count += 1
                self._changed.notify_all()
            return original(cache, *args)

        monkeypatch.setattr(PageCache, name, waiting)

    def reached(self, count: int) -> bool:
        """Whether ``count`` requests wait (it blocks until they do; the bound only ends a
        failing test)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= count, timeout=60)


class _Together:
    """A gate for Site.page that opens once ``count`` renders are held at it at the same time;
    a render that waited for another's instead would never arrive, and the gate gives up."""

    def __init__(self, count: int) -> None:
        self.barrier = threading.Barrier(count)

    def wait(self, timeout: float | None = None) -> bool:
        try:
            self.barrier.wait(timeout)
        except threading.BrokenBarrierError:
            return False
        return True


def test_misses_wait_for_the_render_under_way(store: Store) -> None:
    """After a revalidation, concurrent misses of a page stored for everyone wait for the one
    render under way in the process and are answered with its page."""
    site = Site(store)
    site.get("/tagged")
    site.data["version"] = 2
    site.cache.revalidate_tag("posts")
    site.gate = threading.Event()
    site.started.clear()
    results: list[tuple[str, str]] = []
    threads = _in_threads(lambda: site.get("/tagged"), 1, results)
    assert site.started.wait(30)
    render = _watch_render(site, "/tagged")
    threads += _in_threads(lambda: site.get("/tagged"), 3, results)
    assert render.waited_by(3)  # the three wait for the render the gate holds
    assert site.renders["/tagged"] == 2  # instead of rendering
    site.gate.set()
    for thread in threads:
        thread.join()
    assert site.renders["/tagged"] == 2
    assert sorted(results) == [("HIT", "/tagged? v2 render 2")] * 3 + [
        ("MISS", "/tagged? v2 render 2")
    ]


def test_a_waiting_miss_never_gets_a_render_older_than_a_revalidation(store: Store) -> None:
    """A miss that waited for a render begun before a revalidation it saw complete does not
    get that render's page: the store refused it, and the request renders the page itself."""
    site = Site(store)
    site.get("/tagged")
    site.cache.revalidate_tag("posts")
    site.gate = threading.Event()
    site.started.clear()
    first: list[tuple[str, str]] = []
    threads = _in_threads(lambda: site.get("/tagged"), 1, first)
    assert site.started.wait(30)  # this render read version 1
    render = _watch_render(site, "/tagged")
    site.data["version"] = 2
    site.cache.revalidate_tag("posts")
    later: list[tuple[str, str]] = []
    threads += _in_threads(lambda: site.get("/tagged"), 1, later)
    assert render.waited_by(1)  # it waits for the render under way
    assert site.renders["/tagged"] == 2
    site.gate.set()
    for thread in threads:
        thread.join()
    site.gate = None
    assert first == [("MISS", "/tagged? v1 render 2")]
    assert later == [("MISS", "/tagged? v2 render 3")]
    assert site.get("/tagged") == ("HIT", "/tagged? v2 render 3")


@pytest.mark.parametrize("path", ["/vary", "/plain", "/tagged/too-big"])
def test_pages_not_stored_for_everyone_never_wait(store: Store, path: str) -> None:
    """Misses of a page that varies with a header, or is not stored (not opted in, or bigger
    than the store's max_bytes), render at once: waiting for another request's render would be
    waiting for nothing."""
    if path == "/tagged/too-big":
        store.max_bytes = 100  # type: ignore[attr-defined]  # each of the three has it
    site = Site(store)
    site.cache.wait = 60  # a miss that waited would outlast the gate's 10 s
    site.get(path)
    site.cache.revalidate_tag("posts")
    site.gate = _Together(3)  # three renders at once, or none gets through
    results: list[tuple[str, str]] = []
    threads = _in_threads(lambda: site.get(path), 3, results)
    for thread in threads:
        thread.join()
    assert site.renders[path] == 4
    assert sorted(body for _, body in results) == [f"{path}? v1 render {n}" for n in (2, 3, 4)]


def test_the_page_after_an_action_does_not_wait_for_an_older_render(store: Store) -> None:
    """The render after an action never waits for a render under way (begun, perhaps, before
    the action's writes): it renders at once and shows them."""
    site = Site(store)

    @site.registry.action
    def publish() -> None:
        site.data["version"] = 2
        revalidate_tag("posts")

    site.cache.wait = 60  # had it waited, the older render would give up at its gate first
    site.get("/tagged")
    site.cache.revalidate_tag("posts")
    site.gate = _Together(2)  # the older render and the action's, at once
    site.started.clear()
    results: list[tuple[str, str]] = []
    threads = _in_threads(lambda: site.get("/tagged"), 1, results)
    assert site.started.wait(30)
    answers: list[t.Any] = []
    threads += _in_threads(lambda: site.client.call(publish, path="/tagged").json, 1, answers)
    for thread in threads:
        thread.join()
    assert site.renders["/tagged"] == 3
    assert results == [("MISS", "/tagged? v1 render 2")]
    assert answers[0]["html"] == "/tagged? v2 render 3"


def _two_processes(store: Store) -> tuple[Site, Site]:
    """Two page caches on one store and one data, as two worker processes would be, each
    having rendered /tagged once (so that its misses of it take part in waiting)."""
    one, two = Site(store), Site(store)
    two.data = one.data
    assert one.get("/tagged")[0] == "MISS"
    one.cache.revalidate_tag("posts")
    assert two.get("/tagged")[0] == "MISS"
    return one, two


TAGGED_KEY = "page:http://localhost\0/tagged?"


def test_a_miss_waits_for_the_render_another_process_holds_the_lease_for(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one render of a page in a process holds its lease in the store; a miss in another
    process waits for that render's page instead of rendering too, and the lease is let go."""
    waits = _Waiting(monkeypatch, "_await_render")
    one, two = _two_processes(store)
    one.data["version"] = 2
    one.cache.revalidate_tag("posts")
    one.gate = threading.Event()
    one.started.clear()
    first: list[tuple[str, str]] = []
    threads = _in_threads(lambda: one.get("/tagged"), 1, first)
    assert one.started.wait(30)
    second: list[tuple[str, str]] = []
    threads += _in_threads(lambda: two.get("/tagged"), 1, second)
    assert waits.reached(1)  # it found the lease taken and waits, the render held
    assert two.renders["/tagged"] == 1  # instead of rendering
    one.gate.set()
    for thread in threads:
        thread.join()
    assert first == [("MISS", "/tagged? v2 render 2")]
    assert second == [("HIT", "/tagged? v2 render 2")]
    assert two.renders["/tagged"] == 1
    assert store.acquire(TAGGED_KEY, 30)  # let go once the render was over


def test_a_miss_waiting_on_another_process_never_gets_a_page_older_than_a_revalidation(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss waiting for another process's render begun before a revalidation it saw
    complete does not get that render's page: the store refuses it, the lease is let go, and
    the waiting request renders the page itself, with the new data."""
    waits = _Waiting(monkeypatch, "_await_render")
    one, two = _two_processes(store)
    one.cache.revalidate_tag("posts")
    one.gate = threading.Event()
    one.started.clear()
    first: list[tuple[str, str]] = []
    threads = _in_threads(lambda: one.get("/tagged"), 1, first)
    assert one.started.wait(30)  # this render read version 1
    one.data["version"] = 2
    two.cache.revalidate_tag("posts")
    later: list[tuple[str, str]] = []
    threads += _in_threads(lambda: two.get("/tagged"), 1, later)
    assert waits.reached(1)  # it waits for the render under way
    assert two.renders["/tagged"] == 1
    one.gate.set()
    for thread in threads:
        thread.join()
    one.gate = None
    assert first == [("MISS", "/tagged? v1 render 2")]
    assert later == [("MISS", "/tagged? v2 render 2")]
    assert one.get("/tagged") == ("HIT", "/tagged? v2 render 2")


def test_a_miss_waits_for_another_process_at_most_wait_seconds(store: Store) -> None:
    """When the render holding the lease never stores the page (a process that hung), a
    miss waits at most the cache's ``wait`` and then renders the page itself."""
    one, two = _two_processes(store)
    one.data["version"] = 2
    one.cache.revalidate_tag("posts")
    assert store.acquire(TAGGED_KEY, 30)  # held, and never let go
    two.cache.wait = 0.05
    assert two.get("/tagged") == ("MISS", "/tagged? v2 render 2")
    assert two.get("/tagged") == ("HIT", "/tagged? v2 render 2")


def test_misses_waiting_in_a_process_behind_a_hung_render_elsewhere_render_once(
    store: Store,
) -> None:
    """The render another process holds the lease for never stores the page (a process that
    hung). Of the misses of the page in this process, the one that waited for it renders the
    page; the others, which waited as long for that one, get its page instead of rendering
    too."""
    one, two = _two_processes(store)
    one.data["version"] = 2
    one.cache.revalidate_tag("posts")
    assert store.acquire(TAGGED_KEY, 30)  # held, and never let go
    two.cache.wait = 0.3
    results: list[tuple[str, str]] = []
    for thread in _in_threads(lambda: two.get("/tagged"), 4, results):
        thread.join()
    assert two.renders["/tagged"] == 2  # the one of _two_processes, and one now
    assert sorted(results) == [("HIT", "/tagged? v2 render 2")] * 3 + [
        ("MISS", "/tagged? v2 render 2")
    ]


def test_a_lease_left_by_a_process_that_died_holds_a_miss_up_a_moment_once(store: Store) -> None:
    """A render's lease outlives a process killed while rendering. A miss elsewhere waits for
    that render no longer than four times as long as its own last render of the page took (at
    least a second, instead of ``wait``), then renders and stores the page; the stores other
    than ``MemoryStore`` (one process) then let the lease go, so the next miss does not wait."""
    one, two = _two_processes(store)
    one.data["version"] = 2
    one.cache.revalidate_tag("posts")
    assert store.acquire(TAGGED_KEY, 30)  # the render of a process that died
    started = time.monotonic()
    assert two.get("/tagged") == ("MISS", "/tagged? v2 render 2")
    waited = time.monotonic() - started
    assert 0.9 < waited < 5, waited  # it waited for the render, though not ``wait`` (10 s)
    if isinstance(store, MemoryStore):
        return
    one.cache.revalidate_tag("posts")
    started = time.monotonic()
    assert one.get("/tagged") == ("MISS", "/tagged? v2 render 2")
    assert time.monotonic() - started < 0.5  # no lease left to wait for


def test_the_page_after_an_action_does_not_wait_for_another_process(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render after an action never waits for the render another process holds the
    lease for (it may predate the action's writes): it renders at once and shows them."""
    one, two = _two_processes(store)

    @two.registry.action
    def publish() -> None:
        two.data["version"] = 2
        revalidate_tag("posts")

    assert store.acquire(TAGGED_KEY, 30)  # another process renders /tagged
    monkeypatch.setattr(PageCache, "_await_render", _never)
    assert two.client.call(publish, path="/tagged").json["html"] == "/tagged? v2 render 2"


def _never(*args: t.Any) -> t.NoReturn:
    raise AssertionError("waited")


def test_stale_while_revalidate(store: Store) -> None:
    """Past its lifetime a page is regenerated by one request while others get it STALE."""
    site = Site(store)
    assert site.get("/life") == ("MISS", "/life? v1 render 1")
    site.clock.now += 30
    assert site.get("/life")[0] == "HIT"
    site.clock.now += 31  # past the 60 s lifetime, inside the 30 s of staleness
    key = "page:http://localhost\0/life?"
    assert site.cache.store.acquire(key, 30)  # another request is regenerating it
    assert site.get("/life") == ("STALE", "/life? v1 render 1")
    site.cache.store.release(key)
    assert site.get("/life") == ("MISS", "/life? v1 render 2")  # this one regenerates
    assert site.get("/life") == ("HIT", "/life? v1 render 2")
    site.clock.now += 1000  # past staleness too: rendered again
    assert site.get("/life") == ("MISS", "/life? v1 render 3")


def test_stale_zero_readers_wait_for_the_one_render(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With stale=0 concurrent readers wait for the regenerating request instead of
    rendering themselves."""
    waits = _Waiting(monkeypatch, "_await_fresh")
    site = Site(store)
    site.get("/nostale")
    site.clock.now += 61
    site.gate = threading.Event()
    site.started.clear()
    results: list[tuple[str, str]] = []
    threads = [threading.Thread(target=lambda: results.append(site.get("/nostale")))]
    threads[0].start()
    assert site.started.wait(30)  # the first reader holds the lease and renders
    for _ in range(3):
        threads.append(threading.Thread(target=lambda: results.append(site.get("/nostale"))))
        threads[-1].start()
    assert waits.reached(3)  # the three found the lease taken and wait, the render held
    assert site.renders["/nostale"] == 2
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
    with caplog.at_level(logging.WARNING, logger="actionkit"):
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


def test_cached_key_parts_keep_functions_of_one_name_apart(store: Store) -> None:
    """Closures made by one factory share a qualified name; ``key`` keeps the entries of
    each apart (they would read one another's data), and the same key shares them."""
    cache = PageCache(store)
    tables = {"posts": 3, "users": 5}

    def counter(table: str, key: str | list[str] | None = None) -> t.Callable[[], int]:
        @cached(**({} if key is None else {"key": key}))
        def count() -> int:
            return tables[table]

        return count

    from actionkit import context
    from actionkit.context import RequestContext

    token = context.push(RequestContext({}, cache=cache))
    try:
        assert counter("posts")() == 3
        assert counter("users")() == 3  # one name without key: the entry of posts
        assert counter("users", "users")() == 5
        assert counter("posts", "posts")() == 3
        assert counter("posts", ["posts", "v2"])() == 3
        tables["users"] = 6
        assert counter("users", "users")() == 5  # kept under its key
        assert counter("users", ["users"])() == 5  # one part is the string itself
    finally:
        context.pop(token)
    for wrong in (5, ["a", 1], None):
        with pytest.raises(ValueError, match="key is a string or a list of strings"):
            cached(key=wrong)  # type: ignore[arg-type]


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


def test_a_cached_function_carries_the_tags_and_lifetimes_of_those_it_calls(
    store: Store,
) -> None:
    """A cached value computed from another cached function's: revalidating the inner one's
    tag drops the outer value too (and the page that showed it), and it expires with it; a
    value read from one that keeps nothing (ttl=0) is not kept either."""
    clock = Clock()
    cache = PageCache(store, clock=clock)
    db = {"name": "Alice", "views": 0}

    @cached(tags=["user"])
    def user() -> str:
        return db["name"]

    @cached(ttl=10)
    def greeting() -> str:
        return f"hello {db['views']}"

    @cached(ttl=0)
    def now() -> int:
        db["views"] += 1
        return db["views"]

    @cached(tags=["profile"])
    def profile() -> str:
        return f"Profile of {user()}, {greeting()}"

    @cached()
    def counter() -> str:
        return f"seen {now()}"

    from actionkit import context
    from actionkit.context import RequestContext

    ctx = RequestContext({}, cache=cache)
    token = context.push(ctx)
    try:
        assert profile() == "Profile of Alice, hello 0"
        assert sorted(ctx.hints.data_tags) == ["profile", "user"]
        assert ctx.hints.data_expires == clock.now + 10  # the page no longer than greeting()
        db["name"] = "Bob"
        revalidate_tag("user")
        assert profile() == "Profile of Bob, hello 0"
        db["views"] = 5
        clock.now += 11
        assert profile() == "Profile of Bob, hello 5"
        assert counter() == "seen 6" and counter() == "seen 7"  # never kept
    finally:
        context.pop(token)


def test_a_page_showing_a_value_that_is_not_kept_is_not_kept(store: Store) -> None:
    """A page that opted in but shows a cached(ttl=0) value is not stored (it would be stale
    at once), nor remembered as stored: its misses render at once."""
    seen: list[int] = []

    @cached(ttl=0)
    def live() -> int:
        seen.append(1)
        return len(seen)

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("live")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(live()).encode()]

    cache = PageCache(store)
    client = Client(ActionMiddleware(page, cache=cache))
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert cache.lookup(policy.page_key(EnvironBuilder("/").get_environ())) is None
    assert "page:http://localhost\0/?" not in cache._shared


def test_cached_refuses_what_is_not_json() -> None:
    """Arguments and results must be JSON values; the error names the function and value."""

    @cached()
    def echo(value: t.Any) -> t.Any:
        return value

    with pytest.raises(TypeError, match=r"echo got <object object .*> for 'value'"):
        echo(object())
    with pytest.raises(TypeError, match=r"must return a JSON value .*, not \{1, 2\}"):
        cached()(lambda: {1, 2})()
    with pytest.raises(ValueError, match="ttl"):
        cached(ttl=-1)
    with pytest.raises(ValueError, match="non-empty strings"):
        cached(tags=["ok", ""])
    with pytest.raises(TypeError, match="argument"):
        echo(1, 2)  # a bad call raises the usual TypeError, not a cache error


def test_cached_refuses_at_once_what_could_never_be_cached() -> None:
    """Mistakes that would otherwise show on every call, after the computation, or never:
    an async function or a generator, a tag naming a keyword-only parameter by position or
    reading an attribute, and a ttl that is not a finite number of seconds."""

    async def fetch_post(post_id: int) -> int:
        return post_id

    def posts() -> t.Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="fetch_post is async"):
        cached()(fetch_post)
    with pytest.raises(TypeError, match="posts is a generator"):
        cached()(posts)

    def feed(user_id: int, *, page: int = 1) -> list[int]:
        return [user_id, page]

    with pytest.raises(ValueError, match=r"\{1\}, but the function takes \['user_id'\]"):
        cached(tags=["feed:{1}"])(feed)
    assert cached(tags=["feed:{0}:{page}"])(feed).uncached(3, page=2) == [3, 2]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"reads an attribute \(\{0.id\}\)"):
        cached(tags=["feed:{0.id}"])(feed)
    cached(tags=["feed:{0[a.b]}"])(feed)  # a dict key with a dot is no attribute

    for ttl in (float("nan"), float("inf"), 10**400, True, "60", -1):
        with pytest.raises(ValueError, match="finite number of seconds"):
            cached(ttl=ttl)  # type: ignore[arg-type]


def test_cached_keys_keep_apart_what_json_would_merge_and_stay_short(store: Store) -> None:
    """A dict argument with keys that are not strings is refused (JSON would make ``{1: x}``
    and ``{"1": x}`` one key); long arguments are named by their hash, so a long text argument
    makes no long key (keys are not counted against max_bytes)."""
    keys: list[str] = []
    put = store.set
    store.set = lambda key, *rest: keys.append(key) or put(key, *rest)  # type: ignore[method-assign]
    cache = PageCache(store)
    calls: list[t.Any] = []

    @cached()
    def word_count(text: t.Any) -> int:
        calls.append(text)
        return len(text.split()) if isinstance(text, str) else len(text)

    from actionkit import context
    from actionkit.context import RequestContext

    token = context.push(RequestContext({}, cache=cache))
    try:
        with pytest.raises(TypeError, match=r"strings as the keys of a dict \(not 1\)"):
            word_count({1: "x"})
        with pytest.raises(TypeError, match=r"not True"):
            word_count([{"a": {True: 1}}])
        looped: list[t.Any] = []
        looped.append(looped)
        with pytest.raises(TypeError, match=r"its arguments must be JSON values"):
            word_count(looped)
        assert word_count({"1": "x"}) == 1
        long_a, long_b = "word " * 20_000, "word " * 19_999 + "other"
        assert (word_count(long_a), word_count(long_b), word_count(long_a)) == (20_000,) * 3
        assert calls == [{"1": "x"}, long_a, long_b]  # the third call was a hit
    finally:
        context.pop(token)
    assert len(keys) == 3 and max(len(key) for key in keys) < 200, keys


def test_cached_values_read_in_a_thread_of_ones_own_tag_the_page_in_a_copied_context(
    store: Store,
) -> None:
    """As documented: a pool thread does not inherit the value being computed; run in a copy
    of the context, what it reads tags the outer value, which revalidate_tag then drops."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    data = {1: "a1", 2: "b1"}
    pool = ThreadPoolExecutor(2)

    @cached(tags=["post:{0}"])
    def load_post(post_id: int) -> str:
        return data[post_id]

    @cached(tags=["front"])
    def front() -> list[str]:
        runs = [pool.submit(contextvars.copy_context().run, load_post, i) for i in (1, 2)]
        return [run.result() for run in runs]

    from actionkit import context
    from actionkit.context import RequestContext

    token = context.push(RequestContext({}, cache=PageCache(store)))
    try:
        assert front() == ["a1", "b1"]
        data[1] = "a2"
        revalidate_tag("post:1")
        assert front() == ["a2", "b1"]
    finally:
        context.pop(token)
        pool.shutdown()


def test_a_cached_value_computed_for_a_page_goes_with_the_page(store: Store) -> None:
    """A value computed while a page renders is dropped by revalidate_path of that page or of
    a layout above it, as Next.js tags such data with the route: the page shows the new data
    without a tag of its own. One computed elsewhere (an action) is not."""
    data = {"title": "old"}
    loads: list[str] = []

    @cached()
    def title() -> str:
        loads.append(data["title"])
        return data["title"]

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("p")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [title().encode()]

    registry = Registry()

    @registry.action
    def read() -> str:
        return title()

    cache = PageCache(store)
    client = ActionClient(ActionMiddleware(view, cache=cache, registry=registry))

    def show(path: str) -> tuple[str, str]:
        with client.get(path) as response:
            return response.headers["Actionkit-Cache"], response.text

    assert show("/p/1") == ("MISS", "old")
    data["title"] = "new"
    cache.revalidate_path("/p/2")
    assert show("/p/1") == ("HIT", "old")
    cache.revalidate_path("/p/1")
    assert show("/p/1") == ("MISS", "new") and loads == ["old", "new"]
    data["title"] = "newer"
    cache.revalidate_path("/", "layout")
    assert show("/p/1") == ("MISS", "newer") and loads == ["old", "new", "newer"]
    cache.revalidate_path("/p/1")
    data["title"] = "newest"
    assert client.call(read).json["result"] == "newest"  # computed by an action: no page's
    cache.revalidate_path("/p/1")
    assert client.call(read).json["result"] == "newest" and len(loads) == 4


def test_a_body_made_as_it_is_sent_tags_its_page_with_the_data_it_reads(store: Store) -> None:
    """A page whose body is a generator reading a cached() value (a streamed template) runs
    it with the page's context current: the page carries the value's tags, and
    revalidate_tag of the data drops it (it was kept, showing the old value)."""
    data = {"v": "old"}

    @cached(tags=["posts"])
    def value() -> str:
        return data["v"]

    def app(environ: t.Any, start_response: t.Any) -> t.Iterator[bytes]:
        cache_tag("page")
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> t.Iterator[bytes]:
            yield b"v="
            yield value().encode()

        return body()

    cache = PageCache(store)
    client = ActionClient(ActionMiddleware(app, cache=cache, registry=Registry()))

    def show() -> tuple[str, str]:
        with client.get("/s") as response:
            return response.headers["Actionkit-Cache"], response.text

    assert show() == ("MISS", "v=old") and show() == ("HIT", "v=old")
    data["v"] = "new"
    cache.revalidate_tag("posts")
    assert show() == ("MISS", "v=new")


def test_cached_outside_any_context_with_several_stores_says_which_it_uses(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With middlewares on two stores and no request nor app context, cached() cannot know
    which store the value belongs to: it uses the default store, and says so once."""
    from actionkit.cache import api

    monkeypatch.setattr(api, "_ambiguous", [])
    monkeypatch.setattr(api, "_finders", [])
    apps = [ActionMiddleware(lambda e, s: [], cache=MemoryStore()) for _ in range(2)]

    @cached()
    def answer() -> int:
        return 42

    with caplog.at_level(logging.WARNING, logger="actionkit"):
        assert (answer(), answer()) == (42, 42)
    assert caplog.text.count("uses the process-wide default store") == 1
    assert all(app.cache is not None for app in apps)


def test_revalidation_outside_requests_uses_the_default_store(tmp_path: Path) -> None:
    """In a process whose middlewares use the default store (cache=None), revalidate_* outside
    a request reach it (a fresh process: the test run's own middlewares use many stores)."""
    import subprocess
    import sys

    script = tmp_path / "default_store.py"
    script.write_text(
        """
import pytest
from werkzeug.test import Client
from actionkit import ActionMiddleware, cache_tag, revalidate_path, revalidate_tag
from actionkit.cache import default_cache
from actionkit.stores import default_store

assert default_cache().store is default_store()
site_app = ActionMiddleware(lambda e, s: (cache_tag("dflt"), s("200 OK", []), [b"x"])[2])
assert site_app.cache is not None and site_app.cache.store is default_store()
client = Client(site_app)

def status():
    with client.get("/dflt-page") as response:
        return response.headers["Actionkit-Cache"] + response.text

assert status() == "MISSx"
assert status() == "HITx"
revalidate_tag("dflt")
assert status() == "MISSx"
revalidate_path("/dflt-page")
assert status() == "MISSx"
with pytest.raises(ValueError, match="'page' or 'layout'"):
    revalidate_path("/x", "tree")
with pytest.raises(ValueError, match="starting with '/'"):
    revalidate_path("x")
with pytest.raises(ValueError, match="non-empty"):
    revalidate_tag("")
print("ok")
"""
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_a_revalidation_in_a_process_without_an_app_says_it_reached_nothing(
    tmp_path: Path,
) -> None:
    """A job that revalidates before (or without) making the app reaches only its own empty
    memory store: the running app's page stayed stale, silently. It is logged once; a process
    that has made a middleware, or holds data in the default store, is not warned."""
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(
        """
import sys
from actionkit import ActionMiddleware, cached, revalidate_path, revalidate_tag

if sys.argv[1] == "bare":
    revalidate_tag("posts")
    revalidate_path("/posts")
elif sys.argv[1] == "data":
    @cached(tags=["posts"])
    def count():
        return 1
    count()
    revalidate_tag("posts")
elif sys.argv[1] == "off":
    app = ActionMiddleware(lambda e, s: [], secret_key="k" * 32, cache=False)
    revalidate_tag("posts")
else:
    app = ActionMiddleware(lambda e, s: [], secret_key="k" * 32)
    revalidate_tag("posts")
"""
    )
    logged = {}
    for case in ("bare", "data", "app", "off"):
        done = subprocess.run(
            [sys.executable, str(script), case], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        logged[case] = done.stderr.count("no actionkit middleware has been made")
    assert logged == {"bare": 1, "data": 0, "app": 0, "off": 0}


# -- PageCache on its own, as the middleware drives it ----------------------------------------


class Closing:
    """A response iterable that records whether it was closed."""

    closed: list[Closing] = []

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.was_closed = False

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.was_closed = True


class Page:
    """A tiny WSGI app that pushes the request context itself, as the middleware does."""

    def __init__(self, cache: PageCache, view: t.Callable[..., t.Any]) -> None:
        self.cache = cache
        self.view = view
        self.calls = 0
        self.returned: list[Closing] = []

    def __call__(self, environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        from actionkit import context
        from actionkit.context import RequestContext

        self.calls += 1
        token = context.push(RequestContext(environ, cache=self.cache))
        try:
            result = self.view(environ, start_response)
        finally:
            context.pop(token)
        if isinstance(result, list):
            result = Closing(result)
            self.returned.append(result)
        return t.cast(t.Iterable[bytes], result)

    def get(self, path: str = "/p", method: str = "GET", **headers: str) -> tuple[str, bytes]:
        from werkzeug.test import EnvironBuilder

        environ = EnvironBuilder(path, method=method, headers=headers).get_environ()
        got: list[t.Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
            got.append(dict(headers))
            return written.append

        body = self.cache.serve(self, environ, start_response)
        try:
            data = b"".join(body)
            data = b"".join(written) + data
        finally:
            if hasattr(body, "close"):
                body.close()
        return got[0]["Actionkit-Cache"], data


def tagged_view(environ: t.Any, start_response: t.Any) -> list[bytes]:
    cache_tag("t")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"page ", environ.get("QUERY_STRING", "").encode()]


def test_serve_hit_does_not_call_the_app_and_every_iterable_is_closed(store: Store) -> None:
    """MISS calls the app and closes its iterable; HIT and HEAD never call it."""
    page = Page(PageCache(store), tagged_view)
    assert page.get() == ("MISS", b"page ")
    assert page.get() == ("HIT", b"page ")
    assert page.get(method="HEAD") == ("HIT", b"")
    assert page.calls == 1
    assert all(r.was_closed for r in page.returned)


def test_head_on_a_miss_is_not_stored(store: Store) -> None:
    """A HEAD that misses goes to the app and stores nothing (it has no body to keep)."""
    page = Page(PageCache(store), tagged_view)
    assert page.get(method="HEAD")[0] == "BYPASS"
    assert page.get() == ("MISS", b"page ")


def test_authorization_is_never_read_nor_stored(store: Store) -> None:
    """A request with Authorization bypasses the cache both ways: its page is the user's own
    and must never reach anybody else."""
    page = Page(PageCache(store), tagged_view)
    assert page.get(Authorization="Basic eDp5") == ("BYPASS", b"page ")
    assert page.get() == ("MISS", b"page ")
    assert page.get(Authorization="Basic eDp5") == ("BYPASS", b"page ")
    assert page.calls == 3


def test_render_without_the_cache_neither_reads_nor_stores(store: Store) -> None:
    """render(use_cache=False) always calls the app and keeps nothing; use_cache=True is like
    serve: a hit when not invalidated, a stored miss otherwise."""
    from werkzeug.test import EnvironBuilder

    cache = PageCache(store)
    page = Page(cache, tagged_view)
    environ = EnvironBuilder("/r").get_environ()
    assert cache.render(page, dict(environ), use_cache=False).body == b"page "
    assert cache.render(page, dict(environ), use_cache=True).headers[-1] == (
        "Actionkit-Cache",
        "MISS",
    )
    rendered = cache.render(page, dict(environ), use_cache=True)
    assert (rendered.status_code, rendered.body) == (200, b"page ")
    assert ("Actionkit-Cache", "HIT") in rendered.headers
    assert cache.render(page, dict(environ), use_cache=False).body == b"page "
    assert page.calls == 3 and all(r.was_closed for r in page.returned)


def test_pages_written_through_write_are_stored_whole(store: Store) -> None:
    """Bytes sent through start_response's legacy write() callable are part of the entry."""

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("t")
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    page = Page(PageCache(store), view)
    assert page.get() == ("MISS", b"written returned")
    assert page.get() == ("HIT", b"written returned")


def test_generator_apps_are_stored_when_their_headers_opt_in(store: Store) -> None:
    """An app that calls start_response lazily (a generator) is recorded too; one that does
    not opt in streams through."""

    def view(environ: t.Any, start_response: t.Any) -> t.Iterator[bytes]:
        headers = [("Content-Type", "text/plain")]
        if environ["PATH_INFO"] == "/p":
            headers.append(("Cache-Control", "s-maxage=60"))
        start_response("200 OK", headers)
        yield b"one "
        yield b"two"

    page = Page(PageCache(store), view)
    assert page.get() == ("MISS", b"one two")
    assert page.get() == ("HIT", b"one two")
    assert page.get("/other") == ("BYPASS", b"one two")
    assert page.get("/other") == ("BYPASS", b"one two")
    assert page.calls == 3


def test_an_app_failing_mid_answer_is_not_stored(store: Store) -> None:
    """When the app raises while its body is produced, nothing is stored and it is closed."""
    closed: list[bool] = []

    def view(environ: t.Any, start_response: t.Any) -> t.Iterator[bytes]:
        cache_tag("t")
        start_response("200 OK", [])
        try:
            yield b"half"
            raise RuntimeError("database went away")
        finally:
            closed.append(True)

    page = Page(PageCache(store), view)
    with pytest.raises(RuntimeError):
        page.get()
    assert closed == [True]
    with pytest.raises(RuntimeError):
        page.get()
    assert page.calls == 2


def test_cache_life_zero_stores_nothing(store: Store) -> None:
    """cache_life(0) makes a page out of date at once: it is not stored."""

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_life(0)
        start_response("200 OK", [])
        return [b"x"]

    page = Page(PageCache(store), view)
    assert page.get()[0] == "BYPASS" and page.get()[0] == "BYPASS"


def test_stale_entries_are_regenerated_by_exactly_one_request(store: Store) -> None:
    """8 concurrent readers of an expired page: one renders it, the others get it STALE at
    once instead of waiting or rendering too."""
    clock = Clock()
    gate = threading.Event()
    regenerating = threading.Event()
    renders: list[int] = []

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_life(10, stale=100)
        renders.append(1)
        if len(renders) > 1:
            regenerating.set()
            assert gate.wait(60)
        start_response("200 OK", [])
        return [b"render %d" % len(renders)]

    page = Page(PageCache(store, clock=clock), view)
    assert page.get() == ("MISS", b"render 1")
    clock.now += 20
    results: list[tuple[str, bytes]] = []
    answered = threading.Semaphore(0)

    def read() -> None:
        results.append(page.get())
        answered.release()

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(7):  # the 7 STALE answers arrive while the regeneration is held
            assert answered.acquire(timeout=60)
        assert regenerating.wait(60)  # the one regeneration is under way, held at the gate
        assert len(renders) == 2 and not gate.is_set()
        assert sorted(results) == [("STALE", b"render 1")] * 7
    finally:
        gate.set()  # never leave a thread held for the next test
        for thread in threads:
            thread.join()
    assert sorted(results)[0] == ("MISS", b"render 2") and len(renders) == 2
    assert page.get() == ("HIT", b"render 2")


# -- pages and the data cache -------------------------------------------------------------------


def test_a_page_carries_the_tags_of_the_data_it_used(store: Store) -> None:
    """revalidate_tag("post:1") drops get_post(1) and also every cached page that showed it."""
    db = {1: "first", 2: "second"}

    @cached(tags=["post:{post_id}"])
    def get_post(post_id: int) -> str:
        return db[post_id]

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("page")
        post_id = int(environ["QUERY_STRING"])
        start_response("200 OK", [])
        return [get_post(post_id).encode()]

    cache = PageCache(store)
    page = Page(cache, view)
    assert page.get("/p?1") == ("MISS", b"first") and page.get("/p?2") == ("MISS", b"second")
    db[1] = "edited"
    revalidate_tag_in_cache(cache, "post:1")
    assert page.get("/p?1") == ("MISS", b"edited")
    assert page.get("/p?2") == ("HIT", b"second")


def revalidate_tag_in_cache(cache: PageCache, tag: str) -> None:
    from actionkit import context
    from actionkit.context import RequestContext

    token = context.push(RequestContext({}, cache=cache, in_action=True))
    try:
        revalidate_tag(tag)
    finally:
        context.pop(token)


def test_a_page_is_not_fresher_than_its_data(store: Store) -> None:
    """A page kept until revalidated that shows a value with ttl=30 is fresh for 30 s only."""
    clock = Clock()
    n = [0]

    @cached(ttl=30)
    def counter() -> int:
        n[0] += 1
        return n[0]

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("page")
        start_response("200 OK", [])
        return [str(counter()).encode()]

    page = Page(PageCache(store, clock=clock), view)
    assert page.get() == ("MISS", b"1")
    clock.now += 29
    assert page.get() == ("HIT", b"1")
    clock.now += 2
    assert page.get() == ("MISS", b"2")


def test_data_tags_do_not_make_a_page_cacheable(store: Store) -> None:
    """Using cached() data does not opt a page in by itself."""

    @cached(tags="d")
    def value() -> str:
        return "v"

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [])
        return [value().encode()]

    page = Page(PageCache(store), view)
    assert page.get() == ("BYPASS", b"v") and page.get() == ("BYPASS", b"v")


def test_cached_tags_by_name_and_one_key_per_call(store: Store) -> None:
    """Tags may name arguments; f(1), f(post_id=1) and f(1, "en") (the default) share one
    entry; a tag naming an unknown argument is refused when decorating."""
    calls: list[int] = []
    cache = PageCache(store)

    @cached(tags=["post:{post_id}", "lang:{1}"])
    def get_post(post_id: int, lang: str = "en") -> list[t.Any]:
        calls.append(post_id)
        return [post_id, lang]

    from actionkit import context
    from actionkit.context import RequestContext

    token = context.push(RequestContext({}, cache=cache))
    try:
        assert get_post(1) == [1, "en"] == get_post(post_id=1) == get_post(1, "en")
        assert calls == [1]
        cache.revalidate_tag("lang:en")
        assert get_post(1) == [1, "en"] and calls == [1, 1]
        cache.revalidate_tag("post:1")
        assert get_post(post_id=1, lang="en") == [1, "en"] and calls == [1, 1, 1]
    finally:
        context.pop(token)
    with pytest.raises(ValueError, match=r"'post:\{id\}'.*\['post_id'\]"):
        cached(tags="post:{id}")(lambda post_id: post_id)
    with pytest.raises(ValueError, match=r"\{3\}"):
        cached(tags="post:{3}")(lambda post_id: post_id)


# -- concurrency through the whole page cache ---------------------------------------------------


class VersionedSite:
    """Data with a version; a page showing it that takes time to render; a checker that fails
    on any answer older than the last revalidation that had returned when the request began.

    It counts the races that happened: reads under way while a revalidation ran (begun before
    it completed, ended after it began), and renders under way when a revalidation begun after
    they read the data completed (pages the store must refuse)."""

    def __init__(self, cache: PageCache) -> None:
        self.cache = cache
        self.version = 0
        self.completed = 0
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.overlapping_reads = 0
        self.raced_renders = 0
        self.page = Page(cache, self.view)

    def view(self, environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("data")
        version = self.version  # read the data first, then take time to render
        threading.Event().wait(random.random() / 500)
        if self.completed > version:
            with self.lock:
                self.raced_renders += 1
        start_response("200 OK", [])
        return [str(version).encode()]

    def revalidate(self) -> None:
        with self.lock:
            self.version += 1
            version = self.version
        self.cache.revalidate_tag("data")
        with self.lock:
            self.completed = max(self.completed, version)

    def read(self) -> str:
        floor = self.completed
        status, body = self.page.get("/v")
        if int(body) < floor:
            self.errors.append(f"{status} version {int(body)} after revalidation {floor}")
        if self.version > floor:  # one not complete when the read began had begun by its end
            with self.lock:
                self.overlapping_reads += 1
        return status

    def raced_enough(self) -> bool:
        return self.overlapping_reads >= 20 and self.raced_renders >= 3


def test_read_your_writes_through_the_page_cache(store: Store) -> None:
    """8 threads mixing cached reads, slow renders and revalidations never get a page older
    than a revalidation that had completed; reads did overlap revalidations, and renders did
    see a revalidation complete while they ran."""
    site = VersionedSite(PageCache(store))
    statuses: list[str] = []

    def work(index: int) -> None:
        # At least 300 rounds each, and on until the races were seen (or the rounds run out).
        for rounds in range(20_000):
            if rounds >= 300 and site.raced_enough():
                return
            if index < 2 and rounds % 4 == 0:
                site.revalidate()
            else:
                statuses.append(site.read())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert site.errors == []
    assert site.raced_enough(), (site.overlapping_reads, site.raced_renders)
    assert site.version > 5 and "HIT" in statuses and "MISS" in statuses


def _page_process(
    path: str, data: str, role: str, started: t.Any, done: t.Any, queue: t.Any
) -> None:
    """One worker process serving the versioned page through PageCache over SQLite (the
    reader), or revalidating it for as long as the reader reads (the writer).

    The reader counts the races that happened: reads under way while a revalidation ran,
    and renders under way when a revalidation begun after they read the data completed."""
    import sqlite3 as sqlite
    import time as time_

    cache = PageCache(SQLiteStore(path))
    db = sqlite.connect(data, timeout=10, isolation_level=None)
    errors: list[str] = []
    seen: set[str] = set()
    raced = [0]

    def view(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("data")
        (version,) = db.execute("SELECT version FROM data").fetchone()
        time_.sleep(random.random() / 1000)
        (completed,) = db.execute("SELECT completed FROM data").fetchone()
        if completed > version:
            raced[0] += 1
        start_response("200 OK", [])
        return [str(version).encode()]

    page = Page(cache, view)
    rounds = overlapping = 0
    try:
        if role == "writer":
            # From the reader's first round to its last (the rounds bound a reader that died).
            while started.wait(60) and not done.is_set() and rounds < 20_000:
                rounds += 1
                db.execute("UPDATE data SET version = version + 1")
                (version,) = db.execute("SELECT version FROM data").fetchone()
                cache.revalidate_tag("data")
                db.execute("UPDATE data SET completed = max(completed, ?)", (version,))
                time_.sleep(0.002)
        else:
            started.set()
            # At least 200 rounds, and on until the races and a hit were seen.
            while rounds < 20_000 and not (
                rounds >= 200 and overlapping >= 20 and raced[0] >= 3 and "HIT" in seen
            ):
                rounds += 1
                (floor,) = db.execute("SELECT completed FROM data").fetchone()
                status, body = page.get("/v")
                seen.add(status)
                if int(body) < floor:
                    errors.append(f"{status} {int(body)} after {floor}")
                (version,) = db.execute("SELECT version FROM data").fetchone()
                if version > floor:
                    overlapping += 1
    finally:
        done.set()
        t.cast(SQLiteStore, cache.store).close()
        db.close()
    queue.put((role, rounds, errors, sorted(seen), overlapping, raced[0]))


def test_read_your_writes_across_processes_through_the_page_cache(tmp_path: Path) -> None:
    """Two OS processes share one SQLiteStore: the reader's pages are never older than a
    revalidation the writer had completed, and it does get hits in between; its reads did
    overlap the writer's revalidations, and its renders did see one complete while they ran."""
    import multiprocessing

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
        spawn.Process(target=_page_process, args=(path, data, role, started, done, queue))
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
    rounds, errors, seen, overlapping, raced = by_role["reader"]
    assert errors == [] and "HIT" in seen
    assert overlapping >= 20 and raced >= 3, (rounds, overlapping, raced)
    assert by_role["writer"][0] > 0


def test_cache_hints_are_recorded_and_checked() -> None:
    """cache_tag() and cache_life() record the page's cache settings; bad values are refused."""
    from actionkit import cache_life, context
    from actionkit.context import RequestContext

    ctx = RequestContext({})
    token = context.push(ctx)
    cache_tag("posts", "post:1")
    cache_life(60, stale=5)
    assert ctx.hints.tags == {"posts", "post:1"}
    assert (ctx.hints.ttl, ctx.hints.stale) == (60.0, 5.0)
    with pytest.raises(ValueError, match="non-empty"):
        cache_tag("")
    with pytest.raises(ValueError, match=">= 0"):
        cache_life(-1)
    context.pop(token)


# -- test clients: answers read but never closed ------------------------------------------------


def _tagged_page_app(renders: list[int]) -> t.Any:
    def app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        cache_tag("p")
        renders.append(1)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"page ", str(len(renders)).encode()]

    return app


def test_a_page_read_whole_but_not_closed_is_stored() -> None:
    """`r = client.get(url); r.data` without closing (the usual test) stores the page: it is
    stored once its body has been iterated whole."""
    renders: list[int] = []
    client = Client(ActionMiddleware(_tagged_page_app(renders), cache=MemoryStore()))
    first = client.get("/p")
    assert first.data == b"page 1" and first.headers["Actionkit-Cache"] == "MISS"
    second = client.get("/p")
    assert second.data == b"page 1" and second.headers["Actionkit-Cache"] == "HIT"
    assert len(renders) == 1


def test_a_render_nobody_iterates_makes_no_request_of_its_thread_wait() -> None:
    """After a revalidation, an answer the test never reads leaves a render "under way"; the
    next request of the same thread renders at once instead of waiting for it."""
    renders: list[int] = []
    cache = PageCache(MemoryStore(), wait=30)
    client = Client(ActionMiddleware(_tagged_page_app(renders), cache=cache))
    assert client.get("/p").data == b"page 1"
    cache.revalidate_tag("p")
    unread = client.get("/p")  # a render that nobody iterates
    render = _watch_render(cache, "/p")
    again = client.get("/p")
    assert again.data == b"page 3" and render.waiters == 0
    assert client.get("/p").headers["Actionkit-Cache"] == "HIT"
    unread.close()


def test_a_page_that_read_cached_data_before_an_action_revalidated_it_is_not_stored(
    store: Store,
) -> None:
    """A render that begins after an action's writes, but reads a ``cached()`` value before
    the action's revalidation of it is delivered (with the page rendered for the action's
    answer), shows the old value: it is not stored. (A render begun after the writes is
    stored despite a revalidation made during it only when it read the data at its source.)"""
    data = {"version": 1}
    rendering, read, answered = threading.Event(), threading.Event(), threading.Event()

    @cached(tags=["posts"])
    def load() -> int:
        return data["version"]

    def page(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        name = threading.current_thread().name
        if environ["PATH_INFO"] == "/list":
            cache_tag("list")  # and "posts", through load()
            body = f"list v{load()}"
            if name == "reader":
                read.set()  # the old value, read from the data cache
                assert answered.wait(10)
        else:
            body = "the form"
            if name == "actor":
                rendering.set()  # the action is over; its revalidation goes out after this
                assert read.wait(10)
        start_response("200 OK", [("Content-Type", "text/html")])
        return [body.encode()]

    registry = Registry()

    @registry.action
    def publish() -> None:
        data["version"] = 2
        revalidate_tag("posts")

    cache = PageCache(store)
    client = ActionClient(ActionMiddleware(page, cache=cache, registry=registry))
    assert client.get("/list").text == "list v1"  # the page and the value stored
    cache.revalidate_tag("list")  # the page dropped, the value kept
    actor = threading.Thread(
        target=lambda: client.call(publish, path="/form"), name="actor", daemon=True
    )
    actor.start()
    assert rendering.wait(10)
    results: list[str] = []
    reader = threading.Thread(
        target=lambda: results.append(client.get("/list").text), name="reader", daemon=True
    )
    reader.start()
    actor.join(10)
    answered.set()
    reader.join(10)
    # The reader's page began before the revalidation was delivered (RedisStore delivers it
    # before the action's page is rendered: the reader read the new value).
    assert results in (["list v1"], ["list v2"])
    assert client.get("/list").text == "list v2"  # not the old page from the cache


def test_a_page_for_a_user_the_server_authenticated_is_neither_read_nor_stored() -> None:
    """REMOTE_USER (the server's own authentication: Apache, SSO front ends) makes a request
    somebody's, as Authorization does: never answered from the cache, never stored."""

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("greeting")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"Hello {environ.get('REMOTE_USER', 'guest')}".encode()]

    client = Client(ActionMiddleware(app, cache=PageCache(MemoryStore())))
    alice = client.get("/", environ_overrides={"REMOTE_USER": "alice"})
    assert (alice.headers["Actionkit-Cache"], alice.text) == ("BYPASS", "Hello alice")
    assert client.get("/").text == "Hello guest"
    bob = client.get("/", environ_overrides={"REMOTE_USER": "bob"})
    assert (bob.headers["Actionkit-Cache"], bob.text) == ("BYPASS", "Hello bob")


def test_a_head_request_does_not_hold_up_the_regeneration_of_a_page(store: Store) -> None:
    """A HEAD of an expired page (an uptime check) renders without taking the page's lease:
    its render is never stored, so a GET meanwhile regenerates the page rather than wait for
    it."""
    site = Site(store)
    site.get("/nostale")
    site.clock.now += 61
    site.gate = threading.Event()
    head = threading.Thread(target=lambda: site.client.head("/nostale").close())
    head.start()
    got: list[tuple[str, str]] = []
    get = threading.Thread(target=lambda: got.append(site.get("/nostale")))
    try:
        deadline = time.monotonic() + 2  # (a GET waiting for the HEAD gives up after 5 s)
        while site.renders["/nostale"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        get.start()
        while site.renders["/nostale"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert site.renders["/nostale"] == 3  # the GET renders too, at once
    finally:
        site.gate.set()
        head.join()
        if get.is_alive() or get.ident is not None:
            get.join()
    assert got == [("MISS", "/nostale? v1 render 3")]
    assert site.get("/nostale") == ("HIT", "/nostale? v1 render 3")


def test_a_page_that_now_varies_is_never_answered_with_its_marker(store: Store) -> None:
    """A page stored for everyone expires and its regeneration answers with Vary: the request
    waiting for that regeneration gets a page (its own render), not the marker that now stands
    at the page's key (it was a 500)."""
    state = {"vary": False}
    gate = threading.Event()

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_life(1, stale=0)
        headers = [("Content-Type", "text/plain")]
        if state["vary"]:
            headers.append(("Vary", "Accept-Language"))
            assert gate.wait(10)
        start_response("200 OK", headers)
        return [f"page {environ.get('HTTP_ACCEPT_LANGUAGE', '')}".encode()]

    client = Client(ActionMiddleware(app, cache=PageCache(store, wait=5)))
    with client.get("/") as first:
        assert (first.text, first.headers["Actionkit-Cache"]) == ("page ", "MISS")
    time.sleep(1.1)
    state["vary"] = True
    got: list[t.Any] = []

    def get() -> None:
        response = client.get("/", headers={"Accept-Language": "fr"})
        got.append((response.status_code, response.text))

    threads = [threading.Thread(target=get) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join()
    assert got == [(200, "page fr")] * 2


def _blog_under_a_dispatcher(renders: list[str]) -> tuple[PageCache, Client]:
    """A cache and a client of a blog at /blog under Werkzeug's DispatcherMiddleware, inside
    the middleware; the blog's pages opt in, note their full path in ``renders`` and are
    there but for /blog/gone (a 404)."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    def blog(environ: t.Any, start_response: t.Any) -> list[bytes]:
        cache_tag("blog")
        renders.append(environ["SCRIPT_NAME"] + environ["PATH_INFO"])
        status = "404 Not Found" if environ["PATH_INFO"] == "/gone" else "200 OK"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"blog"]

    def root(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 Not Found", [])
        return []

    cache = PageCache(MemoryStore())
    return cache, Client(ActionMiddleware(DispatcherMiddleware(root, {"/blog": blog}), cache=cache))


def test_a_dispatcher_inside_the_middleware_keeps_its_pages_cached() -> None:
    """Werkzeug's DispatcherMiddleware inside the middleware moves /blog from PATH_INFO to
    SCRIPT_NAME while the page renders: the page is stored under the key it is looked up by,
    and revalidate_path() of its URL drops it."""
    renders: list[str] = []
    cache, client = _blog_under_a_dispatcher(renders)

    def get() -> str:
        with client.get("/blog/posts") as response:
            assert response.data == b"blog"
            return str(response.headers["Actionkit-Cache"])

    assert [get(), get()] == ["MISS", "HIT"]
    cache.revalidate_path("/blog/posts")
    assert [get(), get()] == ["MISS", "HIT"]
    assert renders == ["/blog/posts"] * 2


def test_a_page_for_a_user_an_inner_middleware_authenticated_is_not_stored() -> None:
    """An authentication middleware inside the cache's sets REMOTE_USER while the page
    renders: that page is somebody's and is not stored for the next visitor."""

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        if environ.get("HTTP_X_TICKET") == "alice's":
            environ["REMOTE_USER"] = "alice"
        cache_tag("greeting")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"Hello {environ.get('REMOTE_USER', 'guest')}".encode()]

    client = Client(ActionMiddleware(app, cache=PageCache(MemoryStore())))
    alice = client.get("/", headers={"X-Ticket": "alice's"})
    assert (alice.text, alice.headers["Actionkit-Cache"]) == ("Hello alice", "BYPASS")
    assert Client(client.application).get("/").text == "Hello guest"


def test_a_page_under_a_dispatcher_inside_that_is_not_stored_is_not_waited_for() -> None:
    """A page looked up under one key and rendered under a dispatcher that moved its mount
    point, then not stored (a 404), is no longer taken for a page stored for everyone (its
    misses would wait for each other's renders)."""
    cache, client = _blog_under_a_dispatcher([])
    with client.get("/blog/post") as response:
        assert response.data == b"blog"
    cache.revalidate_path("/blog/post")
    looked_up = policy.page_key({"HTTP_HOST": "localhost", "PATH_INFO": "/blog/gone"})
    cache._shared[looked_up] = None  # as a page stored for everyone before it was gone
    with client.get("/blog/gone") as response:
        assert response.status_code == 404 and response.data == b"blog"
    assert looked_up not in cache._shared
