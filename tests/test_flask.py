from __future__ import annotations

import typing as t

import pytest
from flask import (
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)

from actionkit import ActionMiddleware, Registry, cache_tag, forbidden, not_found
from actionkit.flask import ActionKit, get_middleware
from actionkit.stores import MemoryStore
from actionkit.testing import ActionClient


def make_app(**config: t.Any) -> tuple[Flask, Registry, list[t.Any]]:
    """A Flask app with a registry of actions that report what they saw."""
    app = Flask(__name__)
    app.secret_key = "flask-secret"
    app.config.update(config)
    registry = Registry()
    seen: list[t.Any] = []
    app.config.setdefault("ACTIONKIT_REGISTRY", registry)

    @app.before_request
    def load_user() -> t.Any:
        g.user = request.headers.get("X-User")
        if request.headers.get("X-Block") == "login":
            return redirect("/login")
        if request.headers.get("X-Block") == "deny":
            abort(401)
        return None

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        seen.append("teardown")

    @app.errorhandler(404)
    def missing(e: t.Any) -> tuple[str, int]:
        return "our own 404 page", 404

    @app.get("/posts")
    def posts() -> str:
        cache_tag("posts")
        return render_template_string(
            "{{ actionkit_script() }}<p>{{ session.get('count', 0) }}</p>",
        )

    @registry.action(id="inspect")
    def inspect(form: t.Any) -> str:
        seen.append((request.path, g.user, current_app.name, url_for("posts")))
        session["count"] = session.get("count", 0) + 1
        return "ok"

    @registry.action(id="missing")
    def missing_action(form: t.Any) -> None:
        not_found()

    @registry.action(id="aborting")
    def aborting(form: t.Any) -> None:
        abort(404)

    @registry.action(id="denied")
    def denied(form: t.Any) -> None:
        forbidden()

    return app, registry, seen


def test_actions_run_inside_flask_request_context() -> None:
    """request, g (from before_request), current_app and url_for work in an action, and
    teardown_request runs after it."""
    app, registry, seen = make_app()
    ActionKit(app)
    client = ActionClient(app)
    response = client.submit(registry["inspect"], {}, path="/posts", headers={"X-User": "ada"})
    assert response.status_code == 200
    assert seen[0] == ("/posts", "ada", app.name, "/posts")
    assert "teardown" in seen


def test_session_changes_are_saved_and_shown_in_the_same_round_trip() -> None:
    """A session changed by an action is saved in the answer; the re-rendered page sees it."""
    app, registry, seen = make_app()
    ActionKit(app)
    client = ActionClient(app)
    response = client.submit(registry["inspect"], {}, path="/posts")
    assert "session=" in response.headers["Set-Cookie"]
    assert "<p>1</p>" in response.text
    answer = client.submit(registry["inspect"], {}, path="/posts", js=True).json
    assert "<p>2</p>" in answer["html"]


@pytest.mark.parametrize(
    ("block", "status", "location"),
    [
        pytest.param("login", 303, "/login", id="redirect"),
        pytest.param("deny", 401, None, id="abort"),
    ],
)
def test_before_request_guards_actions(block: str, status: int, location: str | None) -> None:
    """A before_request answer (a login redirect, an abort) ends the action unrun."""
    app, registry, seen = make_app()
    ActionKit(app)
    client = ActionClient(app)
    response = client.submit(registry["inspect"], {}, path="/posts", headers={"X-Block": block})
    assert response.status_code == status
    assert response.headers.get("Location") == location
    assert not [s for s in seen if isinstance(s, tuple)]
    answer = client.call(registry["inspect"], path="/posts", headers={"X-Block": block})
    if location:
        assert answer.json["redirect"] == {"url": "/login", "type": "push"}
    else:
        assert answer.status_code == 401


@pytest.mark.parametrize("action_id", ["missing", "aborting"])
def test_error_pages_come_from_flask_handlers(action_id: str) -> None:
    """not_found() and abort(404) show the app's own 404 page without JavaScript."""
    app, registry, seen = make_app()
    ActionKit(app)
    response = ActionClient(app).submit(registry[action_id], {}, path="/posts")
    assert (response.status_code, response.text) == (404, "our own 404 page")


def test_error_without_handler_uses_werkzeug_page() -> None:
    """A status with no handler gets Flask's default error page."""
    app, registry, seen = make_app()
    ActionKit(app)
    response = ActionClient(app).submit(registry["denied"], {}, path="/posts")
    assert response.status_code == 403 and "Forbidden" in response.text


def test_app_factory_and_config_keys() -> None:
    """init_app reads ACTIONKIT_* config, stores the middleware in app.extensions."""
    store = MemoryStore()
    extension = ActionKit(body_limit=1234)
    app, registry, seen = make_app(ACTIONKIT_CACHE=store, ACTIONKIT_ALLOWED_ORIGINS=["x.org"])
    middleware = extension.init_app(app)
    assert isinstance(middleware, ActionMiddleware) and get_middleware(app) is middleware
    assert app.extensions["actionkit"] is middleware and app.wsgi_app is middleware
    assert middleware.cache is not None and middleware.cache.store is store
    assert middleware.body_limit == 1234 and middleware.allowed_origins == ("x.org",)
    assert middleware.secret_key == "flask-secret" and middleware.registry is registry
    assert "actionkit_script" in app.jinja_env.globals
    assert not hasattr(extension, "app")
    with pytest.raises(RuntimeError, match="already set up"):
        extension.init_app(app)
    with pytest.raises(RuntimeError, match="not set up"):
        get_middleware(Flask("other"))
    with pytest.raises(TypeError, match="valid"):
        ActionKit(bodylimit=3)


def test_cached_flask_page() -> None:
    """A Flask view calling cache_tag() is served from the cache the second time."""
    app, registry, seen = make_app(ACTIONKIT_CACHE=MemoryStore())
    ActionKit(app)
    client = app.test_client()
    statuses = []
    for _ in range(2):
        with client.get("/posts") as response:
            assert response.text.endswith("<p>0</p>")
            statuses.append(response.headers["Actionkit-Cache"])
    assert statuses == ["MISS", "HIT"]
