"""The storage policy, a pure function of status, headers and render hints."""

from __future__ import annotations

import logging
import typing as t

import pytest
from werkzeug.test import Client

from actionkit import ActionMiddleware, cache_tag, cookies
from actionkit.cache import policy
from actionkit.cache.policy import Plan, page_key, page_path, plan, vary_key
from actionkit.context import RenderHints
from actionkit.stores import MemoryStore

OK = "200 OK"


def _hints(**values: t.Any) -> RenderHints:
    hints = RenderHints()
    for name, value in values.items():
        setattr(hints, name, value)
    return hints


@pytest.mark.parametrize(
    ("status", "headers", "hints", "since", "expected"),
    [
        pytest.param(OK, [], _hints(), 0, None, id="not-opted-in"),
        pytest.param(OK, [("Cache-Control", "no-store")], _hints(), 0, None, id="no-store-alone"),
        pytest.param(
            OK, [("Set-Cookie", "a=1")], _hints(tags={"t"}), 0, "it sets a cookie", id="cookie"
        ),
        pytest.param(
            OK,
            [("Cache-Control", "private")],
            _hints(tags={"t"}),
            0,
            "Cache-Control: private",
            id="private",
        ),
        pytest.param(OK, [("Vary", "*")], _hints(tags={"t"}), 0, "it varies on *", id="vary-star"),
        pytest.param(
            OK,
            [],
            _hints(tags={"t"}, cookies_read=True),
            0,
            "it read the request's cookies without Vary: Cookie",
            id="cookies-read",
        ),
        pytest.param(
            "404 NOT FOUND", [], _hints(tags={"t"}), 0, "its status is '404 NOT FOUND'", id="404"
        ),
        pytest.param(OK, [], _hints(tags={"t"}), -1, "the store is unavailable", id="store-down"),
        pytest.param(
            OK,
            [("Content-Security-Policy", "script-src 'strict-dynamic' 'nonce-r4nd0m'")],
            _hints(tags={"t"}),
            0,
            "its Content-Security-Policy has a nonce",
            id="csp-nonce",
        ),
        pytest.param(
            OK,
            [("Content-Security-Policy-Report-Only", "script-src 'NONCE-x'")],
            _hints(tags={"t"}),
            0,
            "its Content-Security-Policy has a nonce",
            id="csp-report-only-nonce",
        ),
        pytest.param(OK, [], _hints(ttl=0.0), 0, "its lifetime is 0", id="ttl-0"),
        pytest.param(
            OK, [("Cache-Control", "s-maxage=0")], None, 0, "its lifetime is 0", id="s-maxage-0"
        ),
        pytest.param(
            OK,
            [("Cache-Control", "s-maxage=-5")],
            None,
            0,
            "its lifetime is 0",
            id="s-maxage-negative",
        ),
        pytest.param(
            OK,
            [],
            _hints(tags={"t"}),
            None,
            "the request is not a GET, or carries Authorization",
            id="not-a-get",
        ),
    ],
)
def test_pages_not_stored_say_why(
    status: str,
    headers: list[tuple[str, str]],
    hints: RenderHints | None,
    since: int | None,
    expected: str | None,
) -> None:
    """A page that did not opt in gets None; one that opted in but must not be stored gets
    the reason."""
    assert plan(status, headers, hints, since) == expected


def test_a_policy_without_a_nonce_and_a_page_without_a_reason_of_its_framework_are_stored() -> None:
    """A Content-Security-Policy without a nonce (hashes, hosts) is everybody's; a reason a
    framework's adapter gave while the page rendered (Flask-WTF's token) keeps it out."""
    csp = [("Content-Security-Policy", "script-src 'self' 'sha256-abc'")]
    assert isinstance(plan(OK, csp, _hints(tags={"t"}), 0), Plan)
    hints = _hints(tags={"t"})
    hints.refusal = "it shows a Flask-WTF CSRF token"
    assert plan(OK, csp, hints, 0) == "it shows a Flask-WTF CSRF token"


def test_a_plan_keeps_what_the_store_needs() -> None:
    """Tags from hints and headers, the lifetime, Vary (sorted, once) and the headers to store
    (without Cache-Tag and Content-Length)."""
    headers = [
        ("Content-Type", "text/html"),
        ("Cache-Tag", "a, b"),
        ("Content-Length", "3"),
        ("Vary", "Accept, Cookie, Accept"),
        ("Cache-Control", "s-maxage=60, stale-while-revalidate=5"),
    ]
    decided = plan(OK, headers, _hints(tags={"c"}, cookies_read=True), 7)
    assert decided == Plan(
        status=OK,
        headers=[
            ("Content-Type", "text/html"),
            ("Vary", "Accept, Cookie, Accept"),
            ("Cache-Control", "s-maxage=60, stale-while-revalidate=5"),
        ],
        tags=["a", "b", "c"],
        ttl=60.0,
        stale=5.0,
        vary=["Accept", "Cookie"],
        since=7,
    )


