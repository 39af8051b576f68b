"""Ending an action, fail(), and the action state a page rendered after an action sees."""

from __future__ import annotations

import typing as t

import pytest
from werkzeug.datastructures import MultiDict

from actionkit import (
    ActionState,
    Registry,
    action_state,
    context,
    fail,
    forbidden,
    not_found,
    permanent_redirect,
    redirect,
    unauthorized,
)
from actionkit.context import RequestContext
from actionkit.exceptions import ActionSignal


@pytest.fixture
def ctx() -> t.Iterator[RequestContext]:
    """The context of an action that is running."""
    request_ctx = RequestContext({"PATH_INFO": "/"}, in_action=True)
    token = context.push(request_ctx)
    yield request_ctx
    context.pop(token)


@pytest.mark.parametrize(
    ("call", "status"),
    [
        pytest.param(lambda: redirect("/a"), 303, id="redirect"),
        pytest.param(lambda: redirect("/a", type="replace"), 303, id="replace"),
        pytest.param(lambda: permanent_redirect("/a"), 303, id="permanent"),
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
    first = registry.register(lambda post_id, form: None, id="first")
    second = registry.register(lambda form: None, id="second")
    state = ActionState(first, {"title": "bad"}, MultiDict({"title": "x"}), True, 422)
    ctx.state = state
    assert action_state() is state
    assert action_state(first) is state and action_state(first.bind(1)) is state
    assert not action_state(second) and action_state(second).failed is False
    assert state.value("title") == "x" and state.value("other", "d") == "d"
    assert state.error("title") == "bad" and state.error("nope") is None


def test_the_empty_state_renders_nothing_in_a_template(ctx: RequestContext) -> None:
    """Outside the page after an action, ``value="{{ state.value('title') }}"`` is empty, as for
    a field not submitted (it wrote "None" into the input), and ``state.error()`` is falsy."""
    import jinja2

    registry = Registry()
    save = registry.register(lambda form: None, id="save")
    template = jinja2.Environment(autoescape=True).from_string(
        "<input value=\"{{ state.value('title') }}\">"
        "{% if state.error('title') %}<p>{{ state.error('title') }}</p>{% endif %}"
    )
    for state in (action_state(), action_state(save)):
        assert template.render(state=state) == '<input value="">'
        assert state.value("title", "default") == "default"
    ctx.state = ActionState(save, None, MultiDict(), False, 200)
    assert template.render(state=action_state(save)) == '<input value="">'
