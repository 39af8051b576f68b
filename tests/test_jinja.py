from __future__ import annotations

import html
import json
import re
import typing as t

import jinja2
import pytest
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from actionkit import ActionMiddleware, Registry, context, fail
from actionkit.assets import assets
from actionkit.jinja import action_form, actionkit_script, install
from actionkit.security import decrypt_args, resolve_key
from actionkit.testing import ActionClient


def _env(templates: dict[str, str], **options: t.Any) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.DictLoader(templates), autoescape=True)
    install(env, **options)
    return env


def _table(markup: str) -> dict[str, dict[str, str]]:
    match = re.search(r'data-actions="([^"]*)"', markup)
    assert match is not None
    return t.cast(dict[str, dict[str, str]], json.loads(html.unescape(match[1])))


@pytest.fixture
def registry() -> Registry:
    return Registry()


def test_script_tags_load_idiomorph_then_the_client(registry: Registry) -> None:
    """actionkit_script() is markup-safe: idiomorph then actionkit.js, both deferred, at their
    hashed URLs."""
    markup = actionkit_script()
    assert isinstance(markup, Markup)
    sources = re.findall(r'src="([^"]+)"', markup)
    assert sources == [assets().url("idiomorph.js"), assets().url("actionkit.js")]
    assert markup.count(" defer") == 2 and "defer" not in actionkit_script(defer=False)
    assert _table(markup) == {}


def test_exposed_actions_by_name_with_bound_tokens(registry: Registry) -> None:
    """Exposed actions are listed under their Python names (or the names of a mapping); a bound
    copy carries its sealed arguments."""

    @registry.action(id="like")
    def increment_like(post_id: int) -> int:
        return post_id

    table = _table(actionkit_script(expose=[increment_like]))
    assert table == {"increment_like": {"id": "like", "token": ""}}
    table = _table(actionkit_script(expose={"like_first": increment_like.bind(1)}))
    assert table["like_first"]["id"] == "like"
    assert decrypt_args("like", table["like_first"]["token"], resolve_key()) == [1]


def test_expose_rejects_plain_functions() -> None:
    """Exposing something that is not an action says what is expected."""
    with pytest.raises(TypeError, match=r"takes actions .* not <function"):
        actionkit_script(expose=[lambda: None])


def test_nonce_and_values_are_escaped(registry: Registry) -> None:
    """A CSP nonce goes on both tags; names are escaped inside the attribute."""

    @registry.action(id="x")
    def f() -> None:
        return None

    markup = actionkit_script(expose={'"><script>': f}, nonce='n"1')
    assert markup.count('nonce="n&#34;1"') == 2
    assert '<script>"' not in markup and _table(markup) == {'"><script>': {"id": "x", "token": ""}}


def test_script_url_follows_script_name() -> None:
    """Rendered for an application mounted at /app, the script URLs are below /app."""
    ctx = context.RequestContext({"SCRIPT_NAME": "/app/", "PATH_INFO": "/"})
    token = context.push(ctx)
    try:
        sources = re.findall(r'src="([^"]+)"', actionkit_script())
    finally:
        context.pop(token)
    assert sources == ["/app" + assets().url("idiomorph.js"), "/app" + assets().url("actionkit.js")]