def test_the_reason_a_page_is_not_stored_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A page that opted in but is not stored says why in the log, at debug level."""

    def app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        cache_tag("p")
        cookies().get("name")
        start_response(OK, [("Content-Type", "text/plain")])
        return [b"hello"]

    client = Client(ActionMiddleware(app, cache=MemoryStore()))
    with caplog.at_level(logging.DEBUG, logger="actionkit"):
        response = client.get("/who")
    assert response.headers["Actionkit-Cache"] == "BYPASS"
    assert "/who BYPASS: not stored because it read the request's cookies" in caplog.text


@pytest.mark.parametrize(
    ("names", "environ", "key"),
    [
        pytest.param(
            ["Accept-Language", "X-Theme"],
            {"HTTP_ACCEPT_LANGUAGE": "fr", "HTTP_X_THEME": "dark"},
            "k\0fr\0dark",
            id="request-headers",
        ),
        pytest.param(
            ["Content-Type", "content-length"],
            {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3", "HTTP_CONTENT_TYPE": "no"},
            "k\0text/plain\x003",
            id="cgi-names-without-HTTP_",
        ),
        pytest.param(["Cookie"], {}, "k\0", id="absent-is-empty"),
        pytest.param(["Content-Type"], {}, "k\0", id="absent-content-type-is-empty"),
    ],
)
def test_vary_key(names: list[str], environ: dict[str, str], key: str) -> None:
    """The key of a variant: the page's key, then the value of each header it varies on
    (Content-Type and Content-Length from their CGI names), an absent header as an empty one."""
    assert vary_key("k", names, environ) == key


def test_a_page_showing_an_action_outcome_is_not_stored() -> None:
    """A page that opted in but shows somebody's action_state() is not stored, and says so."""
    decided = plan(OK, [], _hints(tags={"t"}), 0, shows_state=True)
    assert decided == "it shows the outcome of an action"


@pytest.mark.parametrize(
    "value",
    [pytest.param("s-maxage=60", id="plain"), pytest.param('s-maxage="60"', id="quoted")],
)
def test_a_quoted_lifetime_is_read(value: str) -> None:
    """A Cache-Control duration may be quoted: s-maxage="60" is 60 seconds."""
    decided = plan(OK, [("Cache-Control", value)], None, 0)
    assert isinstance(decided, Plan) and decided.ttl == 60.0


@pytest.mark.parametrize(
    ("environ", "key", "path"),
    [
        pytest.param(
            {
                "HTTP_HOST": "h",
                "SCRIPT_NAME": "/app",
                "PATH_INFO": "/a",
                "QUERY_STRING": "x=1",
            },
            "page:http://h/app\0/a?x=1",
            "/app/a",
            id="all",
        ),
        pytest.param(
            {"HTTP_HOST": "h", "SCRIPT_NAME": "/other", "PATH_INFO": "/a"},
            "page:http://h/other\0/a?",
            "/other/a",
            id="another-mount",
        ),
        pytest.param({"SCRIPT_NAME": "/app"}, "page:http:///app\0?", "/app", id="mount-root"),
        pytest.param({"PATH_INFO": "/a"}, "page:http://\0/a?", "/a", id="no-script-name-no-host"),
        pytest.param({}, "page:http://\0?", "/", id="nothing"),
    ],
)
def test_page_key_and_path(environ: dict[str, str], key: str, path: str) -> None:
    """A page's key is its scheme, host, SCRIPT_NAME, PATH_INFO and query string, and its path
    the two in the middle (apps mounted at other paths never share a page); a server may leave
    out any that is empty (PEP 3333; Host in HTTP/1.0), and it counts as empty."""
    assert (page_key(environ), page_path(environ)) == (key, path)


