"""Flask's request context of an action, made when something first reads it
(actionkit.flask.lazy): what the action sees is what it would see in a context made first."""

from __future__ import annotations

import contextvars
import threading
import time
import typing as t

import pytest
from flask import (
    Flask,
    after_this_request,
    copy_current_request_context,
    flash,
    g,
    get_flashed_messages,
    has_request_context,
    request,
    request_started,
    request_tearing_down,
    session,
    stream_with_context,
    url_for,
)
from flask.globals import _cv_app, _cv_request, request_ctx
from werkzeug.routing import BaseConverter

from actionkit import Registry, revalidate_path
from actionkit.flask import ActionKit
from actionkit.flask import lazy as lazy_module
from actionkit.stores import MemoryStore
from actionkit.testing import ActionClient


def make_app(secret: bool = True) -> tuple[Flask, Registry, list[t.Any]]:
    """An app with no function around its requests; ``made`` lists each request object Flask
    makes for a ``POST`` (an action's context; the page after it is a ``GET``)."""
    app = Flask(__name__)
    if secret:
        app.secret_key = "flask-secret"
    registry = Registry()
    ActionKit(app, registry=registry, cache=MemoryStore())
    made: list[t.Any] = []
    base = app.request_class

    class Counting(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
            super().__init__(*args, **kwargs)
            if self.method == "POST":
                made.append(self)

    app.request_class = Counting

    @app.get("/")
    def home() -> str:
        return "home " + ",".join(get_flashed_messages())

    @app.get("/posts/<int:number>")
    def post(number: int) -> str:
        return f"post {number}"

    return app, registry, made


def test_an_action_reading_nothing_of_the_request_has_no_request_made() -> None:
    app, registry, made = make_app()
    seen: list[t.Any] = []

    @registry.action(id="count")
    def count(n: int) -> int:
        seen.append(has_request_context())
        g.counted = n  # the app context is there
        return n + 1

    answer = ActionClient(app).call(registry["count"], 1, path="/")
    assert answer.status_code == 200 and answer.json["result"] == 2
    assert seen == [True]
    assert made == []


def test_reading_the_request_makes_it_as_it_would_have_been() -> None:
    app, registry, made = make_app()
    seen: dict[str, t.Any] = {}

    @registry.action(id="look")
    def look(form: t.Any = None) -> None:
        seen["endpoint"] = request.endpoint  # routed as the page (a GET route), not a 405
        seen["view_args"] = request.view_args
        seen["title"] = request.form.get("title")
        seen["url"] = url_for("post", number=2)
        seen["method"] = request.method

    client = ActionClient(app)
    assert client.submit(registry["look"], {"title": "hi"}, path="/posts/7").status_code == 200
    assert seen == {
        "endpoint": "post",
        "view_args": {"number": 7},
        "title": "hi",
        "url": "/posts/2",
        "method": "POST",
    }
    assert len(made) == 1


def test_a_session_written_by_an_action_is_saved_and_a_flash_shown() -> None:
    app, registry, _ = make_app()

    @registry.action(id="login")
    def login() -> None:
        session["user"] = "ada"
        flash("Welcome")
        revalidate_path("/")

    client = ActionClient(app)
    answer = client.call(registry["login"], path="/")
    assert "session=" in answer.headers["Set-Cookie"]
    assert "home Welcome" in answer.json["html"]


def test_after_this_request_and_a_teardown_of_the_app_context_run() -> None:
    app, registry, _ = make_app()
    torn: list[t.Any] = []
    app.teardown_appcontext(lambda exc: torn.append(exc))

    @registry.action(id="stamp")
    def stamp() -> None:
        @after_this_request
        def add(response: t.Any) -> t.Any:
            response.set_cookie("stamped", "1")
            return response

    @registry.action(id="quiet")
    def quiet() -> None:
        pass

    client = ActionClient(app)
    cookies = client.call(registry["stamp"], path="/").headers.getlist("Set-Cookie")
    assert any(cookie.startswith("stamped=1") for cookie in cookies)
    torn.clear()
    client.call(registry["quiet"], path="/")
    assert torn == [None]


def test_an_error_of_the_action_reaches_the_apps_handler_with_the_request_made() -> None:
    app, registry, _ = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    handled: list[str | None] = []

    class Conflict(Exception):
        pass

    @app.errorhandler(Conflict)
    def conflict(error: Conflict) -> t.Any:
        handled.append(request.endpoint)
        return "taken", 409

    @registry.action(id="clash")
    def clash() -> None:
        raise Conflict

    answer = ActionClient(app).call(registry["clash"], path="/posts/3")
    assert answer.status_code == 409
    assert handled == ["post"]


def test_a_copied_context_runs_in_a_thread() -> None:
    app, registry, _ = make_app()
    got: list[str] = []

    @registry.action(id="spawn")
    def spawn(form: t.Any = None) -> None:
        @copy_current_request_context
        def work() -> None:
            got.append(request.form["word"])

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()

    ActionClient(app).submit(registry["spawn"], {"word": "thread"}, path="/")
    assert got == ["thread"]


def _hooks() -> dict[str, t.Callable[[Flask, list[str]], None]]:
    def before(app: Flask, ran: list[str]) -> None:
        app.before_request(lambda: ran.append("before"))

    def after(app: Flask, ran: list[str]) -> None:
        app.after_request(lambda response: ran.append("after") or response)

    def teardown(app: Flask, ran: list[str]) -> None:
        app.teardown_request(lambda exc: ran.append("teardown"))

    def tearing_down(app: Flask, ran: list[str]) -> None:
        def receiver(sender: Flask, **extra: t.Any) -> None:
            ran.append("tearing_down")

        request_tearing_down.connect(receiver, app, weak=False)

    def started(app: Flask, ran: list[str]) -> None:
        def receiver(sender: Flask, **extra: t.Any) -> None:
            ran.append("started")

        request_started.connect(receiver, weak=False)  # every app's (blinker's ANY sender)

    return {
        "before": before,
        "after": after,
        "teardown": teardown,
        "tearing_down": tearing_down,
        "started": started,
    }


@pytest.mark.parametrize("hook", sorted(_hooks()))
def test_an_app_with_functions_around_its_requests_has_the_context_made_first(hook: str) -> None:
    app, registry, made = make_app()
    ran: list[str] = []
    before = {s: dict(s.receivers) for s in (request_started, request_tearing_down)}
    _hooks()[hook](app, ran)

    @registry.action(id="quiet")
    def quiet() -> None:
        pass

    try:
        assert ActionClient(app).call(registry["quiet"], path="/").status_code == 200
    finally:
        for signal, receivers in before.items():
            for key in set(signal.receivers) - set(receivers):
                signal.disconnect(signal.receivers[key])
    assert len(made) == 1 and hook in ran


def test_a_session_cookie_has_the_context_made_first() -> None:
    """A permanent session is sent again on every request (SESSION_REFRESH_EACH_REQUEST),
    whether the action reads it or not."""
    app, registry, made = make_app()

    @registry.action(id="keep")
    def keep() -> None:
        session.permanent = True
        session["user"] = "ada"

    @registry.action(id="quiet")
    def quiet() -> None:
        pass

    client = ActionClient(app)
    client.call(registry["keep"], path="/")
    made.clear()
    answer = client.call(registry["quiet"], path="/")
    assert "session=" in answer.headers["Set-Cookie"] and len(made) == 1


def test_without_a_secret_key_a_cookie_does_not_matter() -> None:
    app, registry, made = make_app(secret=False)

    @registry.action(id="quiet")
    def quiet() -> None:
        pass

    client = ActionClient(app)
    client.set_cookie("session", "anything")
    assert client.call(registry["quiet"], path="/").status_code == 200
    assert made == []


def test_a_lazy_context_that_nothing_read_says_so() -> None:
    app = Flask(__name__)
    ctx = lazy_module.LazyRequestContext(app, {"REQUEST_METHOD": "GET"})
    assert lazy_module.unmade(ctx) and "not made yet" in repr(ctx)
    with pytest.raises(AttributeError):
        ctx.anything_else  # noqa: B018


# -- the same behaviour with the context made first and made lazily -----------------------------


@pytest.fixture(params=["lazy", "made first"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "made first":
        monkeypatch.setattr(lazy_module, "_needs_context", lambda *args: True)
    return str(request.param)


def test_an_answer_says_vary_cookie_only_when_the_session_was_read(mode: str) -> None:
    app, registry, _ = make_app()

    @registry.action(id="quiet")
    def quiet(n: int) -> int:
        return n + 1

    @registry.action(id="peek")
    def peek() -> bool:
        return "user" in session

    client = ActionClient(app)
    assert "Vary" not in client.call(registry["quiet"], 1, path="/").headers
    assert "Cookie" in client.call(registry["peek"], path="/").headers.get("Vary", "")


class Guarded(Flask):
    """A Flask of its own around each request (no function registered)."""

    ran: list[str]

    def preprocess_request(self) -> t.Any:
        self.ran.append("preprocess_request")
        return super().preprocess_request()

    def process_response(self, response: t.Any) -> t.Any:
        response.headers["X-Frame-Options"] = "DENY"
        return super().process_response(response)

    def do_teardown_request(self, exc: BaseException | None = None) -> None:
        self.ran.append("do_teardown_request")
        super().do_teardown_request(exc)


def test_a_flask_subclass_of_its_own_around_requests_runs_as_for_a_view(mode: str) -> None:
    app = Guarded(__name__)
    app.ran = []
    registry = Registry()
    ActionKit(app, registry=registry, cache=MemoryStore())
    app.get("/")(lambda: "home")

    @registry.action(id="quiet")
    def quiet() -> None:
        pass

    answer = ActionClient(app).call(registry["quiet"], path="/")
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert app.ran[:2] == ["preprocess_request", "do_teardown_request"]


def test_the_context_pushed_again_by_stream_with_context(mode: str) -> None:
    app, registry, _ = make_app()

    @registry.action(id="stream")
    def stream() -> str:
        @stream_with_context
        def letters() -> t.Iterator[str]:
            yield "a"
            yield request.path

        return "".join(letters())

    assert ActionClient(app).call(registry["stream"], path="/").json["result"] == "a/"
    assert _cv_request.get(None) is None and _cv_app.get(None) is None


def test_threads_sharing_the_context_read_the_same_request(mode: str) -> None:
    app, registry, _ = make_app()
    base = app.request_class

    class Slow(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
            super().__init__(*args, **kwargs)
            time.sleep(0.05)  # a reader comes while the other makes the context

    app.request_class = Slow

    @registry.action(id="both")
    def both() -> list[t.Any]:
        seen: list[t.Any] = [None, None]

        def read(i: int) -> None:
            seen[i] = (request.path, id(request._get_current_object()))  # type: ignore[attr-defined]

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(read, i))
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return seen

    first, second = ActionClient(app).call(registry["both"], path="/").json["result"]
    assert first == second and first[0] == "/"


def test_an_error_making_the_context_is_kept(mode: str) -> None:
    app, registry, _ = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True

    class Broken(BaseConverter):
        def to_python(self, value: str) -> t.Any:
            return None.name  # type: ignore[attr-defined]  # a converter's own bug

    app.url_map.converters["broken"] = Broken
    app.get("/u/<broken:who>")(lambda who: "page")

    @registry.action(id="write")
    def write() -> None:
        session["x"] = 1

    with pytest.raises(Exception) as raised:  # noqa: PT011
        ActionClient(app).call(registry["write"], path="/u/ada")
    chain = [raised.value, raised.value.__cause__]
    assert any("'NoneType' object has no attribute 'name'" in str(e) for e in chain)
    assert _cv_request.get(None) is None and _cv_app.get(None) is None  # popped


def test_a_context_kept_past_the_action_is_read_as_it_was(mode: str) -> None:
    app, registry, _ = make_app()
    kept: list[t.Any] = []

    @registry.action(id="keep")
    def keep() -> None:
        kept.append(request_ctx._get_current_object())  # type: ignore[attr-defined]

    ActionClient(app).call(registry["keep"], path="/posts/5")
    ctx = kept[0]
    assert (ctx.request.endpoint, ctx.request.view_args, dict(ctx.session)) == (
        "post",
        {"number": 5},
        {},
    )


def test_a_session_cookie_written_with_spaces_is_seen(mode: str) -> None:
    app, registry, _ = make_app()

    @registry.action(id="quiet")
    def quiet() -> None:
        pass

    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    value = serializer.dumps({"_permanent": True, "user": "ada"})
    client = ActionClient(app, use_cookies=False)
    answer = client.call(registry["quiet"], path="/", headers={"Cookie": f"session ={value}"})
    assert any(c.startswith("session=") for c in answer.headers.getlist("Set-Cookie"))


def test_a_flask_whose_contexts_are_made_otherwise_has_them_made_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lazy context knows what Flask's RequestContext.__init__ sets; with a Flask that sets
    something else (another release), every action's context is made first."""
    assert lazy_module.known_flask()
    monkeypatch.setattr(lazy_module, "_known", [])
    monkeypatch.setattr(lazy_module, "_MADE_BY_INIT", lazy_module._MADE_BY_INIT - {"flashes"})
    app, registry, made = make_app()

    @registry.action(id="quiet")
    def quiet() -> None:
        pass

    assert ActionClient(app).call(registry["quiet"], path="/").status_code == 200
    assert not lazy_module.known_flask() and len(made) == 1
