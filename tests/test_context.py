from __future__ import annotations

import typing as t

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from actionkit import (
    Registry,
    action_state,
    after,
    cache_life,
    cache_tag,
    context,
    cookies,
    fail,
    forbidden,
    headers,
    not_found,
    permanent_redirect,
    redirect,
    unauthorized,
)
from actionkit.context import ActionSignal, ActionState, RequestContext


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
    assert action_state() is None
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


def test_add_set_cookie(ctx: RequestContext) -> None:
    """A Set-Cookie made elsewhere (a session) is sent and seen by the re-render."""
    ctx.add_set_cookie('session="abc"; Path=/; HttpOnly')
    assert ctx.cookie_values["session"] == "abc"
    ctx.add_set_cookie("theme=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/")
    assert "theme" not in ctx.cookie_values
    assert set(ctx.set_cookies) == {"session", "theme"}


def test_headers_are_read_only(ctx: RequestContext) -> None:
    """headers() exposes the request headers and cannot be changed."""
    assert headers()["X-Test"] == "1"
    with pytest.raises(TypeError):
        headers()["X-Test"] = "2"  # type: ignore[index]


@pytest.mark.parametrize(
    ("call", "status"),
    [
        pytest.param(lambda: redirect("/a"), 303, id="redirect"),
        pytest.param(lambda: redirect("/a", type="replace"), 303, id="replace"),
        pytest.param(lambda: permanent_redirect("/a"), 308, id="permanent"),
        pytest.param(not_found, 404, id="not_found"),
        pytest.param(forbidden, 403, id="forbidden"),
        pytest.param(unauthorized, 401, id="unauthorized"),
    ],
)
def test_endings_are_base_exceptions(
    ctx: RequestContext, call: t.Callable[[], None], status: int
) -> None:
    """The functions that end an action raise a BaseException, not an Exception."""
    with pytest.raises(ActionSignal) as info:
        call()
    assert not isinstance(info.value, Exception)
    assert info.value.status == status  # type: ignore[attr-defined]


def test_redirect_type_is_checked(ctx: RequestContext) -> None:
    """An unknown redirect type lists the valid ones."""
    with pytest.raises(ValueError, match="'push' or 'replace'"):
        redirect("/a", type="pop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'push' or 'replace'"):
        permanent_redirect("/a", type="pop")  # type: ignore[arg-type]


def test_fail_status_is_checked() -> None:
    """fail() takes a 4xx/5xx status and keeps its data."""
    failure = fail(422, {"title": "required"})
    assert (failure.status, failure.data) == (422, {"title": "required"})
    with pytest.raises(ValueError, match="422 is usual"):
        fail(200)


def test_action_state_filters_by_action(ctx: RequestContext) -> None:
    """action_state(action) is the state only when that action (or a bound copy) ran."""
    registry = Registry()
    first = registry.register(lambda form: None, id="first")
    second = registry.register(lambda form: None, id="second")
    state = ActionState(first, {"title": "bad"}, MultiDict({"title": "x"}), True, 422)
    ctx.state = state
    assert action_state() is state
    assert action_state(first) is state and action_state(first.bind(1)) is state
    assert action_state(second) is None
    assert state.value("title") == "x" and state.value("other", "d") == "d"
    assert state.error("title") == "bad" and state.error("nope") is None


def test_cache_hints_are_recorded_and_checked(ctx: RequestContext) -> None:
    """cache_tag() and cache_life() record the page's cache settings; bad values are refused."""
    cache_tag("posts", "post:1")
    cache_life(60, stale=5)
    assert ctx.cache_tags == {"posts", "post:1"}
    assert (ctx.cache_ttl, ctx.cache_stale) == (60.0, 5.0)
    with pytest.raises(ValueError, match="non-empty"):
        cache_tag("")
    with pytest.raises(ValueError, match=">= 0"):
        cache_life(-1)


def test_after_needs_a_callable(ctx: RequestContext) -> None:
    """after() records callables and refuses anything else."""
    after(print)
    assert ctx.after_callbacks == [print]
    with pytest.raises(TypeError, match="callable"):
        after("print")  # type: ignore[arg-type]