def test_script_url_is_where_the_middleware_serves_it_under_a_dispatcher_inside() -> None:
    """A dispatcher inside the middleware moves the mount point on (``/blog``) before the page
    renders: the script URLs stay at the middleware's own mount point, where it serves them
    (they were below ``/blog``: 404, and the page ran without its script)."""
    from flask import Flask
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.test import Client

    from actionkit import ActionMiddleware

    blog = Flask("blog")
    blog.get("/")(lambda: str(actionkit_script()))

    def root(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
        return [b"not found"]

    app = ActionMiddleware(
        DispatcherMiddleware(root, {"/blog": blog}), registry=Registry(), secret_key="k" * 32
    )
    client = Client(app)
    sources = re.findall(r'src="([^"]+)"', client.get("/blog/").text)
    assert sources == [assets().url("idiomorph.js"), assets().url("actionkit.js")]
    assert [client.get(src).status_code for src in sources] == [200, 200]
    outer = Client(DispatcherMiddleware(root, {"/site": app}))
    sources = re.findall(r'src="([^"]+)"', outer.get("/site/blog/").text)
    assert [outer.get(src).status_code for src in sources] == [200, 200]
    assert all(src.startswith("/site/_actionkit/") for src in sources)


def test_install_with_static_url() -> None:
    """install(env, static_url=...) serves the script from elsewhere (a CDN or a rewritten
    path), keeping the hashed file names."""
    env = _env({"p.html": "{{ actionkit_script() }}"}, static_url="https://cdn.example/ak/")
    sources = re.findall(r'src="([^"]+)"', env.get_template("p.html").render())
    hashed = assets().url("actionkit.js").rsplit("/", 1)[1]
    assert sources[1] == "https://cdn.example/ak/" + hashed


def test_action_form_call_block_and_attributes(registry: Registry) -> None:
    """{% call action_form(action, ...) %} renders a POST form with the action's field first;
    keywords become attributes (class=, data_x=, booleans)."""
    create = registry.register(lambda form: None, id="create")
    env = _env(
        {
            "page.html": "{% call action_form(create, class='card', data_reset='false',"
            " novalidate=True, hidden=False, title=None) %}<input name=t>{% endcall %}"
        }
    )
    out = env.get_template("page.html").render(create=create)
    assert out == (
        '<form method="post" class="card" data-reset="false" novalidate'
        ' enctype="multipart/form-data">'
        '<input type="hidden" name="$ACTION_ID_create" value=""><input name=t></form>'
    )


def test_action_form_posts_elsewhere_and_encodes_as_told(registry: Registry) -> None:
    """action= (the form's URL) is an attribute like any other; enctype can be changed; a bound
    action's field carries its token; values are escaped."""
    rename = registry.register(lambda post_id, form: None, id="rename")
    out = action_form(
        rename.bind(4), action="/posts?a=1&b=2", enctype="application/x-www-form-urlencoded"
    )
    assert 'action="/posts?a=1&amp;b=2"' in out
    assert 'enctype="application/x-www-form-urlencoded"' in out and "multipart" not in out
    token = re.search(r'name="\$ACTION_ID_rename" value="([^"]+)"', out)[1]  # type: ignore[index]
    assert decrypt_args("rename", token, resolve_key()) == [4]


def test_action_form_errors(registry: Registry) -> None:
    """action_form() wants an action, and always posts."""
    create = registry.register(lambda form: None, id="create")
    with pytest.raises(TypeError, match="takes an action"):
        action_form("create")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match='always renders method="post"'):
        action_form(create, method="get")


def test_actions_pass_into_macros_and_includes(registry: Registry) -> None:
    """Actions are values ("passing actions as props"): a macro or an included template can
    render their forms and buttons."""
    delete = registry.register(lambda post_id, form: None, id="delete")
    create = registry.register(lambda form: None, id="create")
    env = _env(
        {
            "macros.html": "{% macro button(act, id) %}<button {{ act.bind(id).button_attrs() }}>"
            "x</button>{% endmacro %}"
            "{% macro form(act) %}{{ action_form(act, caller=caller) }}{% endmacro %}",
            "row.html": "{{ button(on_delete, 7) }}",
            "page.html": "{% from 'macros.html' import button, form %}{% include 'row.html' %}"
            "{% call form(on_create) %}<input name=title>{% endcall %}",
        }
    )
    out = env.get_template("page.html").render(on_delete=delete, on_create=create)
    assert 'name="$ACTION_ID_delete"' in out and 'formmethod="post"' in out
    token = re.search(r'value="([^"]+)"', out)[1]  # type: ignore[index]
    assert decrypt_args("delete", token, resolve_key()) == [7]
    assert '<input type="hidden" name="$ACTION_ID_create" value=""><input name=title></form>' in out


def test_action_state_global_is_empty_outside_a_rerender() -> None:
    """action_state() in a template is a falsy empty state unless the page is rendered after an
    action: a template reads its errors and values without a guard."""
    env = _env(
        {
            "p.html": "{% set state = action_state() %}{{ not state }} {{ state.failed }}"
            " [{{ state.error('title') or '' }}] [{{ state.value('title') or '' }}]"
            " {{ state.errors }}"
        }
    )
    assert env.get_template("p.html").render() == "True False [] [] {}"


def test_action_state_in_the_page_rendered_after_a_failed_submission(registry: Registry) -> None:
    """Rendered after fail(), the page shows the error and the submitted value, with the fail()
    status, through the middleware and without JavaScript."""
    env = _env(
        {
            "page.html": "{% set state = action_state(create) %}"
            "{% call action_form(create) %}"
            "<input name=title value=\"{{ state.value('title') if state else '' }}\">"
            "{% if state and state.error('title') %}<p class=error>{{ state.error('title') }}"
            "</p>{% endif %}{% endcall %}"
        }
    )

    @registry.action(id="create")
    def create(form: MultiDict[str, str]) -> t.Any:
        return fail(422, {"title": "Too short."})

    def app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        body = env.get_template("page.html").render(create=create)
        return Response(body, content_type="text/html")(environ, start_response)

    client = ActionClient(ActionMiddleware(app, registry=registry, cache=False))
    assert "<p class=error>" not in client.get("/").text
    response = client.submit(create, {"title": "<b>"}, path="/")
    assert response.status_code == 422
    assert "<p class=error>Too short.</p>" in response.text
    assert 'value="&lt;b&gt;"' in response.text
