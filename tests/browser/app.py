"""The app the browser tests drive: each example of the reference page, plus the edge cases."""

from __future__ import annotations

import threading
import typing as t

import jinja2
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from actionkit import (
    ActionMiddleware,
    Registry,
    cache_tag,
    cookies,
    fail,
    headers,
    redirect,
    revalidate_path,
    revalidate_tag,
)
from actionkit.jinja import install
from actionkit.protocol import ACTION_PAGE_HEADER
from actionkit.stores import MemoryStore

TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en"{% if theme %} data-theme="{{ theme }}"{% endif %}><head><meta charset="utf-8">
<title>{% block title %}{% endblock %}</title>
{% if csrf %}<meta name="csrf-token" content="{{ csrf }}">{% endif %}
{{ actionkit_script(expose=expose) }}
<style>body{font:16px sans-serif;margin:2rem;min-height:3000px}
[data-pending]{opacity:.6} .error{color:#b00}</style>{% block head %}{% endblock %}</head>
<body>{% block body %}{% endblock %}</body></html>""",
    "macros.html": """{% macro delete_button(action, post) -%}
<button id="delete-{{ post.id }}" {{ action.bind(post.id).button_attrs() }}>Delete</button>
{%- endmacro %}""",
    "posts.html": """{% extends "base.html" %}{% from "macros.html" import delete_button %}
{% block title %}Posts ({{ posts|length }}){% endblock %}
{% block body %}
<h1>Posts</h1>
<p>Views: <span id="views">{{ views }}</span></p>
<span data-action-call="{{ increment_views.id }}" data-trigger="load" data-target="#views"></span>
<ul id="posts">
{% for post in posts %}
  <li id="post-{{ post.id }}"><span class="title">{{ post.title }}</span>
    <form method="post" class="inline">
      <button class="like" id="like-{{ post.id }}" {{ increment_like.bind(post.id).button_attrs() }}
        onclick="event.preventDefault(); const b = this;
          actionkit.actions.increment_like({{ post.id }})
            .then(n => b.querySelector('.count').textContent = n)">
        Like <span class="count">{{ post.likes }}</span></button>
      {{ delete_button(delete_post, post) }}
    </form>
  </li>
{% endfor %}
</ul>
{% set state = action_state(create_post) %}
{% call action_form(create_post, id="create") %}
  <input id="title" name="title" value="{{ state.value('title') if state else '' }}">
  {% if state and state.error('title') %}
    <p class="error" id="title-error">{{ state.error('title') }}</p>
  {% endif %}
  <input id="content" name="content" value="{{ state.value('content') if state else '' }}">
  <button id="create-button" data-pending-text="Saving…">Create</button>
{% endcall %}
<p id="hello">Hello, {{ name or 'stranger' }}</p>
{% call action_form(set_name, id="name-form", data_reset="false") %}
  <input id="name" name="name" value="">
  <button id="save-name">Save name</button>
  <button id="forget-name" name="forget" value="1">Forget me</button>
{% endcall %}
{% call action_form(refresh, id="refresh-form") %}<button id="refresh">Refresh</button>{% endcall %}
{% endblock %}""",
    "slow.html": """{% extends "base.html" %}{% block title %}Slow {{ done|length }}{% endblock %}
{% block body %}
<h1>Slow actions</h1>
<p>Done: <span id="done">{{ done|join(',') }}</span></p>
<p>Latest: <span id="shown" data-optimistic="value" data-optimistic-for="form-queue">
  {{- done[-1] if done else '' }}</span></p>
<p><label>Draft <input id="draft" value=""></label></p>
{% for mode in ['queue', 'abort', 'drop'] %}
{% call action_form(slow, id='form-' ~ mode, data_concurrency=mode) %}
  <label>{{ mode }} <input id="value-{{ mode }}" name="value"></label>
  <span class="optimistic" data-optimistic="value"></span>
  <button id="go-{{ mode }}" data-pending-text="Working…">Go <b>now</b></button>
{% endcall %}
{% endfor %}
<form method="post" id="unknown"><input type="hidden" name="$ACTION_ID_gone" value="">
  <button id="unknown-button">Old action</button></form>
{% call action_form(upload, id="upload-form") %}
  <input type="file" id="file" name="file"><progress data-upload-progress value="0"></progress>
  <button id="upload-button">Upload</button>
{% endcall %}
<p id="uploaded">{{ uploaded }}</p>
{% endblock %}""",
    "lab.html": """{% extends "base.html" %}{% block title %}Lab{% endblock %}
{% block body %}
{% set state = action_state() %}
<p id="outcome">{{ state.result if state and state.result is not none else '' }}</p>
<p id="query">{{ query }}</p>
<form id="notes">
  <input id="note" name="note" value=""><textarea id="long-note" name="long"></textarea>
  <input type="checkbox" id="notify" name="notify"><input id="renders" value="{{ renders }}">
  <input type="color" id="tint" value="{{ '#FF0000' if renders % 2 else '#00FF00' }}">
  <select id="lang" name="lang"><option value="en">en</option><option value="fr">fr</option>
  </select>
  <label><input type="radio" name="size" id="size-s" value="s" checked> S</label>
  <label><input type="radio" name="size" id="size-l" value="l"> L</label>
</form>
<details id="more"><summary>More</summary><p>Details</p></details>
<form method="post" id="last-wins">{{ echo_form.field() }}
  <button id="own-action">Own action</button>
  <button id="button-action" {{ echo_button.button_attrs() }}>Button action</button>
</form>
{% call action_form(echo_fields, id="clobber") %}
  <input name="action" value="a"><input name="id" value="7"><input name="reset" value="r">
  <button id="clobber-button">Fields named like form properties</button>
{% endcall %}
{% for name in ['page_header', 'go_replace', 'go_push', 'go_away', 'go_here', 'go_other',
  'boom'] %}
{% call action_form(actions[name], id=name ~ '-form') %}
  <button id="{{ name }}">{{ name }}</button>
{% endcall %}
{% endfor %}
<a id="to-slow" href="/slow">To the slow page</a>
<a id="download" href="/widgets.css" download>Download</a>
{% call action_form(echo_form, id="elsewhere-form", action="/lab?posted=1") %}
  <button id="post-elsewhere">Post to another page</button>
{% endcall %}
<p>Sum: <span id="sum"></span></p>
<button type="button" id="add" data-action-call="add" data-args="[2, 3]"
  data-target="#sum">Add</button>
<button type="button" id="add-by-id" data-action-call="{{ add.id }}" data-args="[10, 5]"
  data-target="#sum">Add by ID</button>
<p>Tally: <span id="tally">0</span></p>
<button type="button" id="tally-button" data-action-call="{{ tally.id }}" data-target="#tally"
  data-pending-text="Counting…">Count</button>
<span id="tally-span" data-action-call="{{ tally.id }}" data-target="#tally">Count</span>
<p>Seen: <span id="seen">0</span></p>
<div style="height: 2500px"></div>
<p id="sentinel" data-action-call="{{ mark_seen.id }}" data-trigger="visible"
  data-target="#seen">The end</p>
{% endblock %}""",
    "other.html": """{% extends "base.html" %}{% block title %}Other{% endblock %}
{% block body %}<h1 id="other">A page with a script of its own</h1>
<script>window.otherLoaded = true;</script>{% endblock %}""",
    "forms.html": """{% extends "base.html" %}{% block title %}Forms{% endblock %}
{% block body %}<p id="where">{{ path }}</p>
<form id="plain-form" method="post" enctype="text/plain">{{ record.field() }}
  <input name="t" value="v"><button>Send</button></form>
<form id="names-form" method="post">{{ record.field() }}
  <input type="file" name="docs"><input name="after" value="1"><button>Send</button></form>
<form id="text-form" method="post">{{ record.field() }}
  <textarea name="note"></textarea><button>Send</button></form>
<form id="latin-form" method="post" accept-charset="ISO-8859-1">{{ record.field() }}
  <input name="u" value="café"><button>Send</button></form>
<form id="relative-form" method="post" action="/forms/sub/page">{{ go_relative.field() }}
  <button>Go</button></form>
<form id="script-form" method="post">{{ go_script.field() }}<button>Go</button></form>
{% endblock %}""",
    "widgets.html": """{% extends "base.html" %}{% block title %}Widgets{% endblock %}
{% block head %}{% if widgets %}<link rel="stylesheet" href="/widgets.css">{% endif %}{% endblock %}
{% block body %}
<p id="widget-total">Total: {{ widgets }}</p>
<a href="#" id="widget-link" data-action-call="{{ bump_widgets.id }}">Bump ({{ widgets }})</a>
<main id="widget-main" tabindex="-1"><p id="widget-in-main">In main: {{ widgets }}</p></main>
<p id="styled" class="notice">Styled once bumped</p>
{% if widgets == 1 %}<dialog id="notice" open>Bumped once</dialog>
{% elif widgets %}<dialog id="notice">Bumped again</dialog>{% endif %}
<dialog id="welcome" open>Welcome
  <button id="close-welcome" onclick="this.closest('dialog').close()">Close</button></dialog>
<button id="open-dialog" onclick="document.getElementById('dialog').showModal()">Edit</button>
<dialog id="dialog">{% set state = action_state(name_widget) %}
{% call action_form(name_widget, id="dialog-form") %}<input id="widget-name" name="name">
  {% if state and state.error('name') %}<p id="widget-name-error">{{ state.error('name') }}</p>
  {% endif %}<button id="save-widget">Save</button>{% endcall %}</dialog>
<form id="stale-form" method="post"><input type="hidden" name="$ACTION_ID_gone-since" value="">
  <textarea id="stale-text" name="text"></textarea><button id="stale-send">Send</button></form>
{% endblock %}""",
    "keep.html": """{% extends "base.html" %}{% block title %}Keep{% endblock %}
{% block body %}
{% set state = action_state(check_title) %}
<p id="renders">{{ renders }}</p>
<select id="category">{% for c in categories %}<option>{{ c }}</option>{% endfor %}</select>
<select id="tags" multiple>{% for c in categories %}<option value="{{ c|lower }}">{{ c }}</option>
{% endfor %}</select>
{% call action_form(check_title, id="check-form") %}
  <input id="title" name="title">
  <select id="title-category" name="category">
    {% for c in categories %}<option>{{ c }}</option>{% endfor %}</select>
  {% if state and state.error('title') %}<p class="error">{{ state.error('title') }}</p>{% endif %}
  <button id="check">Check</button>
{% endcall %}
{% macro title_fields() %}<input name="title">
  {% if state and state.error('title') %}<p class="error">{{ state.error('title') }}</p>{% endif %}
  <button>Check</button>{% endmacro %}
{% call action_form(check_title, class_="no-id") %}{{ title_fields() }}{% endcall %}
{% call action_form(check_title, id="id-form") %}<input type="hidden" name="id" value="7">
  {{ title_fields() }}{% endcall %}
{% call action_form(check_title, id="elements-form") %}
  <input type="hidden" name="elements" value="e">{{ title_fields() }}{% endcall %}
{% call action_form(check_title, id="dataset-form", data_reset="false") %}
  <input type="hidden" name="dataset" value="d">{{ title_fields() }}{% endcall %}
{% call action_form(touch, id="touch-form") %}<button id="touch">Touch</button>{% endcall %}
<form method="post" id="image-form"><input type="image" id="image-button" alt="Touch"
  name="{{ touch.field_name }}" width="20" height="20" src="data:image/gif;base64,{{ gif }}"></form>
{% endblock %}""",
}


class BrowserApp:
    """Posts in memory; every action of the reference page; a gate to hold actions pending."""

    def __init__(self) -> None:
        self.base = ""
        self.env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True)
        install(self.env)
        self.registry = Registry()
        self._define_actions()
        self.store = MemoryStore()
        #: Cleared by a test to hold the slow action pending; set to let it finish.
        self.gate = threading.Event()
        self.later = threading.Event()
        #: Cleared by a test to hold the reference page's actions pending; set to let them run.
        self.hold = threading.Event()
        self.middleware = ActionMiddleware(
            self.app, registry=self.registry, cache=self.store, secret_key="browser-tests"
        )
        #: The requests under way (see reset).
        self.in_flight = 0
        self.flight = threading.Condition()
        self.reset()

    def wsgi(self, environ: t.Any, start_response: t.Any) -> t.Iterator[bytes]:
        """The middleware, counting the requests under way until their answer is sent."""
        with self.flight:
            self.in_flight += 1
        try:
            yield from self.middleware(environ, start_response)
        finally:
            with self.flight:
                self.in_flight -= 1
                self.flight.notify_all()

    def reset(self) -> None:
        """Empty data and cache, gates open, once the requests of an earlier test are over:
        one that a test held at a gate (a view counted on load) goes on when the gate opens,
        and would count in the next test."""
        self.gate.set()
        self.later.set()
        self.hold.set()
        with self.flight:
            assert self.flight.wait_for(lambda: not self.in_flight, timeout=15)
        self.posts: dict[int, dict[str, t.Any]] = {}
        self.next_id = 1
        self.views = 0
        self.done: list[str] = []
        self.uploaded = ""
        self.recorded: list[tuple[str, t.Any]] = []
        self.seen = 0
        self.tallies = 0
        self.lab_renders = 0
        self.keep_renders = 0
        self.widgets = 0
        self.categories = ["Books", "Film", "Music"]
        self.theme: str | None = None
        self.lock = threading.Lock()
        self.store.clear()

    def _define_actions(self) -> None:
        site = self
        action = self.registry.action

        @action
        def create_post(form: MultiDict[str, str]) -> t.Any:
            assert site.hold.wait(10)
            title = form.get("title", "").strip()
            if not title:
                return fail(422, {"title": "A title is required."})
            with site.lock:
                post_id = site.next_id
                site.next_id += 1
                site.posts[post_id] = {"id": post_id, "title": title, "likes": 0}
            revalidate_path("/posts")
            redirect("/posts")

        @action
        def delete_post(post_id: int, form: MultiDict[str, str]) -> None:
            assert site.hold.wait(10)
            site.posts.pop(post_id, None)
            revalidate_path("/posts")

        @action
        def increment_like(post_id: int, form: t.Any = None) -> int:
            with site.lock:
                site.posts[post_id]["likes"] += 1
                likes = int(site.posts[post_id]["likes"])
            revalidate_path("/posts")
            return likes

        @action
        def increment_views() -> int:
            assert site.hold.wait(10)
            with site.lock:
                site.views += 1
                return site.views

        @action
        def set_name(form: MultiDict[str, str]) -> str | None:
            assert site.hold.wait(10)
            if form.get("forget"):
                cookies().delete("name")
                return None
            cookies().set("name", form["name"])
            return form["name"]

        @action
        def slow(form: MultiDict[str, str]) -> t.Any:
            # "later" waits for its own gate, to hold a second submission after the first.
            assert (site.later if form.get("value") == "later" else site.gate).wait(5)
            value = form.get("value", "")
            if value == "bad":
                return fail(422, {"value": "bad value"})
            site.done.append(value)
            return value

        @action
        def upload(form: MultiDict[str, t.Any]) -> int:
            data = form["file"].read()
            site.uploaded = f"{form['file'].filename}:{len(data)}"
            return len(data)

        @action
        def record(form: MultiDict[str, t.Any]) -> None:
            site.recorded = [(k, getattr(v, "filename", v)) for k, v in form.items(multi=True)]

        @action
        def go_relative(form: MultiDict[str, str]) -> None:
            redirect("done")  # next to the URL posted to: /forms/sub/done

        @action
        def go_script(form: MultiDict[str, str]) -> None:
            redirect("javascript:document.title='followed'")

        @action
        def refresh(form: MultiDict[str, str]) -> None:
            assert site.hold.wait(10)
            revalidate_tag("posts")

        @action
        def echo_form(form: MultiDict[str, str]) -> str:
            return "form"

        @action
        def echo_button(form: MultiDict[str, str]) -> str:
            return "button"

        @action
        def echo_fields(form: MultiDict[str, str]) -> str:
            return form["action"] + form["id"] + form["reset"]

        @action
        def page_header(form: MultiDict[str, str]) -> str | None:
            return headers().get(ACTION_PAGE_HEADER)

        @action
        def go_replace(form: MultiDict[str, str]) -> None:
            redirect("/lab?replaced=1", type="replace")

        @action
        def go_push(form: MultiDict[str, str]) -> None:
            redirect("/lab?pushed=1")

        @action
        def go_away(form: MultiDict[str, str]) -> None:
            # The same server under another origin.
            redirect(site.other_origin + "/lab?away=1")

        @action
        def go_here(form: MultiDict[str, str]) -> None:
            redirect("/lab")

        @action
        def go_other(form: MultiDict[str, str]) -> None:
            redirect("/other")

        @action
        def boom(form: MultiDict[str, str]) -> None:
            raise RuntimeError("boom")

        @action
        def check_title(form: MultiDict[str, str]) -> t.Any:
            if form.get("title") != "ok":
                return fail(422, {"title": "The title must be ok."})
            return "ok"

        @action
        def touch(form: MultiDict[str, str]) -> str:
            return "touched"

        @action
        def csrf_header() -> str | None:
            return headers().get("X-CSRFToken")

        @action
        def add(a: int, b: int) -> int:
            return a + b

        @action
        def greet(name: str, greeting: str = "Hello") -> str:
            return f"{greeting}, {name}"

        @action
        def tally() -> int:
            assert site.gate.wait(5)
            with site.lock:
                site.tallies += 1
                return site.tallies

        @action
        def bump_widgets() -> int:
            site.widgets += 1
            revalidate_path("/widgets")
            return site.widgets

        @action
        def name_widget(form: MultiDict[str, str]) -> t.Any:
            if not form.get("name"):
                return fail(422, {"name": "A name is required."})
            return form["name"]

        @action
        def mark_seen() -> int:
            site.seen += 1
            return site.seen

        self.actions = {a.name: a for a in self.registry}

    @property
    def other_origin(self) -> str:
        """The server under another origin (localhost instead of 127.0.0.1)."""
        return self.base.replace("127.0.0.1", "localhost")

    def app(self, environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        request = Request(environ)
        actions = self.actions
        context = {**actions, "actions": actions, "expose": [actions["increment_like"]]}
        if request.path == "/posts":
            cache_tag("posts")
            html = self.env.get_template("posts.html").render(
                posts=list(self.posts.values()),
                views=self.views,
                name=request.cookies.get("name"),
                **context,
            )
        elif request.path == "/slow":
            html = self.env.get_template("slow.html").render(
                done=self.done, uploaded=self.uploaded, **context
            )
        elif request.path == "/lab":
            expose = {"add": actions["add"], "greet_ada": actions["greet"].bind("Ada")}
            self.lab_renders += 1
            html = self.env.get_template("lab.html").render(
                **{**context, "expose": expose},
                query=request.query_string.decode(),
                renders=self.lab_renders,
                csrf=f"token-{self.lab_renders}",
            )
        elif request.path == "/keep":
            self.keep_renders += 1
            html = self.env.get_template("keep.html").render(
                renders=self.keep_renders,
                categories=self.categories,
                theme=self.theme,
                gif="R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==",
                **context,
            )
        elif request.path.startswith("/forms"):
            html = self.env.get_template("forms.html").render(path=request.path, **context)
        elif request.path == "/widgets":
            html = self.env.get_template("widgets.html").render(widgets=self.widgets, **context)
        elif request.path == "/widgets.css":
            css = ".notice { color: rgb(0, 128, 0); }"
            return Response(css, content_type="text/css")(environ, start_response)
        elif request.path == "/other":
            html = self.env.get_template("other.html").render(**context)
        else:
            return Response("Not found", status=404)(environ, start_response)
        return Response(html, content_type="text/html; charset=utf-8")(environ, start_response)
