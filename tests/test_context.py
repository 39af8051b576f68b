from __future__ import annotations

import typing as t

import pytest
from werkzeug.test import EnvironBuilder

from actionkit import (
    action_state,
    after,
    cache_life,
    cache_tag,
    context,
    cookies,
    headers,
    redirect,
)
from actionkit.context import RequestContext, path_matches


@pytest.fixture
def ctx() -> t.Iterator[RequestContext]:
    environ = EnvironBuilder(
        "/", headers={"Cookie": "theme=dark; name=Ada", "X-Test": "1"}
    ).get_environ()
    request_ctx = RequestContext(environ, in_action=True)
    token = context.push(request_ctx)
    yield request_ctx
    context.pop(token)


def test_nothing_is_current_outside_a_request() -> None:
    """Outside a request the context is None and request-bound functions say what they need."""
    assert context.current() is None
    assert not action_state() and action_state().error("x") is None
    with pytest.raises(RuntimeError, match="needs a request"):
        cookies()
    with pytest.raises(RuntimeError, match="needs a request"):
        headers()
    with pytest.raises(RuntimeError, match="needs a request"):
        redirect("/x")
    cache_tag("ignored")  # harmless outside a render
    cache_life(10)


def test_cookies_read_write_and_read_back(ctx: RequestContext) -> None:
    """cookies() reads the request's cookies, and an action's changes are read back at once."""
    jar = cookies()
    assert jar.get("theme") == "dark" and jar["name"] == "Ada" and jar.has("name")
    assert "theme" in jar and jar.get("missing", "x") == "x"
    jar.set("theme", "light")
    jar.delete("name")
    assert jar.all() == {"theme": "light"}
    assert ctx.set_cookies["theme"].startswith("theme=light;")
    assert "Max-Age=0" in ctx.set_cookies["name"]
    assert repr(jar) == "<Cookies ['theme']>"


def test_cookie_errors(ctx: RequestContext) -> None:
    """Unknown options and non-string values are refused with the valid choices."""
    with pytest.raises(TypeError, match="valid"):
        cookies().set("a", "b", max_agee=3)
    with pytest.raises(TypeError, match="strings"):
        cookies().set("a", 3)  # type: ignore[arg-type]


def test_cookies_cannot_be_set_outside_an_action(ctx: RequestContext) -> None:
    """Like Next.js: a page render can read cookies but not set them."""
    ctx.in_action = False
    assert cookies().get("theme") == "dark"
    with pytest.raises(RuntimeError, match="only be called while an action runs"):
        cookies().set("a", "b")


@pytest.mark.parametrize(
    ("trust", "forwarded", "secure"),
    [(True, "https", True), (False, "https", False), (True, "http", False)],
)
def test_cookies_are_secure_on_a_request_https_behind_a_trusted_proxy(
    trust: bool, forwarded: str, secure: bool
) -> None:
    """With ``trust_forwarded``, ``X-Forwarded-Proto: https`` makes the request https for the
    ``Secure`` default of a cookie as for the origin check (it was left out on an https site
    behind a proxy ending TLS); without it the header is nobody's word."""
    from werkzeug.test import Client

    from actionkit import ActionMiddleware, Registry

    registry = Registry()

    @registry.action(id="login")
    def login() -> None:
        cookies().set("sid", "s")

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"page"]

    app = ActionMiddleware(page, registry=registry, secret_key="k" * 32, trust_forwarded=trust)
    headers = {"Action-Id": "login", "X-Forwarded-Proto": forwarded}
    answer = Client(app).post("/", json=[], headers=headers)
    assert answer.status_code == 200
    assert ("; Secure" in answer.headers["Set-Cookie"]) is secure


def test_add_set_cookie(ctx: RequestContext) -> None:
    """A Set-Cookie made elsewhere (a session) is sent and seen by the re-render."""
    ctx.add_set_cookie('session="abc"; Path=/; HttpOnly')
    assert ctx.cookie_values["session"] == "abc"
    ctx.add_set_cookie("theme=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/")
    assert "theme" not in ctx.cookie_values
    assert set(ctx.set_cookies) == {"session", "theme"}


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ('city="Z\\303\\274rich"; Path=/', "Zürich"),
        ('city="say \\"hi\\""; Path=/', 'say "hi"'),
        ('city="a\\073b"; Path=/', "a;b"),
        ('city="a b"', "a b"),
        ("city=plain", "plain"),
        ("city=", ""),
    ],
)
def test_add_set_cookie_reads_the_value_as_a_browser_sends_it_back(
    ctx: RequestContext, header: str, value: str
) -> None:
    """A value quoted and escaped in its header (Werkzeug quotes what a cookie cannot hold as
    is) is seen unquoted by the re-render, as in the next request."""
    ctx.add_set_cookie(header)
    assert ctx.cookie_values["city"] == value
    assert ctx.set_cookies["city"] == header


