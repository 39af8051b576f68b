"""The Flask extension: actions run as views run, inside Flask's request context."""

from __future__ import annotations

import functools
import json
import logging
import os
import typing as t

import pytest
from flask import (
    Blueprint,
    Flask,
    abort,
    after_this_request,
    current_app,
    flash,
    g,
    got_request_exception,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)

from actionkit import (
    ActionMiddleware,
    Registry,
    SecretKeyMissing,
    action_state,
    cache_tag,
    fail,
    forbidden,
    not_found,
    revalidate_path,
    security,
)
from actionkit import redirect as action_redirect
from actionkit.flask import ActionKit, get_middleware
from actionkit.stores import MemoryStore, SQLiteStore
from actionkit.testing import ActionClient


def login_required(fn: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """What Flask-Login's ``login_required`` does for an anonymous user: it returns
    ``login_manager.unauthorized()``, which flashes a message and returns a redirect to the
    login view (or aborts with 401 when there is none)."""

    @functools.wraps(fn)
    def decorated(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if not g.user:
            if current_app.config.get("LOGIN_VIEW") is None:
                abort(401)
            flash("Please log in to access this page.")
            return redirect(url_for(current_app.config["LOGIN_VIEW"], next=request.url))
        return fn(*args, **kwargs)

    return decorated


class Site(t.NamedTuple):
    app: Flask
    registry: Registry
    seen: list[t.Any]
    client: ActionClient


def make_app(**config: t.Any) -> Site:
    """A Flask app with a registry of actions that report what they saw."""
    app = Flask(__name__)
    app.secret_key = "flask-secret"
    app.config.update(config)
    registry = Registry()
    seen: list[t.Any] = []
    app.config.setdefault("ACTIONKIT_REGISTRY", registry)
    app.config.setdefault("ACTIONKIT_CACHE", MemoryStore())

    @app.before_request
    def load_user() -> t.Any:
        g.user = request.headers.get("X-User")
        block = request.headers.get("X-Block")
        if block == "login":
            return redirect("/login")
        if block == "deny":
            abort(401)
        if block == "page":
            return "Log in first, please.", 401
        if block == "ok":
            return "Down for maintenance, come back soon."
        if block == "abort-redirect":
            abort(redirect("/elsewhere"))
        return None

    @app.after_request
    def remember(response: t.Any) -> t.Any:
        if g.get("remember"):
            response.set_cookie("remember_token", "yes")
        seen.append(("after_request", response.status_code))
        return response

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        seen.append(("teardown", type(exc).__name__ if exc else None))

    @app.errorhandler(404)
    def missing(e: t.Any) -> tuple[str, int]:
        return "our own 404 page", 404

    @app.get("/posts")
    def posts() -> str:
        cache_tag("posts")
        return render_template_string(
            "{{ actionkit_script() }}<p>{{ session.get('count', 0) }}</p>"
            "<i>{{ get_flashed_messages()|join }}</i><b>{{ request.cookies.remember_token }}</b>"
        )

    @app.get("/login")
    def login() -> str:
        return "login page"

    admin = Blueprint("admin", __name__, url_prefix="/admin")

    @admin.before_request
    def admins_only() -> t.Any:
        if request.headers.get("X-User") != "root":
            return redirect("/login")
        return None

    @admin.errorhandler(403)
    def admin_forbidden(e: t.Any) -> tuple[str, int]:
        return "admin 403 page", 403

    @admin.get("/users/<int:user_id>")
    def user(user_id: int) -> str:
        return f"user {user_id}"

    app.register_blueprint(admin)

    @registry.action(id="inspect")
    def inspect(form: t.Any) -> str:
        seen.append((request.path, request.method, g.user, current_app.name, url_for("posts")))
        session["count"] = session.get("count", 0) + 1
        return "ok"

    @registry.action(id="where")
    def where(form: t.Any = None) -> t.Any:
        return [request.endpoint, request.view_args, request.blueprint]

    @registry.action(id="missing")
    def missing_action(form: t.Any) -> None:
        not_found()

    @registry.action(id="aborting")
    def aborting(form: t.Any) -> None:
        session["count"] = 99
        abort(404)

    @registry.action(id="denied")
    def denied(form: t.Any) -> None:
        forbidden()

    @registry.action(id="teapot")
    def teapot(form: t.Any) -> None:
        abort(418)

    @registry.action(id="guarded")
    @login_required
    def guarded(form: t.Any = None) -> str:
        return "secret"

    @registry.action(id="remember")
    def remember_me(form: t.Any) -> None:
        g.remember = True
        session["user"] = "ada"

        @after_this_request
        def stamp(response: t.Any) -> t.Any:
            response.set_cookie("stamped", "1")
            return response

        revalidate_path("/posts")
        action_redirect("/posts")

    @registry.action(id="logout")
    def logout(form: t.Any) -> None:
        session.clear()

    @registry.action(id="crash")
    def crash(form: t.Any = None) -> None:
        raise ValueError("boom")

    @registry.action(id="response")
    def response(form: t.Any = None) -> t.Any:
        return current_app.response_class("a whole page")

    return Site(app, registry, seen, ActionClient(app))


@pytest.fixture
def site() -> Site:
    """The app above with ActionKit set up and a test client."""
    made = make_app()
    ActionKit(made.app)
    return made


def teardowns(seen: list[t.Any]) -> list[t.Any]:
    return [s[1] for s in seen if isinstance(s, tuple) and s[0] == "teardown"]


# -- the request context --------------------------------------------------------------------------


def test_actions_run_inside_flask_request_context(site: Site) -> None:
    """request, g (set by before_request), current_app and url_for work in an action;
    after_request and then teardown_request run after it."""
    response = site.client.submit(
        site.registry["inspect"], {}, path="/posts", headers={"X-User": "ada"}
    )
    assert response.status_code == 200
    assert site.seen[0] == ("/posts", "POST", "ada", site.app.name, "/posts")
    assert site.seen[1:3] == [("after_request", 200), ("teardown", None)]


def test_request_is_routed_as_the_page_the_form_is_on(site: Site) -> None:
    """A POST to a GET-only page still gives the action that page's endpoint and view args."""
    answer = site.client.call(
        site.registry["where"], path="/admin/users/7", headers={"X-User": "root"}
    )
    assert answer.json["result"] == ["admin.user", {"user_id": 7}, "admin"]
    answer = site.client.call(site.registry["where"], path="/nowhere")
    assert answer.json["result"] == [None, None, None]


def test_request_is_routed_as_the_page_before_a_post_route(site: Site) -> None:
    """Where a path has a GET page and a POST view, the action runs as the page; where it has
    only a POST view, as that view."""
    app = site.app

    @app.get("/split")
    def split_page() -> str:
        return "page"

    @app.post("/split")
    def split_post() -> str:
        return "post"

    @app.post("/only-post/<int:n>")
    def only_post(n: int) -> str:
        return "post"

    where = site.registry["where"]
    assert site.client.call(where, path="/split").json["result"] == ["split_page", {}, None]
    answer = site.client.call(where, path="/only-post/3")
    assert answer.json["result"] == ["only_post", {"n": 3}, None]

    @app.put("/only-put")
    def only_put() -> str:
        return "put"

    assert site.client.call(where, path="/only-put").json["result"] == [None, None, None]


def test_blueprint_before_request_guards_actions_on_its_pages(site: Site) -> None:
    """The before_request function of the page's blueprint runs before the action."""
    response = site.client.submit(site.registry["inspect"], {}, path="/admin/users/7")
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    assert not [s for s in site.seen if s[0] == "/admin/users/7"]


def test_blueprint_error_handler_renders_errors_on_its_pages(site: Site) -> None:
    """An error in an action posted to a blueprint's page shows that blueprint's error page."""
    response = site.client.submit(
        site.registry["denied"], {}, path="/admin/users/1", headers={"X-User": "root"}
    )
    assert (response.status_code, response.text) == (403, "admin 403 page")


# -- sessions and cookies -------------------------------------------------------------------------


def test_session_changes_are_saved_and_shown_in_the_same_round_trip(site: Site) -> None:
    """A session changed by an action is saved in the answer; the re-rendered page sees it."""
    response = site.client.submit(site.registry["inspect"], {}, path="/posts")
    assert "session=" in response.headers["Set-Cookie"]
    assert "<p>1</p>" in response.text
    answer = site.client.submit(site.registry["inspect"], {}, path="/posts", js=True).json
    assert "<p>2</p>" in answer["html"]
    assert site.client.get("/posts").text.endswith("<p>2</p><i></i><b></b>")


def test_after_request_cookies_join_the_answer(site: Site) -> None:
    """Cookies set by after_request and after_this_request functions (a remember-me cookie)
    are sent with an action that redirects, and the page in the answer sees them."""
    answer = site.client.submit(site.registry["remember"], {}, path="/posts", js=True)
    cookies = answer.headers.getlist("Set-Cookie")
    assert any(c.startswith("remember_token=yes") for c in cookies)
    assert any(c.startswith("stamped=1") for c in cookies)
    assert any(c.startswith("session=") for c in cookies)
    assert answer.json["redirect"]["url"] == "/posts"
    assert "<b>yes</b>" in answer.json["html"]
    assert ("after_request", 303) in site.seen
    assert teardowns(site.seen) == [None, None]  # the action, then the page after it


@pytest.mark.parametrize("city", ["Zürich", 'say "hi"', "a;b", "a b", "plain"])
def test_a_cookie_flask_quotes_reaches_the_page_after_the_action_as_its_value(
    city: str,
) -> None:
    """A cookie set through Flask's response in an action, whose value Werkzeug must quote and
    escape, is seen by the page after the action as the next request sees it."""
    registry = Registry()

    @registry.action
    def move(form: t.Any) -> None:
        @after_this_request
        def remember(response: t.Any) -> t.Any:
            response.set_cookie("city", form["city"])
            return response

    app = Flask(__name__)
    app.secret_key = "k" * 32
    ActionKit(app, registry=registry, cache=False)

    @app.get("/")
    def home() -> str:
        return repr(request.cookies.get("city"))

    client = ActionClient(app)
    assert client.submit(move, {"city": city}).text == repr(city)
    assert client.submit(move, {"city": city}, js=True).json["html"] == repr(city)
    assert client.get("/").text == repr(city)


def test_session_cleared_by_an_action_deletes_its_cookie(site: Site) -> None:
    """session.clear() in an action removes the session cookie, in the answer and the page."""
    site.client.submit(site.registry["inspect"], {}, path="/posts")
    response = site.client.submit(site.registry["logout"], {}, path="/posts")
    assert "session=;" in response.headers["Set-Cookie"]
    assert "<p>0</p>" in response.text
    assert site.client.get_cookie("session") is None


def test_session_is_saved_when_an_action_aborts(site: Site) -> None:
    """As with a view, a session changed before abort() is saved in the error's answer."""
    response = site.client.submit(site.registry["aborting"], {}, path="/posts")
    assert response.status_code == 404 and "session=" in response.headers["Set-Cookie"]
    assert "<p>99</p>" in site.client.get("/posts").text


def test_without_after_request_functions_sessions_still_behave_as_in_a_view() -> None:
    """With no after_request function, an action that leaves an empty session alone sends no
    cookie; a permanent session is still refreshed, and after_this_request still runs."""
    app = Flask(__name__)
    app.secret_key = "flask-secret"
    registry = Registry()
    ActionKit(app, registry=registry, cache=MemoryStore())

    @app.get("/")
    def home() -> str:
        return "home"

    @registry.action(id="noop")
    def noop(form: t.Any = None) -> str:
        return "nothing"

    @registry.action(id="login")
    def login(form: t.Any = None) -> None:
        session.permanent = True
        session["user"] = "ada"

    @registry.action(id="stamp")
    def stamp(form: t.Any = None) -> None:
        @after_this_request
        def add(response: t.Any) -> t.Any:
            response.set_cookie("stamped", "1")
            return response

    client = ActionClient(app)
    assert "Set-Cookie" not in client.call(registry["noop"], path="/").headers
    assert "session=" in client.call(registry["login"], path="/").headers["Set-Cookie"]
    refreshed = client.call(registry["noop"], path="/")
    assert "session=" in refreshed.headers["Set-Cookie"]  # SESSION_REFRESH_EACH_REQUEST
    stamped = client.call(registry["stamp"], path="/").headers.getlist("Set-Cookie")
    assert any(cookie.startswith("stamped=1") for cookie in stamped)


def test_without_a_flask_secret_key_actions_run_with_a_null_session() -> None:
    """An app with no secret key of its own (actionkit given one) has no sessions: an action
    sends no cookie, and an after_this_request function still runs."""
    app = Flask(__name__)
    registry = Registry()
    ActionKit(app, registry=registry, cache=MemoryStore(), secret_key="actions only")

    @app.get("/")
    def home() -> str:
        return "home"

    @registry.action(id="noop")
    def noop(form: t.Any = None) -> bool:
        return bool(current_app.session_interface.is_null_session(session))

    @registry.action(id="stamp")
    def stamp(form: t.Any = None) -> None:
        @after_this_request
        def add(response: t.Any) -> t.Any:
            response.set_cookie("stamped", "1")
            return response

    client = ActionClient(app)
    answer = client.call(registry["noop"], path="/")
    assert answer.json["result"] is True and "Set-Cookie" not in answer.headers
    assert client.call(registry["stamp"], path="/").headers["Set-Cookie"].startswith("stamped=1")


# -- answers from before_request, login_required and abort ---------------------------------------


@pytest.mark.parametrize(
    ("block", "status", "location", "page"),
    [
        pytest.param("login", 303, "/login", None, id="redirect"),
        pytest.param("abort-redirect", 303, "/elsewhere", None, id="abort-response"),
        pytest.param("deny", 401, None, "Unauthorized", id="abort"),
        pytest.param("page", 401, None, "Log in first, please.", id="own-page"),
        pytest.param("ok", 403, None, "Forbidden", id="answer-refuses"),
    ],
)
def test_before_request_answer_ends_the_action(
    site: Site, block: str, status: int, location: str | None, page: str
) -> None:
    """A before_request answer (a login redirect, an abort, a page) decides the answer and the
    action never runs; teardown_request still runs, with no error."""
    headers = {"X-Block": block}
    response = site.client.submit(site.registry["inspect"], {}, path="/posts", headers=headers)
    assert response.status_code == status
    assert response.headers.get("Location") == location
    if page:
        assert page in response.text
    answer = site.client.call(site.registry["inspect"], path="/posts", headers=headers)
    if location:
        assert answer.json["redirect"] == {"url": location, "type": "push"}
        assert answer.json["html"] is None or location == "/login"
    else:
        assert answer.status_code == status and "error" in answer.json
    assert not [s for s in site.seen if s[0] == "/posts"]
    assert teardowns(site.seen) and set(teardowns(site.seen)) == {None}


def test_login_required_action_redirects_to_login_and_keeps_the_flash(site: Site) -> None:
    """A login_required action with a login view: 303 to it with ?next=, the flashed message
    saved in the session (shown by the next page); the JS client gets the redirect and the
    login page in one answer."""
    site.app.config["LOGIN_VIEW"] = "login"
    response = site.client.submit(site.registry["guarded"], {}, path="/posts")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=http://localhost/posts"
    assert "Please log in" in site.client.get("/posts").text
    answer = site.client.call(site.registry["guarded"], path="/posts").json
    assert answer["redirect"]["url"].startswith("/login?next=")
    assert answer["html"] == "login page" and answer["result"] is None


def test_login_required_action_without_login_view_is_401(site: Site) -> None:
    """A login_required action with no login view aborts with 401; with a user it runs."""
    response = site.client.submit(site.registry["guarded"], {}, path="/posts")
    assert response.status_code == 401 and "Unauthorized" in response.text
    assert site.client.call(site.registry["guarded"], path="/posts").status_code == 401
    answer = site.client.call(site.registry["guarded"], path="/posts", headers={"X-User": "ada"})
    assert answer.json["result"] == "secret"


# -- Flask-Login, for real ----------------------------------------------------------------------


def login_site(login_view: str | None) -> tuple[Flask, Registry, ActionClient]:
    """A Flask app using Flask-Login: a user logs in with an action; one action is
    @login_required, and the /members/ blueprint checks the login in before_request."""
    import flask_login

    class User(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    app = Flask(__name__)
    app.secret_key = "flask-login-secret"
    registry = Registry()
    manager = flask_login.LoginManager(app)
    manager.login_view = login_view

    @manager.user_loader
    def load(user_id: str) -> User | None:
        return User(user_id) if user_id == "ada" else None

    @app.get("/posts")
    def posts() -> str:
        return render_template_string("<i>{{ get_flashed_messages()|join }}</i>")

    @app.get("/login")
    def login_page() -> str:
        return "login page"

    members = Blueprint("members", __name__, url_prefix="/members")

    @members.before_request
    def members_only() -> t.Any:
        if not flask_login.current_user.is_authenticated:
            return manager.unauthorized()
        return None

    @members.get("/")
    def members_page() -> str:
        return "members page"

    app.register_blueprint(members)

    @registry.action(id="log-in")
    def log_in(form: t.Any = None) -> None:
        flask_login.login_user(User("ada"))

    @registry.action(id="secret")
    @flask_login.login_required
    def secret(form: t.Any = None) -> str:
        return f"secret for {flask_login.current_user.id}"

    @registry.action(id="plain")
    def plain(form: t.Any = None) -> str:
        return "ran"

    ActionKit(app, registry=registry, cache=MemoryStore())
    return app, registry, ActionClient(app)


def test_flask_login_required_redirects_to_the_login_view() -> None:
    """With a login view, Flask-Login's @login_required action ends, for an anonymous user, with
    the redirect login_manager.unauthorized() makes: 303 to the login view with next=, its
    flashed message shown by the next page; the JS client gets the redirect and the login page
    in one answer. Nothing of the action runs."""
    app, registry, client = login_site("login_page")
    response = client.submit(registry["secret"], {}, path="/posts")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")
    assert "%2Fposts" in response.headers["Location"]
    assert "Please log in to access this page." in client.get("/posts").text
    answer = client.call(registry["secret"], path="/posts")
    assert answer.status_code == 200
    assert answer.json["redirect"]["url"].startswith("/login?next=")
    assert answer.json["html"] == "login page" and answer.json["result"] is None


def test_flask_login_required_without_login_view_is_401() -> None:
    """Without a login view, unauthorized() aborts with 401, which becomes the answer's status,
    without JavaScript and for the client."""
    app, registry, client = login_site(None)
    assert client.submit(registry["secret"], {}, path="/posts").status_code == 401
    answer = client.call(registry["secret"], path="/posts")
    assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"


def test_flask_login_user_logged_in_by_an_action_runs_login_required_actions() -> None:
    """login_user() in an action sets Flask-Login's session cookie; from then on the
    @login_required action runs and sees current_user."""
    app, registry, client = login_site("login_page")
    logged = client.call(registry["log-in"], path="/posts")
    assert logged.status_code == 200 and "session=" in logged.headers["Set-Cookie"]
    answer = client.call(registry["secret"], path="/posts")
    assert answer.status_code == 200 and answer.json["result"] == "secret for ada"
    response = client.submit(registry["secret"], {}, path="/posts")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("login_view", "status"),
    [pytest.param("login_page", 303, id="login-view"), pytest.param(None, 401, id="no-login-view")],
)
def test_flask_login_check_in_before_request_guards_every_action(
    login_view: str | None, status: int
) -> None:
    """A before_request login check on a blueprint guards every action posted to its pages,
    undecorated ones too: anonymous, the action does not run; logged in, it does."""
    app, registry, client = login_site(login_view)
    response = client.submit(registry["plain"], {}, path="/members/")
    assert response.status_code == status
    answer = client.call(registry["plain"], path="/members/")
    assert answer.json.get("result") is None
    assert client.call(registry["plain"], path="/posts").json["result"] == "ran"
    client.call(registry["log-in"], path="/posts")
    assert client.call(registry["plain"], path="/members/").json["result"] == "ran"
    assert client.submit(registry["plain"], {}, path="/members/").status_code == 200


def test_action_returning_a_page_is_an_error(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """An action returning a 200 Flask response is a mistake: 500, logged with the reason."""
    response = site.client.call(site.registry["response"], path="/posts")
    assert response.status_code == 500 and response.json["error"]["code"] == "action_failed"
    assert "returned a Flask response ('200 OK')" in caplog.text


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("action_id", ["missing", "aborting"])
def test_error_pages_come_from_flask_handlers(site: Site, action_id: str) -> None:
    """not_found() and abort(404) show the app's own 404 page without JavaScript, and a JSON
    error to the client."""
    response = site.client.submit(site.registry[action_id], {}, path="/posts")
    assert (response.status_code, response.text) == (404, "our own 404 page")
    answer = site.client.submit(site.registry[action_id], {}, path="/posts", js=True)
    assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("action_id", ["missing", "aborting"])
def test_an_error_page_ends_the_request_once(site: Site, action_id: str) -> None:
    """The app's error page for not_found() is made in the action's own request context: the
    teardown functions run once, as for a view that aborts."""
    response = site.client.submit(site.registry[action_id], {}, path="/posts")
    assert response.status_code == 404
    assert teardowns(site.seen) == [None]


@pytest.mark.parametrize(("action_id", "status"), [("denied", 403), ("teapot", 418)])
def test_error_without_handler_uses_flask_default_page(
    site: Site, action_id: str, status: int
) -> None:
    """A status with no handler gets Flask's default error page."""
    response = site.client.submit(site.registry[action_id], {}, path="/posts")
    assert response.status_code == status and "<h1>" in response.text


def test_failing_error_handler_falls_back_to_a_plain_page(site: Site) -> None:
    """An error handler that raises does not turn the answer into a crash."""

    @site.app.errorhandler(403)
    def broken(e: t.Any) -> str:
        raise RuntimeError("handler bug")

    response = site.client.submit(site.registry["denied"], {}, path="/posts")
    assert response.status_code == 403 and "Forbidden" in response.text


def test_action_exception_reaches_flask_signal_and_teardown(site: Site) -> None:
    """An action that raises: 500 with a digest, got_request_exception sent (error trackers),
    teardown_request given the exception, after_request not run."""
    received: list[BaseException] = []

    def listener(sender: Flask, exception: BaseException, **extra: t.Any) -> None:
        received.append(exception)

    with got_request_exception.connected_to(listener, site.app):
        response = site.client.call(site.registry["crash"], path="/posts")
    assert response.status_code == 500 and "digest" in response.json["error"]
    assert [type(e) for e in received] == [ValueError]
    assert teardowns(site.seen) == ["ValueError"]
    assert not [s for s in site.seen if s[0] == "after_request"]


# -- setup ----------------------------------------------------------------------------------------


def test_app_factory_and_config_keys() -> None:
    """init_app reads ACTIONKIT_* config (keyword arguments win) and keeps its state in
    app.extensions, never on the extension; one extension serves several apps."""
    store = MemoryStore()
    extension = ActionKit(body_limit=1234)
    first = make_app(ACTIONKIT_CACHE=store, ACTIONKIT_ALLOWED_ORIGINS=["x.org"], DEBUG=True)
    first.app.config["ACTIONKIT_BODY_LIMIT"] = 99
    middleware = extension.init_app(first.app)
    assert isinstance(middleware, ActionMiddleware) and get_middleware(first.app) is middleware
    assert first.app.extensions["actionkit"] is middleware and first.app.wsgi_app is middleware
    assert middleware.cache is not None and middleware.cache.store is store
    assert middleware.body_limit == 1234 and middleware.allowed_origins == ("x.org",)
    assert middleware.secret_key == "flask-secret" and middleware.registry is first.registry
    assert middleware.debug is True
    assert not hasattr(extension, "app")
    second = make_app(ACTIONKIT_TRUST_FORWARDED=True, ACTIONKIT_DEBUG=False)
    other = extension.init_app(second.app, body_limit=10, cache=False)
    assert (other.body_limit, other.cache, other.trust_forwarded) == (10, None, True)
    assert other.debug is False and other is not middleware
    second.app.debug = True  # ACTIONKIT_DEBUG said False: it stays
    assert other.debug is False
    first.app.debug = False  # debug not given: it follows the app's
    assert middleware.debug is False
    with pytest.raises(RuntimeError, match="already set up"):
        extension.init_app(first.app)
    with pytest.raises(RuntimeError, match="not set up"):
        get_middleware(Flask("other"))
    with pytest.raises(TypeError, match="valid"):
        ActionKit(bodylimit=3)
    with pytest.raises(TypeError, match="valid"):
        ActionKit().init_app(Flask("other"), cache_store=3)


def test_debug_set_after_the_extension_shows_tracebacks() -> None:
    """app.run(debug=True) sets app.debug after ActionKit(app): a failed action's answer shows
    its traceback from then on, as Flask's own error pages do."""
    registry = Registry()

    @registry.action
    def boom(form: t.Any) -> None:
        raise ValueError("kaboom")

    app = Flask(__name__)
    app.secret_key = "k" * 32
    ActionKit(app, registry=registry)
    client = ActionClient(app)
    assert client.submit(boom, {}, js=True).json["error"].get("traceback") is None
    app.debug = True
    assert "ValueError: kaboom" in client.submit(boom, {}, js=True).json["error"]["traceback"]
    get_middleware(app).debug = False  # given: wins over the app's
    assert client.submit(boom, {}, js=True).json["error"].get("traceback") is None


def test_a_page_flask_streams_sees_the_request_of_actionkit() -> None:
    """A page streamed with stream_template renders while Flask iterates it, after the app
    was called: it sees the outcome of the action before it, the cookies and the mount point."""
    from flask import stream_template_string
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from actionkit import cookies, fail

    registry = Registry()

    @registry.action
    def save(form: t.Any) -> t.Any:
        return fail(422, {"errors": {"title": "Title is required"}})

    app = Flask(__name__)
    app.secret_key = "k" * 32
    ActionKit(app, registry=registry)
    page = (
        "{{ action_state().error('title') }}|{{ 'script' in actionkit_script() }}"
        "|{{ actionkit_script().split('\"')[1][:17] }}|{{ name() }}"
    )

    @app.get("/stream")
    def streamed() -> t.Any:
        return stream_template_string(page, name=lambda: cookies().get("name"))

    def root(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 Not Found", [])
        return [b""]

    client = ActionClient(DispatcherMiddleware(root, {"/blog": app}))
    client.set_cookie("name", "Ada")
    no_js = client.submit(save, {"title": ""}, path="/blog/stream")
    assert (no_js.status_code, no_js.text) == (422, "Title is required|True|/blog/_actionkit/|Ada")
    js = client.submit(save, {"title": ""}, path="/blog/stream", js=True)
    assert js.json["html"] == "Title is required|True|/blog/_actionkit/|Ada"
    assert client.get("/blog/stream").text == "None|True|/blog/_actionkit/|Ada"


@pytest.mark.parametrize("read", ["cookies()", "request.cookies"])
def test_a_streamed_page_that_reads_cookies_is_never_stored(read: str) -> None:
    """A page streamed with stream_with_context reads the cookies only once its answer has
    started (the cache planned to store it then): it is somebody's all the same, and the next
    visitor gets a page of their own."""
    from flask import Response, stream_with_context

    from actionkit import cache_life, cookies

    app = Flask(__name__)
    app.secret_key = "k" * 32
    ActionKit(app, registry=Registry())

    @app.get("/hello")
    def hello() -> t.Any:
        cache_life(60)

        def body() -> t.Iterator[str]:
            yield "hello "
            jar = cookies() if read == "cookies()" else request.cookies
            yield jar.get("name", "guest")

        return Response(stream_with_context(body()))

    alice = app.test_client()
    alice.set_cookie("name", "alice")
    assert alice.get("/hello").text == "hello alice"
    assert app.test_client().get("/hello").text == "hello guest"


@pytest.mark.parametrize("how", ["stream_with_context", "stream_template"])
def test_a_streamed_page_that_reads_the_session_is_never_stored(how: str) -> None:
    """A streamed page reads the session once Flask has decided its headers (without Vary:
    Cookie): it is somebody's all the same (it was stored, and served to the next visitor)."""
    from flask import Response, session, stream_template_string, stream_with_context

    from actionkit import cache_life

    app = Flask(__name__)
    app.secret_key = "k" * 32
    ActionKit(app, registry=Registry())

    @app.get("/login/<name>")
    def login(name: str) -> str:
        session["name"] = name
        return "ok"

    @app.get("/feed")
    def feed() -> t.Any:
        cache_life(60)
        if how == "stream_template":
            return stream_template_string("Signed in as {{ session.get('name', 'guest') }}")

        def body() -> t.Iterator[str]:
            yield "Signed in as "
            yield session.get("name", "guest")

        return Response(stream_with_context(body()))

    alice = app.test_client()
    alice.get("/login/alice")
    assert alice.get("/feed").text == "Signed in as alice"
    guest = app.test_client().get("/feed")
    assert (guest.text, guest.headers["Actionkit-Cache"]) == ("Signed in as guest", "MISS")


def _each(client: t.Any, path: str, times: int) -> t.Iterator[t.Any]:
    """``times`` GETs of ``path``, one after the other: each read whole (and so stored, if it
    is) before the next is sent."""
    for _ in range(times):
        answer = client.get(path)
        answer.get_data()
        yield answer


@pytest.mark.parametrize("hook", ["teardown_request", "request_finished"])
def test_a_page_is_stored_though_the_session_is_read_once_it_is_made(hook: str) -> None:
    """A teardown_request function (or a request_finished receiver) that reads the session,
    a request logger's, reads it after the page is made: that is not the page's read, and
    the page is stored as before (it never was any more)."""
    from flask import session

    from actionkit import cache_life

    app = Flask(__name__)
    app.secret_key = "k" * 32
    ActionKit(app, registry=Registry())
    seen: list[t.Any] = []
    if hook == "teardown_request":
        app.teardown_request(lambda exc: seen.append(session.get("uid")))
    else:
        from flask import request_finished

        def log(sender: t.Any, response: t.Any, **extra: t.Any) -> None:
            seen.append(session.get("uid"))

        request_finished.connect(log, app, weak=False)

    @app.get("/page")
    def page() -> str:
        cache_life(60)
        return "page"

    client = app.test_client()
    answers = [(a.text, a.headers["Actionkit-Cache"]) for a in _each(client, "/page", 3)]
    assert answers == [
        ("page", "MISS"),
        ("page", "HIT"),
        ("page", "HIT"),
    ]
    assert seen


def test_a_page_reading_a_session_flask_never_saves_is_stored() -> None:
    """Without a secret key Flask's session is a null session, the same for everyone and
    never saved (no Vary: Cookie): a page reading it is stored for everyone."""
    from flask import session

    from actionkit import cache_life

    app = Flask(__name__)
    ActionKit(app, registry=Registry(), secret_key="actions-only")

    @app.get("/page")
    def page() -> str:
        cache_life(60)
        return f"user={session.get('uid')}"

    client = app.test_client()
    answers = [(a.text, a.headers["Actionkit-Cache"]) for a in _each(client, "/page", 2)]
    assert answers == [
        ("user=None", "MISS"),
        ("user=None", "HIT"),
    ]


def test_cache_tag_in_a_streamed_template_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cache_tag() in a streamed template runs once the answer has started, too late to make
    the page cacheable: a warning says so (once), rather than the page silently never being
    stored."""
    from flask import stream_template_string

    from actionkit.cache import api

    monkeypatch.setattr(api, "_late", [])
    app = Flask(__name__)
    ActionKit(app, registry=Registry())
    app.jinja_env.globals["cache_tag"] = cache_tag

    @app.get("/feed")
    def feed() -> t.Any:
        return stream_template_string("{{ cache_tag('feed') or '' }}feed")

    client = app.test_client()
    with caplog.at_level(logging.WARNING, "actionkit"):
        for _ in range(2):
            answer = client.get("/feed")
            assert (answer.text, answer.headers["Actionkit-Cache"]) == ("feed", "BYPASS")
    late = [r for r in caplog.records if "cache_tag() was called once" in r.getMessage()]
    assert len(late) == 1


def test_jinja_globals_are_installed() -> None:
    """The template globals of actionkit.jinja are in app.jinja_env."""
    made = make_app()
    ActionKit(made.app)
    assert {"actionkit_script", "action_form", "action_state"} <= set(made.app.jinja_env.globals)
    with made.app.test_request_context():
        html = render_template_string(
            "{% call action_form(act) %}<button>Go</button>{% endcall %}",
            act=made.registry["inspect"],
        )
    assert html.startswith('<form method="post"') and "$ACTION_ID_inspect" in html


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        pytest.param("memory", MemoryStore, id="memory"),
        pytest.param("cache.sqlite3", SQLiteStore, id="sqlite-relative"),
    ],
)
def test_cache_named_by_a_string(tmp_path: t.Any, spec: str, kind: type) -> None:
    """ACTIONKIT_CACHE may name a store (from the environment): 'memory' or an SQLite file in
    the instance folder."""
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))  # created if missing
    app.config["ACTIONKIT_CACHE"] = spec
    middleware = ActionKit(app, registry=Registry(), secret_key="k")
    assert middleware is not None
    cache = get_middleware(app).cache
    assert cache is not None and isinstance(cache.store, kind)
    if kind is SQLiteStore:
        assert t.cast(SQLiteStore, cache.store).path == os.path.join(app.instance_path, spec)
        assert os.path.isdir(app.instance_path)
    with pytest.raises(ValueError, match="memory"):
        ActionKit(Flask("other"), cache="")


def test_secret_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret key: ACTIONKIT_SECRET_KEY config over app.secret_key (SECRET_KEY); with
    neither, binding arguments fails with SecretKeyMissing, which says how to fix it."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="from-config", ACTIONKIT_REGISTRY=Registry())
    assert ActionKit().init_app(app).secret_key == "from-config"
    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", ACTIONKIT_SECRET_KEY="own", ACTIONKIT_REGISTRY=Registry())
    assert ActionKit().init_app(app).secret_key == "own"

    monkeypatch.delenv(security.ENV_SECRET_KEY, raising=False)
    monkeypatch.setattr(security, "_process_key", None)
    registry = Registry()
    keyless = Flask(__name__)

    @registry.action(id="bound")
    def bound(n: int, form: t.Any) -> int:
        return n

    @keyless.get("/")
    def home() -> str:
        return render_template_string("{{ act.bind(1).field() }}", act=bound)

    ActionKit(keyless, registry=registry)
    assert get_middleware(keyless).secret_key is None
    keyless.testing = True
    with pytest.raises(SecretKeyMissing, match="app.secret_key"):
        keyless.test_client().get("/")


def test_cached_flask_page(site: Site) -> None:
    """A Flask view calling cache_tag() is served from the cache the second time, and an
    action's revalidation is seen by the next GET."""
    statuses = []
    for _ in range(2):
        with site.client.get("/posts") as response:
            assert response.text.endswith("<p>0</p><i></i><b></b>")
            statuses.append(response.headers["Actionkit-Cache"])
    assert statuses == ["MISS", "HIT"]
    site.client.submit(site.registry["remember"], {}, path="/posts")
    with site.client.get("/posts") as response:
        assert response.headers["Actionkit-Cache"] == "MISS" and "<b>yes</b>" in response.text


# -- tested as Flask apps are tested ------------------------------------------------------------


def _factory(title: str, **config: t.Any) -> Flask:
    """An app factory, as Flask's tutorial writes one: a page tagged "posts" and an action."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="factory-secret-0123456789", TESTING=True, **config)
    registry = Registry()
    posts: list[str] = []

    @registry.action
    def create_post(form: t.Any) -> None:
        posts.append(form["title"])
        revalidate_path("/posts")
        action_redirect("/posts")

    @app.get("/posts")
    def list_posts() -> str:
        cache_tag("posts")
        return f"{title}: {', '.join(posts)}"

    ActionKit(app, registry=registry)
    app.extensions["create_post"] = create_post
    return app


def test_the_usual_flask_test_pattern_caches_and_revalidates() -> None:
    """`client = app.test_client(); r = client.get(...); r.data` (never closed) is cached, an
    action submitted with the same client revalidates, and apps made by one factory do not
    share pages."""
    app = _factory("first")
    client = app.test_client()
    first = client.get("/posts")
    assert first.headers["Actionkit-Cache"] == "MISS" and first.text == "first: "
    response = client.get("/posts")
    assert response.headers["Actionkit-Cache"] == "HIT" and response.text == "first: "
    created = client.submit(app.extensions["create_post"], {"title": "Hi"}, path="/posts")
    assert created.status_code == 303
    assert client.get("/posts").text == "first: Hi"
    other = _factory("second").test_client()
    assert other.get("/posts").text == "second: "


def test_action_client_of_a_flask_app_is_flasks_client() -> None:
    """ActionClient(app) of a Flask app is Flask's test client: session_transaction() works."""
    app = _factory("sessions")

    @app.get("/who")
    def who() -> str:
        return str(session.get("user", "-"))

    client = ActionClient(app)
    with client.session_transaction() as sess:
        sess["user"] = "ada"
    assert client.get("/who").text == "ada"


def test_revalidation_outside_a_request_uses_the_apps_store(tmp_path: t.Any) -> None:
    """revalidate_path() in the app context (a flask command, a job) reaches the app's own
    store, not a process-wide one."""
    app = _factory("cli", ACTIONKIT_CACHE=str(tmp_path / "cache.sqlite3"))
    client = app.test_client()
    assert client.get("/posts").text == "cli: "
    assert client.get("/posts").headers["Actionkit-Cache"] == "HIT"
    with app.app_context():
        revalidate_path("/posts")
    assert client.get("/posts").headers["Actionkit-Cache"] == "MISS"


def test_revalidation_outside_any_context_reaches_every_store(tmp_path: t.Any) -> None:
    """Outside a request and an app context, with middlewares of several stores alive,
    revalidate_path() reaches each of them rather than guessing one."""
    apps = [_factory(n, ACTIONKIT_CACHE=str(tmp_path / f"{n}.sqlite3")) for n in ("a", "b")]
    clients = [app.test_client() for app in apps]
    for client in clients:
        assert (
            client.get("/posts").data and client.get("/posts").headers["Actionkit-Cache"] == "HIT"
        )
    revalidate_path("/posts")
    assert [c.get("/posts").headers["Actionkit-Cache"] for c in clients] == ["MISS", "MISS"]


def test_jinja_settings_made_after_init_app_apply() -> None:
    """init_app does not make Flask's Jinja environment early: TEMPLATES_AUTO_RELOAD and
    jinja_options set afterwards still apply, and the template globals are there."""
    app = _factory("jinja")
    app.config["TEMPLATES_AUTO_RELOAD"] = True
    app.jinja_options = {**app.jinja_options, "trim_blocks": True}
    assert app.jinja_env.auto_reload is True and app.jinja_env.trim_blocks is True
    assert "actionkit_script" in app.jinja_env.globals


def test_flask_command_lists_the_actions() -> None:
    """`flask actionkit actions` is registered by init_app."""
    app = _factory("cli")
    result = app.test_cli_runner().invoke(args=["actionkit", "actions"])
    assert result.exit_code == 0, result.output
    assert "create_post" in result.output


# -- Flask adoption: guards, flashes, decorators, templates ------------------------------------


def _guarded_site() -> tuple[Flask, dict[str, t.Any], list[str]]:
    """A blueprint under /admin/ whose before_request refuses everyone, a scoped action shown
    only there, a flask-tutorial-style login_required (kwargs only) and a flashing action."""
    from flask import get_flashed_messages

    app = Flask(__name__)
    app.config.update(SECRET_KEY="guarded-secret-0123456789", TESTING=True)
    registry = Registry()
    ran: list[str] = []
    admin = Blueprint("admin", __name__, url_prefix="/admin")

    @admin.before_request
    def refuse() -> None:
        abort(403)

    @admin.get("/")
    def admin_home() -> str:
        return "admin"

    app.register_blueprint(admin)

    @app.get("/")
    def home() -> str:
        return "home " + "|".join(get_flashed_messages())

    def login_required(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        @functools.wraps(view)
        def wrapped_view(**kwargs: t.Any) -> t.Any:
            if "user" not in session:
                return redirect(url_for("home"))
            return view(**kwargs)

        return wrapped_view

    @registry.action(under="/admin/")
    def wipe() -> None:
        ran.append("wipe")

    @registry.action
    @login_required
    def rename(title: str) -> str:
        ran.append(title)
        return title

    @registry.action
    def say(text: str) -> None:
        flash(text)

    @registry.action
    def missing() -> None:
        abort(404, "No such post: it was deleted.")

    @app.errorhandler(404)
    def not_found_page(error: t.Any) -> tuple[str, int]:
        return f"<p>{error.description}</p>", 404

    ActionKit(app, registry=registry)
    return app, {a.name: a for a in registry}, ran


@pytest.mark.parametrize("path", ["/", "/nope", "/administrator"])
def test_a_scoped_action_runs_nowhere_else(path: str) -> None:
    """An action with under="/admin/" posted to a page outside /admin/ is refused with 404 and
    runs nothing (its page's guards cannot be routed around)."""
    app, actions, ran = _guarded_site()
    client = app.test_client()
    assert client.submit(actions["wipe"], path=path).status_code == 404
    assert client.call(actions["wipe"], path=path).status_code == 404
    assert ran == []


@pytest.mark.parametrize(
    ("path", "status"), [("/admin/", 403), ("/admin/nope", 404), ("/admin", 404)]
)
def test_a_scoped_action_meets_the_guards_of_its_pages(path: str, status: int) -> None:
    """Posted under /admin/, the blueprint's guard runs first; posted to a path there that
    Flask does not route (no guard would run), it is refused with 404: ``/admin`` too, which
    Flask answers by redirecting to ``/admin/`` (no rule, so no blueprint, matches it)."""
    app, actions, ran = _guarded_site()
    assert app.test_client().submit(actions["wipe"], path=path).status_code == status
    assert ran == []


def test_a_scoped_action_is_refused_at_a_route_of_the_app_matching_below_its_root() -> None:
    """A catch-all route of the app (``/<path:page>``: a CMS, an SPA fallback) matches
    ``/admin/anything`` too; posted there, the blueprint's guard does not run, so the action
    must not either (it ran for anyone)."""
    app, actions, ran = _guarded_site()
    app.add_url_rule("/<path:page>", "cms_page", lambda page: f"page {page}")
    app.add_url_rule("/<section>/<slug>/<int:n>", "cms_item", lambda **kw: "item")
    client = app.test_client()
    assert client.submit(actions["wipe"], path="/admin/anything").status_code == 404
    assert client.call(actions["wipe"], path="/admin/anything").status_code == 404
    assert client.call(actions["wipe"], path="/admin/note/1").status_code == 404
    assert client.submit(actions["wipe"], path="/admin/").status_code == 403
    assert ran == []


def test_a_proxy_fix_applied_before_the_extension_stays_outside_it() -> None:
    """``app.wsgi_app = ProxyFix(app.wsgi_app)`` before ``ActionKit(app)`` (Flask's docs, in
    a factory): the extension goes inside it, so an action sees the request as its views do
    (the client's address, the prefix in ``url_for``), not the proxy's."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    registry = Registry()

    @registry.action(id="who")
    def who() -> dict[str, t.Any]:
        return {"remote": request.remote_addr, "done": url_for("done")}

    @registry.action(id="go")
    def go() -> None:
        action_redirect(url_for("done"))

    app = Flask(__name__)
    app.secret_key = "proxy-secret-0123456789"
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_host=1, x_proto=1, x_prefix=1)  # type: ignore[method-assign]
    ActionKit(app, registry=registry)
    assert isinstance(app.wsgi_app, ProxyFix)
    app.add_url_rule("/", "home", lambda: {"remote": request.remote_addr, "done": url_for("done")})
    app.add_url_rule("/done", "done", lambda: "done")
    proxy = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Host": "public.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Prefix": "/shop",
        "Origin": "https://public.example",
    }
    client = ActionClient(app)
    base = {"REMOTE_ADDR": "10.0.0.1"}
    view = client.get("/", headers=proxy, environ_base=base).json
    assert view == {"remote": "203.0.113.9", "done": "/shop/done"}
    assert client.call(registry.get("who"), headers=proxy, environ_base=base).json["result"] == view
    moved = client.submit(registry.get("go"), headers=proxy, environ_base=base)
    assert moved.status_code == 303 and moved.headers["Location"] == "/shop/done"


def test_a_form_posted_where_flask_adds_a_slash_is_answered_with_303() -> None:
    """Posted to ``/posts`` when the route is ``/posts/``, the page after the action is Flask's
    redirect to ``/posts/``: the browser is sent there with ``303`` (a ``308`` would make it post
    the form again, and the action run twice)."""
    registry = Registry()
    ran: list[object] = []

    @registry.action
    def like(form: object) -> None:
        ran.append(form)

    app = Flask(__name__)
    ActionKit(app, registry=registry, secret_key="test-secret-key-0123456789")
    app.add_url_rule("/posts/", "posts", lambda: "posts")
    response = ActionClient(app).submit(like, {}, path="/posts")
    assert response.status_code == 303 and response.headers["Location"].endswith("/posts/")
    assert len(ran) == 1


def test_an_action_returning_a_permanent_redirect_is_answered_with_303() -> None:
    """An action that returns ``redirect(url, 308)`` (or 301) ran: the browser is sent on with
    ``303``, as after redirect(); a 308 would post the form to the new URL, run it again."""
    from flask import redirect as flask_redirect

    registry = Registry()
    ran: list[int] = []

    @registry.action
    def move() -> t.Any:
        ran.append(1)
        return flask_redirect("/moved", 308)

    app = Flask(__name__)
    ActionKit(app, registry=registry, secret_key="test-secret-key-0123456789")
    app.add_url_rule("/", "home", lambda: "home")
    app.add_url_rule("/moved", "moved", lambda: "moved")
    client = app.test_client()
    response = client.submit(move, {}, path="/")
    assert response.status_code == 303 and response.headers["Location"] == "/moved"
    followed = client.submit(move, {}, path="/", follow_redirects=True)
    assert followed.text == "moved" and ran == [1, 1]


def test_a_guard_that_moves_the_form_keeps_its_308() -> None:
    """A before_request function answering 308 (the page moved), or aborting with it, before
    the action ran keeps its status: the browser posts the form to the new URL, where the
    action runs once. A login guard's 307 is a 303: posted to the login page, the form would
    run the action there, without the user."""
    from flask import redirect as flask_redirect
    from flask import request

    registry = Registry()
    ran: list[str] = []

    @registry.action
    def note(form: t.Any) -> None:
        ran.append(request.path)

    app = Flask(__name__)
    ActionKit(app, registry=registry, secret_key="test-secret-key-0123456789")

    @app.before_request
    def moved() -> t.Any:
        if request.path.startswith("/old/"):
            return flask_redirect("/new/" + request.path[5:], 308)
        if request.path.startswith("/gone/"):
            abort(flask_redirect("/new/" + request.path[6:], 308))
        if request.path == "/account":
            return flask_redirect("/login?next=/account", 307)
        return None

    for rule in ("/old/news", "/gone/news", "/new/news", "/account", "/login"):
        app.add_url_rule(rule, rule, lambda: "page " + request.path)
    client = app.test_client()
    for old in ("/old/news", "/gone/news"):
        response = client.submit(note, {}, path=old)
        assert (response.status_code, response.headers["Location"]) == (308, "/new/news")
    followed = client.submit(note, {}, path="/old/news", follow_redirects=True)
    assert followed.text == "page /new/news" and ran == ["/new/news"]
    guarded = client.submit(note, {}, path="/account", follow_redirects=True)
    assert guarded.history[0].status_code == 303 and guarded.text == "page /login"
    assert ran == ["/new/news"]


def test_the_cookies_of_a_redirect_the_action_returns_are_sent() -> None:
    """``response = redirect(...); response.set_cookie(...); return response``, as in a view:
    the cookie is sent with the action's redirect, with JavaScript or without."""
    from flask import redirect as flask_redirect

    registry = Registry()

    @registry.action
    def go() -> t.Any:
        response = flask_redirect("/done")
        response.set_cookie("theme", "dark")
        return response

    app = Flask(__name__)
    ActionKit(app, registry=registry, secret_key="test-secret-key-0123456789")
    app.add_url_rule("/", "home", lambda: "home")
    app.add_url_rule("/done", "done", lambda: "done")
    client = app.test_client()
    for js in (False, True):
        response = client.submit(go, {}, path="/", js=js)
        assert response.headers.getlist("Set-Cookie") == ["theme=dark; Path=/"]


def test_decorators_taking_kwargs_only_wrap_actions() -> None:
    """The tutorial's login_required(**kwargs) works on an action: it is called by keyword, and
    the decorator's redirect is the action's answer."""
    app, actions, ran = _guarded_site()
    client = app.test_client()
    response = client.submit(actions["rename"], {"title": "New"}, path="/")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    with client.session_transaction() as sess:
        sess["user"] = "ada"
    assert client.call(actions["rename"], "Newer", path="/").json["result"] == "Newer"
    assert ran == ["Newer"]


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_a_flash_from_an_action_is_shown_once(js: bool) -> None:
    """A flash() from an action shows in the page rendered after it, and the answer carries one
    session cookie, the page's (flash consumed): the next page does not show it again."""
    app, actions, ran = _guarded_site()
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["seen"] = True
    response = client.submit(actions["say"], {"text": "Saved."}, path="/", js=js)
    page = response.json["html"] if js else response.text
    assert page == "home Saved."
    assert len([h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]) == 1
    assert client.get("/").text == "home "


def test_abort_keeps_its_message_on_the_apps_error_page() -> None:
    """abort(404, "message") in an action shows the app's 404 page with that message."""
    app, actions, ran = _guarded_site()
    response = app.test_client().submit(actions["missing"], path="/")
    assert response.status_code == 404
    assert response.text == "<p>No such post: it was deleted.</p>"


def test_an_http_error_tells_the_client_script_its_message() -> None:
    """The client script's answer to abort() carries the message the page would show
    (abort(404, "message"), Flask-WTF's CSRF reason), and a code for 400 and 413 too; a plain
    abort(404) says the reason phrase, an abort(409) the code http_error."""
    from werkzeug.exceptions import BadRequest

    app = Flask(__name__)
    app.secret_key = "abort-secret-0123456789"
    registry = Registry()

    class CSRFError(BadRequest):
        description = "CSRF validation failed."

    statuses = {
        "described": lambda: abort(404, "No such post."),
        "plain": lambda: abort(404),
        "csrf": lambda: (_ for _ in ()).throw(CSRFError("The CSRF token is missing.")),
        "large": lambda: abort(413),
        "conflict": lambda: abort(409),
    }
    actions = {name: registry.register(fn, id=name) for name, fn in statuses.items()}
    ActionKit(app, registry=registry)
    app.add_url_rule("/", "home", lambda: "home")
    client = app.test_client()
    errors = {name: client.call(act, path="/").json["error"] for name, act in actions.items()}
    assert errors == {
        "described": {"code": "not_found", "message": "No such post."},
        "plain": {"code": "not_found", "message": "Not Found"},
        "csrf": {"code": "bad_request", "message": "The CSRF token is missing."},
        "large": {"code": "body_too_large", "message": "Request Entity Too Large"},
        "conflict": {"code": "http_error", "message": "Conflict"},
    }


def test_a_fail_not_returned_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """fail() called but not returned lets the action go on; that is logged as an error
    naming the action."""
    from actionkit import fail

    registry = Registry()

    @registry.action
    def sloppy(title: str) -> str:
        if not title:
            fail(422, {"title": "Required."})  # not returned
        return "saved"

    app = Flask(__name__)
    app.secret_key = "sloppy-secret-0123456789"
    ActionKit(app, registry=registry)
    app.add_url_rule("/", "home", lambda: "home")
    app.test_client().call(sloppy, "", path="/")
    assert "Action sloppy" in caplog.text and "called fail() but went on" in caplog.text


def test_a_page_reading_request_cookies_is_not_stored_for_everyone() -> None:
    """A page that read request.cookies without Vary: Cookie is not stored (it is somebody's);
    one that read the session is stored per cookie (Flask answers Vary: Cookie)."""
    app = Flask(__name__)
    app.secret_key = "cookie-secret-0123456789"
    ActionKit(app)

    @app.get("/who")
    def who() -> str:
        cache_tag("who")
        return request.cookies.get("name", "-")

    @app.get("/me")
    def me() -> str:
        cache_tag("me")
        return str(session.get("user"))

    client = app.test_client()
    assert [client.get("/who").headers["Actionkit-Cache"] for _ in "ab"] == ["BYPASS", "BYPASS"]
    assert client.get("/me").text == "None"
    assert client.get("/me").headers["Actionkit-Cache"] == "HIT"


# -- as Flask handles a view: error handlers, propagation, JSON, signals, limits -------------------


class PostMissing(LookupError):
    """An application's own error, which its error handler answers."""


def _app_with(registry: Registry, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.secret_key = "handlers-secret-0123456789"
    app.config.update(config)
    ActionKit(app, registry=registry)
    app.add_url_rule("/", "home", lambda: "home")
    return app


def test_an_error_handler_for_the_exception_class_answers_the_action() -> None:
    """An action raising an error the app handles (errorhandler(PostMissing)) is answered by
    that handler, as a view's would be: its page and status without JavaScript, its status to
    the client script, after_request functions run, teardown sees no error, and no
    got_request_exception; errorhandler(Exception) catches the rest, a redirect ends it."""
    registry = Registry()
    seen: list[t.Any] = []

    @registry.action(id="missing")
    def missing() -> None:
        raise PostMissing("post 7")

    @registry.action(id="other")
    def other() -> None:
        raise KeyError("x")

    app = _app_with(registry)

    @app.errorhandler(PostMissing)
    def post_missing(error: PostMissing) -> tuple[str, int]:
        return f"<p>No such post: {error}</p>", 404

    @app.errorhandler(KeyError)
    def key_error(error: KeyError) -> t.Any:
        return redirect("/")

    app.after_request(lambda response: seen.append(("after", response.status_code)) or response)
    app.teardown_request(lambda exc: seen.append(("teardown", exc)))
    client = app.test_client()
    with got_request_exception.connected_to(lambda *a, **k: seen.append("signal"), app):
        page = client.submit(missing, path="/")
        assert page.status_code == 404 and page.text == "<p>No such post: post 7</p>"
        assert seen == [("after", 404), ("teardown", None)]
        answer = client.call(missing, path="/")
        assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"
        assert client.submit(other, path="/").headers["Location"] == "/"
        assert client.call(other, path="/").json["redirect"] == {"url": "/", "type": "push"}
    assert "signal" not in seen


def test_an_action_error_reaches_the_test_as_a_view_error_does() -> None:
    """With TESTING (Flask's PROPAGATE_EXCEPTIONS), an action's error is raised to the test
    that made the request, as a view's is; PROPAGATE_EXCEPTIONS=False answers 500."""
    registry = Registry()

    @registry.action(id="boom")
    def boom() -> None:
        raise ZeroDivisionError("bug in the action")

    @registry.action(id="odd")
    def odd() -> object:
        return object()

    client = _app_with(registry, TESTING=True).test_client()
    with pytest.raises(ZeroDivisionError, match="bug in the action"):
        client.submit(boom, path="/")
    with pytest.raises(ZeroDivisionError):
        client.call(boom, path="/")
    with pytest.raises(TypeError, match="not JSON serializable"):
        client.call(odd, path="/")
    quiet = _app_with(registry, TESTING=True, PROPAGATE_EXCEPTIONS=False).test_client()
    assert quiet.call(boom, path="/").status_code == 500


def test_in_debug_mode_a_form_error_reaches_werkzeugs_debugger() -> None:
    """In debug mode (``flask run --debug`` wraps the app in Werkzeug's debugger), an action's
    error without JavaScript is raised to the debugger, which shows it, as a view's; the client
    script's answer still carries the traceback. ``PROPAGATE_EXCEPTIONS=False``, or
    ``debug=False`` given to the extension, answers the page with the digest as before."""
    from werkzeug.debug import DebuggedApplication

    registry = Registry()

    @registry.action(id="boom")
    def boom(form: t.Any) -> None:
        raise ZeroDivisionError("bug in the action")

    def debugged(app: Flask) -> ActionClient:
        app.debug = True
        return ActionClient(DebuggedApplication(app, evalex=False))

    client = debugged(_app_with(registry))
    page = client.submit(boom, path="/")
    assert page.status_code == 500
    assert "Werkzeug Debugger" in page.text and "ZeroDivisionError: bug in the action" in page.text
    answer = client.call(boom, path="/")
    assert answer.status_code == 500
    assert "ZeroDivisionError: bug in the action" in answer.json["error"]["traceback"]
    plain = _app_with(registry, DEBUG=True)  # without the debugger: raised, as a view's is
    with pytest.raises(ZeroDivisionError):
        ActionClient(plain).submit(boom, path="/")
    for quiet in (
        debugged(_app_with(registry, PROPAGATE_EXCEPTIONS=False)),
        debugged(_quiet_app(registry)),
    ):
        page = quiet.submit(boom, path="/")
        assert page.status_code == 500 and "Werkzeug Debugger" not in page.text
        assert "The action failed. Reference:" in page.text


def _quiet_app(registry: Registry) -> Flask:
    app = Flask(__name__)
    app.secret_key = "handlers-secret-0123456789"
    ActionKit(app, registry=registry, debug=False)
    app.add_url_rule("/", "home", lambda: "home")
    return app


def test_a_result_is_written_by_the_apps_json_provider() -> None:
    """What jsonify writes (dates, Decimal, UUID, dataclasses) the client script gets as the
    result, where it was a 500 after the action had run."""
    import dataclasses
    import datetime
    import decimal
    import uuid

    @dataclasses.dataclass
    class Post:
        id: int
        title: str

    registry = Registry()
    values = {
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "price": decimal.Decimal("1.50"),
        "key": uuid.UUID(int=1),
        "post": Post(1, "Hi"),
    }
    actions = {
        name: registry.register(functools.partial(lambda v: v, value), id=name)
        for name, value in values.items()
    }
    app = _app_with(registry)
    client = app.test_client()
    with app.app_context():
        expected = {name: app.json.loads(app.json.dumps(v)) for name, v in values.items()}
    for name, act in actions.items():
        answer = client.call(act, path="/")
        assert answer.status_code == 200 and answer.json["result"] == expected[name], name
    assert expected["when"] == "Tue, 02 Jan 2024 03:04:05 GMT"


class _Translated:
    """A lazy string as Flask-Babel's ``lazy_gettext`` makes one: written (``__html__``, as
    the JSON provider writes it) in the language of the request's context."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __html__(self) -> str:
        return f"{self.text} ({request.headers.get('Accept-Language', 'en')})"


def test_a_result_is_written_in_the_request_context() -> None:
    """A lazy string in a script call's result (or its fail() data) is written as jsonify
    would write it in the request, in its locale: it was written once the request's context
    was gone (untranslated with Flask-Babel). A form's result is left as the action made it."""
    registry = Registry()
    seen: list[t.Any] = []

    @registry.action(id="save")
    def save() -> t.Any:
        return {"message": _Translated("Saved"), "n": 1}

    @registry.action(id="refuse")
    def refuse() -> t.Any:
        return fail(422, [_Translated("Required")])

    @registry.action(id="plain")
    def plain() -> t.Any:
        return _Translated("Kept")

    app = _app_with(registry)

    @app.get("/state")
    def state() -> str:
        seen.append(action_state().result)
        return "state"

    client = app.test_client()
    headers = {"Accept-Language": "de"}
    answer = client.call(save, path="/", headers=headers)
    assert answer.status_code == 200
    assert answer.json["result"] == {"message": "Saved (de)", "n": 1}
    answer = client.call(refuse, path="/", headers=headers)
    assert answer.status_code == 422 and answer.json["result"] == ["Required (de)"]
    assert client.submit(plain, {}, path="/state").status_code == 200
    assert isinstance(seen[-1], _Translated)


def test_after_callbacks_run_in_the_apps_context() -> None:
    """after() callbacks given inside a Flask app run once the answer is sent, in a context of
    that app: current_app and the app's extensions work there."""
    from actionkit import after

    registry = Registry()
    sent: list[str] = []

    @registry.action(id="welcome")
    def welcome() -> None:
        after(lambda: sent.append(current_app.name))

    app = _app_with(registry)
    answer = app.test_client().call(welcome, path="/")
    assert answer.status_code == 200 and sent == []
    answer.close()  # the answer is sent
    assert sent == [app.name]


def test_max_content_length_limits_action_requests() -> None:
    """Flask's MAX_CONTENT_LENGTH, when below actionkit's limit, is an action's limit too:
    413 body_too_large, whether or not the action reads request.form."""
    registry = Registry()
    ran: list[int] = []

    @registry.action(id="note")
    def note(text: str) -> None:
        ran.append(len(text))

    app = _app_with(registry, MAX_CONTENT_LENGTH=1000)
    client = app.test_client()
    assert client.submit(note, {"text": "x" * 100}, path="/").status_code == 200
    large = client.submit(note, {"text": "x" * 20_000}, path="/", js=True)
    assert large.status_code == 413 and large.json["error"]["code"] == "body_too_large"
    assert ran == [100]


def test_request_signals_are_sent_for_an_action() -> None:
    """request_started and request_finished are sent for the action as for a view (error
    trackers take the request's data from them)."""
    from flask import request_finished, request_started

    registry = Registry()

    @registry.action(id="noop")
    def noop() -> int:
        return 1

    app = _app_with(registry)
    seen: list[str] = []
    with (
        request_started.connected_to(lambda sender, **k: seen.append("started"), app),
        request_finished.connected_to(
            lambda sender, response, **k: seen.append(f"finished {response.status_code}"), app
        ),
    ):
        assert app.test_client().call(noop, path="/").json["result"] == 1
    assert seen == ["started", "finished 200"]


def test_a_template_opts_in_to_the_cache() -> None:
    """cache_tag() and cache_life() are template globals that show nothing."""
    app = _app_with(Registry())

    @app.get("/tagged")
    def tagged() -> str:
        return render_template_string("<p>{{ cache_tag('t') }}{{ cache_life(60) }}tagged</p>")

    client = app.test_client()
    first = client.get("/tagged")
    assert first.text == "<p>tagged</p>" and first.headers["Actionkit-Cache"] == "MISS"
    assert client.get("/tagged").headers["Actionkit-Cache"] == "HIT"


def test_an_apps_own_test_client_can_run_actions() -> None:
    """An app's own test client class can submit and call actions: app.test_client() when it
    was set before the extension, ActionClient(app) whenever it was set (Flask's client, with
    session_transaction() and the app's own methods)."""
    from flask.testing import FlaskClient

    class AuthClient(FlaskClient):
        def login(self) -> None:
            with self.session_transaction() as sess:
                sess["user"] = "ada"

    registry = Registry()

    @registry.action(id="whoami")
    def whoami() -> t.Any:
        return session.get("user")

    before = Flask(__name__)
    before.secret_key = "client-secret-0123456789"
    before.test_client_class = AuthClient
    ActionKit(before, registry=registry)
    after_ = _app_with(registry)
    after_.test_client_class = AuthClient
    for client in (before.test_client(), ActionClient(before), ActionClient(after_)):
        assert isinstance(client, AuthClient) and isinstance(client, ActionClient)
        client.login()  # type: ignore[attr-defined]
        assert client.call(whoami, path="/").json["result"] == "ada"


def test_an_error_handlers_own_response_and_failures_are_kept_as_for_a_view() -> None:
    """An error handler's redirect keeps its cookies and its Location for after_request; an
    error from an after_request function is the action's error (teardown and
    got_request_exception see it, after_request runs once); a failing action sends
    request_finished with a 500, as Flask does for a view."""
    from flask import request_finished

    registry = Registry()
    seen: list[t.Any] = []

    @registry.action(id="expired")
    def expired() -> None:
        raise PostMissing("session expired")

    @registry.action(id="fine")
    def fine() -> int:
        return 1

    app = _app_with(registry)

    @app.errorhandler(PostMissing)
    def to_login(error: PostMissing) -> t.Any:
        response = redirect("/login")
        response.delete_cookie("remember_token")
        return response

    @app.errorhandler(Exception)
    def anything(error: Exception) -> tuple[str, int]:
        seen.append(("handler", type(error).__name__))
        return "handled", 500

    @app.after_request
    def after(response: t.Any) -> t.Any:
        seen.append(("after", response.status_code, response.headers.get("Location")))
        if request.headers.get("X-Break"):
            raise ValueError("after_request failed")
        return response

    app.teardown_request(lambda exc: seen.append(("teardown", type(exc).__name__)))
    client = app.test_client()
    answer = client.submit(expired, path="/")
    assert answer.status_code == 303 and answer.headers["Location"] == "/login"
    assert any(c.startswith("remember_token=;") for c in answer.headers.getlist("Set-Cookie"))
    assert seen == [("after", 302, "/login"), ("teardown", "NoneType")]
    seen.clear()
    with (
        got_request_exception.connected_to(lambda *a, **k: seen.append("signal"), app),
        request_finished.connected_to(
            lambda sender, response, **k: seen.append(("finished", response.status_code)), app
        ),
    ):
        assert client.call(fine, path="/", headers={"X-Break": "1"}).status_code == 500
    assert seen == [("after", 200, None), "signal", ("finished", 500), ("teardown", "ValueError")]


def test_max_content_length_below_a_larger_body_limit() -> None:
    """MAX_CONTENT_LENGTH lowers a body limit given in the config too; a value that is not a
    positive int (True, 0) leaves the limit alone."""
    registry = Registry()
    for config, expected in (
        ({"MAX_CONTENT_LENGTH": 1000, "ACTIONKIT_BODY_LIMIT": 4 << 20}, 1000),
        ({"MAX_CONTENT_LENGTH": True}, 1 << 20),
        ({"MAX_CONTENT_LENGTH": 0, "ACTIONKIT_BODY_LIMIT": 5000}, 5000),
    ):
        assert get_middleware(_app_with(registry, **config)).body_limit == expected, config


def test_a_missing_form_key_tells_the_script_bad_request() -> None:
    """request.form["missing"] in an action (BadRequestKeyError) tells the client script "Bad
    Request", not Werkzeug's default text with the key."""
    registry = Registry()

    @registry.action(id="reads")
    def reads() -> str:
        return request.form["missing"]

    client = _app_with(registry).test_client()
    error = client.submit(reads, {}, path="/", js=True).json["error"]
    assert error == {"code": "bad_request", "message": "Bad Request"}


def test_an_apps_own_cache_tag_global_is_kept() -> None:
    """An application's own template global named cache_tag is not replaced."""
    app = Flask(__name__)
    app.jinja_env.globals["cache_tag"] = lambda *tags: f"[{' '.join(tags)}]"
    ActionKit(app)
    with app.app_context():
        assert render_template_string("{{ cache_tag('x') }}") == "[x]"


def test_an_http_error_handlers_redirect_and_cookies_answer_the_action() -> None:
    """An error handler that answers an HTTP error with a redirect (errorhandler(401) sending to
    the login page) ends the action with that redirect, as for a view, whether the action
    called unauthorized() or abort(401); the cookies a handler sets reach the answer once, and
    after_request functions see its response."""
    from actionkit import unauthorized

    registry = Registry()
    seen: list[t.Any] = []

    @registry.action(id="by_signal")
    def by_signal() -> None:
        unauthorized()

    @registry.action(id="by_abort")
    def by_abort() -> None:
        abort(401)

    @registry.action(id="missing")
    def missing() -> None:
        abort(404)

    app = _app_with(registry)

    @app.errorhandler(401)
    def to_login(error: t.Any) -> t.Any:
        return redirect("/login")

    @app.errorhandler(404)
    def not_found_page(error: t.Any) -> t.Any:
        response = app.make_response(("<p>gone</p>", 404))
        response.set_cookie("nf", "1")
        return response

    @app.after_request
    def after(response: t.Any) -> t.Any:
        seen.append((response.status_code, response.headers.getlist("Set-Cookie")))
        return response

    client = app.test_client()
    for act in (by_signal, by_abort):
        answer = client.submit(act, path="/")
        assert (answer.status_code, answer.headers["Location"]) == (303, "/login"), act.id
        assert client.call(act, path="/").json["redirect"] == {"url": "/login", "type": "push"}
    seen.clear()
    page = client.submit(missing, path="/")
    assert page.status_code == 404 and page.text == "<p>gone</p>"
    assert page.headers.getlist("Set-Cookie") == ["nf=1; Path=/"]
    answer = client.call(missing, path="/")
    assert answer.status_code == 404 and answer.headers.getlist("Set-Cookie") == ["nf=1; Path=/"]
    assert seen == [(404, ["nf=1; Path=/"])] * 2


def test_a_json_provider_of_its_own_writes_the_result() -> None:
    """A JSON provider that overrides dumps (another JSON library) and has no default writes a
    result the standard encoder cannot, as jsonify would."""
    import datetime

    from flask.json.provider import JSONProvider

    class IsoProvider(JSONProvider):
        def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
            return json.dumps(obj, default=lambda v: v.isoformat(), **kwargs)

        def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
            return json.loads(s, **kwargs)

    registry = Registry()

    @registry.action(id="when")
    def when() -> datetime.date:
        return datetime.date(2026, 12, 2)

    app = Flask(__name__)
    app.json = IsoProvider(app)
    app.secret_key = "provider-secret-0123456789"
    ActionKit(app, registry=registry)
    app.add_url_rule("/", "home", lambda: "home")
    assert app.test_client().call(when, path="/").json["result"] == "2026-12-02"


def test_an_error_raised_to_the_test_sends_no_request_finished() -> None:
    """With TESTING, an action's error raised to the test sends no request_finished, as
    Flask sends none for a view's error it propagates."""
    from flask import request_finished

    registry = Registry()

    @registry.action(id="boom")
    def boom() -> None:
        raise ZeroDivisionError

    app = _app_with(registry, TESTING=True)
    finished: list[int] = []
    with (
        request_finished.connected_to(lambda s, response, **k: finished.append(1), app),
        pytest.raises(ZeroDivisionError),
    ):
        app.test_client().call(boom, path="/")
    assert finished == []


@pytest.mark.parametrize("answer", ["303", "page", "js"])
def test_with_client_keeps_the_actions_request_context(answer: str) -> None:
    """Inside ``with client:``, after an action, ``request``, ``g`` and ``session`` are the
    action's POST as Flask keeps a view's: whether it redirected, was answered with the page,
    or with JSON (not the page rendered after it)."""
    registry = Registry()

    @registry.action(id="sign_in")
    def sign_in() -> str:
        session["who"] = "ada"
        g.marker = "set by the action"
        if answer == "303":
            action_redirect("/")
        return "signed in"

    client = ActionClient(_app_with(registry))
    with client:
        response = client.submit(sign_in, {}, path="/", js=answer == "js")
        assert response.status_code == (303 if answer == "303" else 200)
        assert (request.method, request.path) == ("POST", "/")
        assert g.marker == "set by the action"
        assert session["who"] == "ada"
    with pytest.raises(RuntimeError):
        request.method  # noqa: B018 -- the block's end let the context go


# -- other Flask extensions ----------------------------------------------------------------------


def test_a_page_showing_a_flask_wtf_token_is_never_stored() -> None:
    """Flask-WTF's CSRF token expires (WTF_CSRF_TIME_LIMIT): a page stored with it, per user
    through ``Vary: Cookie``, kept the token of its first render, and once it had expired every
    action posted from the page was refused ("The CSRF token has expired") until revalidated.
    Such a page is never stored, as Django's pages with a token."""
    from flask_wtf import CSRFProtect

    registry = Registry()

    @registry.action
    def like() -> str:
        return "liked"

    app = Flask(__name__)
    app.config.update(SECRET_KEY="wtf-secret-0123456789", WTF_CSRF_TIME_LIMIT=3600)
    ActionKit(app, registry=registry)
    CSRFProtect(app)

    @app.get("/")
    def home() -> str:
        cache_tag("home")
        return render_template_string('<meta name="csrf-token" content="{{ csrf_token() }}">')

    @app.get("/plain")
    def plain() -> str:
        cache_tag("home")
        return "no token"

    client = app.test_client()
    untokened = [client.get("/plain", buffered=True).headers["Actionkit-Cache"] for _ in range(2)]
    assert untokened == ["MISS", "HIT"]
    seen = [client.get("/").headers["Actionkit-Cache"] for _ in range(3)]
    assert seen == ["BYPASS"] * 3
    page = client.get("/").text
    token = page.split('content="')[1].split('"')[0]
    answer = client.call(like, path="/", headers={"X-CSRFToken": token})
    assert answer.status_code == 200 and answer.json["result"] == "liked"


def test_flask_limiter_counts_each_action_once_with_the_documented_filter() -> None:
    """The page rendered in-process after an action is not a request of the client's:
    ``limiter.request_filter(is_page_after_action)`` keeps it out of Flask-Limiter's counts
    (each action counted twice: a limit of 4 a minute let 2 actions through)."""
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    from actionkit.flask import is_page_after_action

    registry = Registry()
    votes: list[int] = []

    @registry.action
    def vote() -> int:
        votes.append(1)
        revalidate_path("/")
        return len(votes)

    app = Flask(__name__)
    app.secret_key = "limiter-secret-0123456789"
    ActionKit(app, registry=registry)
    limiter = Limiter(
        get_remote_address, app=app, storage_uri="memory://", default_limits=["4/minute"]
    )
    limiter.request_filter(is_page_after_action)
    pages_after: list[bool] = []

    @app.get("/")
    def home() -> str:
        pages_after.append(is_page_after_action())
        return f"{len(votes)} votes"

    client = app.test_client()
    statuses = [client.submit(vote, {}, path="/", js=True).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert pages_after == [True] * 4 and not is_page_after_action()
    assert client.get("/").status_code == 429  # the client's own requests still count


def test_headers_set_by_after_request_functions_reach_the_action_answer() -> None:
    """An ``after_request`` function's headers (Flask-CORS's ``Access-Control-Allow-Origin``
    for an allowed origin, a security header) are sent with the action's answer as with a
    view's (only its cookies were); those about the stand-in's empty body are not."""
    registry = Registry()
    admin = "https://admin.example.com"

    @registry.action
    def ping() -> str:
        return "pong"

    app = Flask(__name__)
    app.secret_key = "cors-secret-0123456789"
    ActionKit(app, registry=registry, allowed_origins=[admin])
    app.add_url_rule("/", "home", lambda: "home")

    @app.after_request
    def headers(response: t.Any) -> t.Any:
        if request.headers.get("Origin") == admin:
            response.headers["Access-Control-Allow-Origin"] = admin
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Cache-Control"] = "public, max-age=600"
        response.add_etag()
        return response

    client = app.test_client()
    answer = client.call(ping, path="/", headers={"Origin": admin})
    assert answer.status_code == 200 and answer.json["result"] == "pong"
    assert answer.headers["Access-Control-Allow-Origin"] == admin
    assert answer.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert answer.headers["Cache-Control"] == "no-store" and "ETag" not in answer.headers
    assert answer.headers["Content-Type"] == "application/json"
    moved = client.submit(ping, {}, path="/", headers={"Origin": admin})
    assert moved.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_the_logged_traceback_of_a_raising_action_is_the_one_it_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Flask's search for an error handler raises the action's error again, which put the
    frames of that raise in front of its traceback: the log said the action was called from
    the handler lookup. The logged traceback ends in the action, called from where it was."""
    import traceback

    registry = Registry()

    @registry.action
    def explode() -> None:
        raise RuntimeError("explode")

    app = Flask(__name__)
    app.secret_key = "trace-secret-0123456789"
    ActionKit(app, registry=registry, cache=False)
    app.add_url_rule("/", "home", lambda: "home")
    with caplog.at_level(logging.ERROR, logger="actionkit"):
        assert app.test_client().call(explode, path="/").status_code == 500
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None
    frames = [frame.name for frame in traceback.extract_tb(record.exc_info[2])]
    assert "_handler_answer" not in frames and frames[-1] == "explode", frames


def test_results_flask_json_cannot_write_are_written_as_pydantic_writes_them() -> None:
    """An Enum or a set returned by an action (what typed parameters give it), which Flask's
    JSON provider refuses, reaches the client as pydantic writes it (a 500 after the action
    ran); what Flask writes itself (a date) stays as Flask writes it."""
    import datetime
    import enum

    class Colour(enum.Enum):
        RED = "red"

    registry = Registry()

    @registry.action
    def pick(name: str) -> t.Any:
        colour = Colour(name)
        return [colour, {colour.value}, datetime.date(2024, 3, 5)]

    app = Flask(__name__)
    app.secret_key = "enum-secret-0123456789"
    ActionKit(app, registry=registry, cache=False)
    app.add_url_rule("/", "home", lambda: "home")
    answer = app.test_client().call(pick, "red", path="/")
    assert answer.status_code == 200
    assert answer.json["result"] == ["red", ["red"], "Tue, 05 Mar 2024 00:00:00 GMT"]
