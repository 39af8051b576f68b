from __future__ import annotations

import html
import json
import re

import jinja2
from markupsafe import Markup

from actionkit import Registry
from actionkit.assets import assets
from actionkit.jinja import action_form, actionkit_script, install


def _env(templates: dict[str, str]) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.DictLoader(templates), autoescape=True)
    install(env)
    return env


def test_script_tags_and_exposed_actions() -> None:
    """actionkit_script() loads idiomorph then the client, exposing actions by name."""
    registry = Registry()
    like = registry.register(lambda post_id: post_id, id="like")
    like.fn.__name__ = "like"
    markup = actionkit_script(expose=[like.bind(3)])
    assert isinstance(markup, Markup)
    sources = re.findall(r'src="([^"]+)"', markup)
    assert sources == [assets().url("idiomorph.js"), assets().url("actionkit.js")]
    table = json.loads(html.unescape(re.search(r'data-actions="([^"]*)"', markup)[1]))  # type: ignore[index]
    assert table["like"]["id"] == "like" and table["like"]["token"]
    assert "defer" in markup and "defer" not in actionkit_script(defer=False)


def test_action_form_call_block_and_attributes() -> None:
    """{% call action_form(action, ...) %} renders a POST form with the action's field."""
    registry = Registry()
    create = registry.register(lambda form: None, id="create")
    env = _env(
        {
            "page.html": "{% call action_form(create, class_='card', data_reset='false',"
            " novalidate=True, hidden=False) %}<input name=t>{% endcall %}"
        }
    )
    out = env.get_template("page.html").render(create=create)
    assert out == (
        '<form method="post" class="card" data-reset="false" novalidate'
        ' enctype="multipart/form-data">'
        '<input type="hidden" name="$ACTION_ID_create" value=""><input name=t></form>'
    )
    assert 'enctype="application/x-www-form-urlencoded"' in action_form(
        create, enctype="application/x-www-form-urlencoded"
    )


def test_actions_pass_into_macros_and_includes() -> None:
    """Actions are values: a macro or an included template can render their buttons."""
    registry = Registry()
    delete = registry.register(lambda post_id, form: None, id="delete")
    env = _env(
        {
            "macros.html": "{% macro button(act, id) %}<button {{ act.bind(id).button_attrs() }}>"
            "x</button>{% endmacro %}",
            "row.html": "{{ button(delete, 7) }}",
            "page.html": "{% from 'macros.html' import button %}{% include 'row.html' %}",
        }
    )
    out = env.get_template("page.html").render(delete=delete)
    assert 'name="$ACTION_ID_delete"' in out and 'formmethod="post"' in out
    token = re.search(r'value="([^"]+)"', out)[1]  # type: ignore[index]
    from actionkit.security import decrypt_args, resolve_key

    assert decrypt_args("delete", token, resolve_key()) == [7]


def test_action_state_global_is_none_outside_a_rerender() -> None:
    """action_state() in a template is None unless the page is rendered after an action."""
    env = _env({"p.html": "{{ action_state() is none }}"})
    assert env.get_template("p.html").render() == "True"