@pytest.mark.parametrize(
    ("attributes", "kept"),
    [
        ("Max-Age=0", False),
        ("Max-Age=-1", False),
        ("Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True),  # Max-Age wins
        ("Max-Age=0; Expires=Fri, 01 Jan 2100 00:00:00 GMT", False),
        ("Expires=Wed, 21 Oct 2015 07:28:00 GMT", False),
        ("Expires=Fri, 01 Jan 2100 00:00:00 GMT", True),
        ("Max-Age=soon; Expires=Wed, 21 Oct 2015 07:28:00 GMT", False),  # a bad one is ignored
        ("Max-Age=--1; Expires=Fri, 01 Jan 2100 00:00:00 GMT", True),
        ("Max-Age=²", True),
        ("Expires=not a date", True),
        ("HttpOnly", True),
    ],
)
def test_add_set_cookie_deletes_by_max_age_then_expires(
    ctx: RequestContext, attributes: str, kept: bool
) -> None:
    ctx.add_set_cookie(f"theme=new; Path=/; {attributes}")
    assert ("theme" in ctx.cookie_values) is kept


def test_cookies_at_leaves_out_changes_of_cookies_for_other_paths(ctx: RequestContext) -> None:
    """The re-render of a page is sent the cookies a browser would send to it: a cookie set or
    deleted for another path does not change what it sees there."""
    cookies().set("admin_pref", "dark", path="/admin")
    cookies().delete("theme", path="/admin")  # deletes only the /admin copy
    ctx.add_set_cookie("name=Grace; Path=/ad")
    assert ctx.cookies_at("/") == {"theme": "dark", "name": "Ada"}
    assert ctx.cookies_at("/admin/users") == {"admin_pref": "dark", "name": "Ada"}
    assert ctx.cookies_at("/admin") == {"admin_pref": "dark", "name": "Ada"}
    assert ctx.cookies_at("/administrators") == {"theme": "dark", "name": "Ada"}
    assert ctx.cookies_at("/ad/x") == {"theme": "dark", "name": "Grace"}
    assert cookies().all() == {"admin_pref": "dark", "name": "Grace"}  # the action reads its own


def test_a_set_cookie_without_a_path_is_sent_below_the_page_directory() -> None:
    environ = EnvironBuilder("/shop/cart/checkout", headers={"Cookie": "a=1"}).get_environ()
    ctx = RequestContext(environ, in_action=True)
    ctx.add_set_cookie("a=2")
    assert ctx.cookie_paths["a"] == "/shop/cart"
    assert ctx.cookies_at("/shop/cart/view") == {"a": "2"}
    assert ctx.cookies_at("/shop") == {"a": "1"}
    # A directory past ASCII, as in its URL (the path the page after the action is sent).
    environ = EnvironBuilder("/caf%C3%A9/order", headers={"Cookie": "a=1"}).get_environ()
    ctx = RequestContext(environ, in_action=True)
    ctx.add_set_cookie("a=2")
    assert ctx.cookie_paths["a"] == "/caf%C3%A9"
    assert ctx.cookies_at("/caf%C3%A9/show") == {"a": "2"}


@pytest.mark.parametrize(
    ("path", "scope", "sent"),
    [
        ("/", "/", True),
        ("/a", "/", True),
        ("/admin", "/admin", True),
        ("/admin/", "/admin", True),
        ("/admin/x", "/admin/", True),
        ("/administrators", "/admin", False),
        ("/", "/admin", False),
        ("/admin", "/admin/", False),
    ],
)
def test_path_matches(path: str, scope: str, sent: bool) -> None:
    assert path_matches(path, scope) is sent


def test_headers_are_read_only(ctx: RequestContext) -> None:
    """headers() exposes the request headers and cannot be changed."""
    assert headers()["X-Test"] == "1"
    with pytest.raises(TypeError):
        headers()["X-Test"] = "2"  # type: ignore[index]


def test_reading_the_cookie_header_counts_as_reading_cookies(ctx: RequestContext) -> None:
    """The Cookie header read through headers() marks the page as showing the cookies, as
    cookies() does (the page is then stored only if it varies on Cookie); other headers do
    not."""
    assert headers()["X-Test"] == "1" and not ctx.hints.cookies_read
    assert dict(headers()).get("X-Test") == "1" and ctx.hints.cookies_read
    ctx.hints.cookies_read = False
    assert headers().get("cookie") == "theme=dark; name=Ada" and ctx.hints.cookies_read
    ctx.hints.cookies_read = False
    assert headers().getlist("Cookie") == ["theme=dark; name=Ada"] and ctx.hints.cookies_read
    assert headers().get(None, "default") == "default"  # type: ignore[call-overload]


def test_after_needs_a_callable(ctx: RequestContext) -> None:
    """after() records callables and refuses anything else."""
    after(print)
    assert ctx.after_callbacks == [print]
    with pytest.raises(TypeError, match="callable"):
        after("print")  # type: ignore[arg-type]