def test_pages_of_other_schemes_and_mount_points_have_their_own_keys() -> None:
    """A page rendered for https (absolute URLs in it) is not the http one; a path below a
    mount point is not the same path without one (a proxy's SCRIPT_NAME header)."""
    base = {"HTTP_HOST": "h", "PATH_INFO": "/p/x", "wsgi.url_scheme": "http"}
    keys = {
        page_key(base),
        page_key({**base, "wsgi.url_scheme": "https"}),
        page_key({**base, "SCRIPT_NAME": "/app"}),
        page_key({**base, "SCRIPT_NAME": "/app/p", "PATH_INFO": "/x"}),
        page_key({**base, "PATH_INFO": "/app/p/x"}),
    }
    assert len(keys) == 5


def test_a_host_header_cannot_name_a_page_of_another_mount_point() -> None:
    """``Host: example.com/blog`` (which a client may send and gunicorn passes on) asking for
    ``/page`` is not the page ``/page`` of the app mounted at ``/blog``: the host's ``/`` and
    ``%`` are escaped in the key (two mounts sharing a store served each other's pages for a
    request crafted once). A plain host keeps its key."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.test import Client

    from actionkit import ActionMiddleware, Registry, cache_life
    from actionkit.stores import MemoryStore

    crafted = {"HTTP_HOST": "example.com/blog", "PATH_INFO": "/page"}
    mounted = {"HTTP_HOST": "example.com", "SCRIPT_NAME": "/blog", "PATH_INFO": "/page"}
    assert page_key(crafted) != page_key(mounted)
    assert page_key({"HTTP_HOST": "example.com%2Fblog", "PATH_INFO": "/page"}) != page_key(crafted)
    assert page_key({"HTTP_HOST": "h:8000", "PATH_INFO": "/p"}) == "page:http://h:8000\0/p?"
    store = MemoryStore()

    def make(name: str) -> ActionMiddleware:
        def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
            cache_life(300)
            start_response("200 OK", [("Content-Type", "text/html")])
            return [name.encode()]

        return ActionMiddleware(app, registry=Registry(), cache=store, secret_key="k" * 32)

    client = Client(DispatcherMiddleware(make("main"), {"/blog": make("blog")}))
    assert client.get("/page", headers={"Host": "example.com/blog"}).text == "main"
    assert client.get("/blog/page", headers={"Host": "example.com"}).text == "blog"


def test_a_question_mark_in_the_path_is_not_the_query() -> None:
    """A decoded PATH_INFO may hold "?" (from %3F): /tag/what%3F and /tag/what?? (the path
    /tag/what and the query "?") are two pages, and so are the same with "%" (from %25)."""
    keys = {
        page_key({"PATH_INFO": "/tag/what?", "QUERY_STRING": ""}),
        page_key({"PATH_INFO": "/tag/what", "QUERY_STRING": "?"}),
        page_key({"PATH_INFO": "/tag/what%3F", "QUERY_STRING": ""}),
        page_key({"PATH_INFO": "/tag/what%", "QUERY_STRING": "3F"}),
    }
    assert len(keys) == 4
    assert page_key({"PATH_INFO": "/a/b", "QUERY_STRING": "x=1"}) == "page:http://\0/a/b?x=1"


def test_a_request_authenticated_in_front_of_the_app_is_personal() -> None:
    """Authorization, or REMOTE_USER set by the server (Apache's own authentication, which
    does not pass Authorization on), makes a request somebody's own."""
    assert not policy.personal({})
    assert not policy.personal({"REMOTE_USER": ""})
    assert policy.personal({"REMOTE_USER": "alice"})
    assert policy.personal({"HTTP_AUTHORIZATION": "Basic YTpi"})


def test_a_page_is_stored_under_the_key_it_was_looked_up_by_when_its_mount_point_moved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dispatcher inside the middleware moves the mount point from PATH_INFO to SCRIPT_NAME:
    the same URL, stored under the key it is looked up by. A middleware inside that rewrites
    the host is warned about once (storing under the key looked up would let a forwarded
    header pick another host's page)."""
    environ = {"HTTP_HOST": "h", "SCRIPT_NAME": "", "PATH_INFO": "/blog/posts"}
    looked_up, url = page_key(environ), policy.page_url(environ)
    environ.update(SCRIPT_NAME="/blog", PATH_INFO="/posts")
    assert policy.key_after(environ, looked_up, url) == looked_up
    policy._moved.clear()
    environ["HTTP_HOST"] = "proxied.example"
    with caplog.at_level(logging.WARNING, "actionkit"):
        assert policy.key_after(environ, looked_up, url) == page_key(environ) != looked_up
        policy.key_after(environ, looked_up, url)
    assert len([r for r in caplog.records if "ProxyFix" in r.getMessage()]) == 1
