from __future__ import annotations

import io
import json
import logging
import threading
import typing as t
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import Client, EnvironBuilder

from actionkit import ActionMiddleware, Registry, cookies, redirect, revalidate_path
from actionkit.testing import ActionClient

from .posts_app import make_app


@pytest.fixture
def posts() -> t.Any:
    app, registry, db = make_app()
    return app, registry, db, ActionClient(app)


def _actions(registry: Registry) -> dict[str, t.Any]:
    return {a.name: a for a in registry}


# -- the reference page's examples, without JavaScript ---------------------------------------


def test_form_create_post_redirects_with_303(posts: t.Any) -> None:
    """A form posting create_post stores the post, revalidates and answers 303 to /posts."""
    app, registry, db, client = posts
    create = _actions(registry)["create_post"]
    response = client.submit(create, {"title": "Hello", "content": "World"}, path="/posts")
    assert response.status_code == 303
    assert response.headers["Location"] == "/posts"
    assert db.posts[1] == {"title": "Hello", "content": "World", "likes": 0}
    assert "Hello" in client.get("/posts").text


def test_form_field_is_found_in_urlencoded_and_multipart(posts: t.Any) -> None:
    """The $ACTION_ID_ field is found in both form encodings (Next.js ignores urlencoded)."""
    app, registry, db, client = posts
    create = _actions(registry)["create_post"]
    client.submit(create, {"title": "urlencoded"}, path="/posts")
    client.submit(create, {"title": "multipart"}, path="/posts", content_type="multipart/form-data")
    assert [p["title"] for p in db.posts.values()] == ["urlencoded", "multipart"]


def test_action_receives_form_without_protocol_fields(posts: t.Any) -> None:
    """The action's form holds the submitted fields and none of the $ACTION_ ones."""
    seen: list[MultiDict[str, str]] = []
    registry = Registry()

    @registry.action
    def record(form: MultiDict[str, str]) -> None:
        seen.append(form)

    app = ActionMiddleware(_ok_app, registry=registry, cache=False)
    ActionClient(app).submit(record, [("a", "1"), ("a", "2"), ("$ACTION_KEY", "k")])
    assert list(seen[0].items(multi=True)) == [("a", "1"), ("a", "2")]


def test_failed_submission_rerenders_with_status_and_values(posts: t.Any) -> None:
    """fail(422, ...) re-renders the page with 422, the error and the typed value kept."""
    app, registry, db, client = posts
    create = _actions(registry)["create_post"]
    response = client.submit(create, {"title": "  ", "content": "kept"}, path="/posts")
    assert response.status_code == 422
    assert "A title is required." in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert db.posts == {}


def test_rerender_keeps_submitted_value() -> None:
    """action_state().value() echoes the submitted field into the re-rendered form."""
    app, registry, db = make_app()

    @registry.action
    def reject(form: MultiDict[str, str]) -> t.Any:
        from actionkit import fail

        return fail(422, {"title": "no"})

    # The posts page shows create_post's state only; a failing create keeps "x y".
    create = _actions(registry)["create_post"]
    response = ActionClient(app).submit(create, {"title": ""}, path="/posts")
    assert 'value=""' in response.text
    response = ActionClient(app).submit(reject, {"title": "x y"}, path="/posts")
    assert response.status_code == 422
    assert "x y" not in response.text  # another action's state is not create_post's


def test_delete_post_with_bound_argument(posts: t.Any) -> None:
    """A bound action receives its sealed argument before the form."""
    app, registry, db, client = posts
    acts = _actions(registry)
    client.submit(acts["create_post"], {"title": "one"}, path="/posts")
    client.submit(acts["create_post"], {"title": "two"}, path="/posts")
    response = client.submit(acts["delete_post"].bind(1), path="/posts")
    assert response.status_code == 200
    assert [p["title"] for p in db.posts.values()] == ["two"]
    assert "one" not in response.text and "two" in response.text


def test_two_buttons_in_one_form_run_their_own_actions() -> None:
    """With a hidden field and a clicked button's name, the last field wins, with its token."""
    calls: list[tuple[str, t.Any]] = []
    registry = Registry()

    @registry.action
    def save(form: MultiDict[str, str]) -> None:
        calls.append(("save", form["title"]))

    @registry.action
    def archive(post_id: int, form: MultiDict[str, str]) -> None:
        calls.append(("archive", post_id))

    @registry.action
    def remove(post_id: int, form: MultiDict[str, str]) -> None:
        calls.append(("remove", post_id))

    client = ActionClient(ActionMiddleware(_ok_app, registry=registry, cache=False))
    for clicked in (archive.bind(7), remove.bind(9)):
        body = [(save.field_name, ""), ("title", "t"), (clicked.field_name, clicked.token)]
        assert client.post("/", data=MultiDict(body)).status_code == 200
    client.post("/", data=MultiDict([(save.field_name, ""), ("title", "plain")]))
    assert calls == [("archive", 7), ("remove", 9), ("save", "plain")]


def test_permanent_redirect_is_303(posts: t.Any) -> None:
    """permanent_redirect() answers 303 without JavaScript, as redirect() does (and Next.js
    answers a Server Action): after a 308 the browser would post the form again to the new
    URL, which names the action again, and the action would run again, in a loop."""
    app, registry, db, client = posts
    response = client.submit(_actions(registry)["move"], {}, path="/posts")
    assert response.status_code == 303
    assert response.headers["Location"] == "/posts"
    followed = client.submit(_actions(registry)["move"], {}, path="/posts", follow_redirects=True)
    assert followed.status_code == 200 and followed.request.method == "GET"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        pytest.param("not_found", 404, id="not_found"),
        pytest.param("forbidden", 403, id="forbidden"),
        pytest.param("unauthorized", 401, id="unauthorized"),
    ],
)
def test_http_endings(posts: t.Any, kind: str, status: int) -> None:
    """not_found(), forbidden() and unauthorized() give their status, as HTML and as JSON."""
    app, registry, db, client = posts
    guarded = _actions(registry)["guarded"]
    html_response = client.submit(guarded.bind(kind), {}, path="/posts")
    assert html_response.status_code == status
    assert html_response.mimetype == "text/html"
    json_response = client.call(guarded, kind, path="/posts")
    assert json_response.status_code == status
    assert json_response.json["error"]["code"] == kind


def test_error_page_hook_renders_the_apps_page(posts: t.Any) -> None:
    """An error_page renderer (the Flask extension's) supplies the page of not_found()."""
    from actionkit.cache import Rendered

    app, registry, db, client = posts
    app.error_page = lambda status, environ: Rendered(
        f"{status} X", [("Content-Type", "text/html")], b"custom page"
    )
    response = client.submit(_actions(registry)["guarded"].bind("not_found"), {})
    assert (response.status_code, response.text) == (404, "custom page")


def test_signals_are_not_swallowed_by_except_exception() -> None:
    """redirect() inside 'try: ... except Exception' still ends the action."""
    registry = Registry()

    @registry.action
    def careless(form: MultiDict[str, str]) -> str:
        try:
            redirect("/done")
        except Exception:  # noqa: BLE001 - the pitfall this test is about
            return "swallowed"
        return "unreachable"

    client = ActionClient(ActionMiddleware(_ok_app, registry=registry, cache=False))
    assert client.submit(careless, {}).headers["Location"] == "/done"


# -- with the client script: one JSON round trip ---------------------------------------------


def test_js_like_returns_count_without_html(posts: t.Any) -> None:
    """increment_like called as from an event handler returns the count; nothing re-rendered."""
    app, registry, db, client = posts
    acts = _actions(registry)
    client.submit(acts["create_post"], {"title": "p"}, path="/posts")
    for expected in (1, 2, 3):
        response = client.call(acts["increment_like"], 1, page="/posts")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.json == {
            "result": expected,
            "failed": False,
            "redirect": None,
            "html": None,
            "url": "/posts",
            "revalidated": {"paths": [], "tags": []},
        }


def test_js_form_submit_returns_redirect_and_target_page(posts: t.Any) -> None:
    """A JS form submission that redirects gets the target page's HTML in the same answer."""
    app, registry, db, client = posts
    create = _actions(registry)["create_post"]
    response = client.submit(create, {"title": "Fresh"}, path="/new", js=True)
    answer = response.json
    assert response.status_code == 200
    assert answer["redirect"] == {"url": "/posts", "type": "push"}
    assert answer["url"] == "/posts"
    assert "Fresh" in answer["html"]
    assert answer["revalidated"] == {"paths": ["/posts"], "tags": []}


def test_js_failed_submission_has_status_and_errors(posts: t.Any) -> None:
    """fail() answers the client with its status, failed=true and the page showing errors."""
    app, registry, db, client = posts
    create = _actions(registry)["create_post"]
    response = client.submit(create, {"title": ""}, path="/posts", js=True)
    assert response.status_code == 422
    assert response.json["failed"] is True
    assert response.json["result"] == {"title": "A title is required."}
    assert "A title is required." in response.json["html"]


def test_js_page_header_names_the_rerendered_page(posts: t.Any) -> None:
    """Action-Page (with its query) chooses the page rendered after the action."""
    app, registry, db, client = posts
    acts = _actions(registry)
    client.submit(acts["create_post"], {"title": "a"}, path="/posts")
    response = client.submit(acts["delete_post"].bind(1), path="/posts?x=1", js=True)
    assert response.json["url"] == "/posts?x=1"
    assert "<ul></ul>" in response.json["html"]


def test_js_call_with_bound_header(posts: t.Any) -> None:
    """A JS call of a bound action sends the token in Action-Bound; args follow it."""
    app, registry, db, client = posts
    acts = _actions(registry)
    client.submit(acts["create_post"], {"title": "a"}, path="/posts")
    response = client.call(acts["increment_like"].bind(1), page="/posts")
    assert response.json["result"] == 1


def test_cross_origin_redirect_has_no_html(posts: t.Any) -> None:
    """A redirect to another site is passed to the client with no page rendered."""
    registry = Registry()

    @registry.action
    def leave() -> None:
        redirect("https://elsewhere.example/")

    client = ActionClient(ActionMiddleware(_ok_app, registry=registry, cache=False))
    answer = client.call(leave).json
    assert answer["redirect"]["url"] == "https://elsewhere.example/"
    assert answer["html"] is None


def _paths_app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    """Pages that say their path and query; ``/members`` sends everyone to ``/login``, and
    ``/gone`` is not found."""
    from werkzeug.wrappers import Request, Response

    request = Request(environ)
    if request.path == "/members":
        response = Response("", 302, headers={"Location": "/login?next=/members"})
    elif request.path == "/gone":
        response = Response("<p>no such page</p>", 404, content_type="text/html")
    else:
        shown = f"<p>page {request.path} {dict(request.args)}</p>"
        response = Response(shown, content_type="text/html")
    return response(environ, start_response)


@pytest.mark.parametrize(
    ("target", "resolved"),
    [
        ("done", "/b/sub/done"),
        ("?q=1", "/b/sub/page?q=1"),
        ("#top", "/b/sub/page?p=1#top"),
        ("../up", "/b/up"),
        ("../../../../up", "/up"),
        ("/abs", "/abs"),
    ],
)
def test_a_relative_redirect_is_resolved_against_the_url_posted_to(
    target: str, resolved: str
) -> None:
    """A browser resolves a 303's relative Location against the URL it posted to (the form's
    action), not the page the form is on: the client script's answer names the same place,
    with that page rendered in it (a "#top" back to the page shows it updated)."""
    registry = Registry()

    @registry.action
    def go() -> None:
        revalidate_path("/b/sub/page")
        redirect(target)

    client = ActionClient(ActionMiddleware(_paths_app, registry=registry, cache=False))
    plain = client.submit(go, path="/b/sub/page?p=1")
    assert (plain.status_code, plain.headers["Location"]) == (303, target)
    answer = client.submit(go, path="/b/sub/page?p=1", js=True, headers={"Action-Page": "/a"}).json
    assert answer["redirect"] == {"url": resolved, "type": "push"}
    page, _, query = resolved.partition("#")[0].partition("?")
    assert answer["html"].startswith(f"<p>page {page} ")
    assert ("'q': '1'" in answer["html"]) == (query == "q=1")


def test_a_page_that_is_not_there_after_the_action_is_gone_to() -> None:
    """The page posted to redirects after the action (a log-out on a page for members) or is
    an error (the item deleted on its own page): without JavaScript the browser ends there;
    the client script's answer sends it there too, instead of leaving the old page shown."""
    registry = Registry()

    @registry.action
    def log_out() -> None:
        cookies().delete("session")

    client = ActionClient(ActionMiddleware(_paths_app, registry=registry, cache=False))
    plain = client.submit(log_out, path="/members")
    assert (plain.status_code, plain.headers["Location"]) == (303, "/login?next=/members")
    answer = client.submit(log_out, path="/members", js=True).json
    assert answer["html"] is None
    assert answer["redirect"] == {"url": "/login?next=/members", "type": "push"}
    plain = client.submit(log_out, path="/gone")
    assert (plain.status_code, plain.text) == (404, "<p>no such page</p>")
    answer = client.submit(log_out, path="/gone", js=True).json
    # (Loaded, not morphed in: an error page may have assets of its own.)
    assert answer["redirect"] == {"url": "/gone", "type": "push"} and answer["html"] is None
    assert client.submit(log_out, path="/here", js=True).json["redirect"] is None
    # A call from a script has no page the browser would have ended on: nothing to follow
    # (an on-load call on an error page would reload it again and again).
    for page in ("/members", "/gone"):
        answer = client.call(log_out, page=page).json
        assert answer["redirect"] is None and answer["html"] is None


def test_a_failed_form_whose_page_answers_its_status_is_shown() -> None:
    """A view that answers the page of a failed form with the failure's status (422, as
    Django views often do) is shown with its errors, as without JavaScript: the client script
    gets the page, not a reload that would lose what was typed."""
    from werkzeug.wrappers import Response

    from actionkit import action_state, fail

    registry = Registry()

    @registry.action
    def save(form: MultiDict[str, str]) -> t.Any:
        return fail(422, {"title": "required"})

    def page(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        state = action_state(save)
        failed = state is not None and state.failed
        body = "<p>title required</p>" if failed else "<p>form</p>"
        return Response(body, 422 if failed else 200)(environ, start_response)

    client = ActionClient(ActionMiddleware(page, registry=registry, cache=False))
    plain = client.submit(save, {"title": ""}, path="/new")
    assert (plain.status_code, plain.text) == (422, "<p>title required</p>")
    answer = client.submit(save, {"title": ""}, path="/new", js=True)
    assert answer.status_code == 422 and answer.json["redirect"] is None
    assert answer.json["html"] == "<p>title required</p>"
    # A failed form whose page is now another error (deleted meanwhile) is loaded, not morphed.
    gone = ActionClient(ActionMiddleware(_paths_app, registry=registry, cache=False))
    answer = gone.submit(save, {"title": ""}, path="/gone", js=True)
    assert answer.json["redirect"] == {"url": "/gone", "type": "push"}
    assert answer.json["html"] is None


def test_a_redirect_with_text_in_its_query_renders_the_page_with_it_escaped() -> None:
    """redirect("/search?q=thé"): the page rendered into the client script's answer gets the
    query as a browser sends it, UTF-8 escaped (the raw text made Werkzeug's args fail)."""
    registry = Registry()

    @registry.action
    def search() -> None:
        redirect("/search?q=thé")

    client = ActionClient(ActionMiddleware(_paths_app, registry=registry, cache=False))
    answer = client.submit(search, path="/", js=True).json
    assert answer["html"] == "<p>page /search {'q': 'thé'}</p>"
    assert client.submit(search, path="/").headers["Location"] == "/search?q=th%C3%A9"


# -- cookies -----------------------------------------------------------------------------------


def test_cookies_set_with_safe_defaults_and_visible_in_same_round_trip(posts: t.Any) -> None:
    """cookies().set() sends Path=/; HttpOnly; SameSite=Lax and the page shows the value."""
    app, registry, db, client = posts
    set_name = _actions(registry)["set_name"]
    response = client.submit(set_name, {"name": "Delba"}, path="/posts")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("name=Delba;")
    assert "Path=/" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert "name=Delba" in response.text
    # The cookie jar of the test client now holds it; the next page shows it too.
    assert "name=Delba" in client.get("/posts").text
    response = client.submit(set_name, {"delete": "1"}, path="/posts")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert "name=-" in response.text


def test_cookies_json_call_rerenders_page(posts: t.Any) -> None:
    """A JS call that changes cookies gets the page (showing the cookie) in the answer."""
    app, registry, db, client = posts
    set_name = _actions(registry)["set_name"]
    response = client.submit(set_name, {"name": "Ada Lovelace"}, path="/posts", js=True)
    assert response.json["result"] == "Ada Lovelace"
    assert "name=Ada Lovelace" in response.json["html"]
    assert response.headers["Set-Cookie"].startswith('name="Ada Lovelace"')


def test_cookies_secure_on_https_and_overridable(posts: t.Any) -> None:
    """On https cookies are Secure; options given to set() override the defaults."""
    registry = Registry()

    @registry.action
    def remember(form: MultiDict[str, str]) -> None:
        cookies().set("a", "1")
        cookies().set("b", "2", httponly=False, samesite="Strict", max_age=60)

    client = ActionClient(ActionMiddleware(_ok_app, registry=registry, cache=False))
    response = client.submit(remember, {}, base_url="https://example.com")
    a, b = response.headers.getlist("Set-Cookie")
    assert "Secure" in a and "HttpOnly" in a
    assert "HttpOnly" not in b and "SameSite=Strict" in b and "Max-Age=60" in b


def test_the_page_after_an_action_sees_the_cookies_a_browser_would_send_it() -> None:
    """A cookie the action sets or deletes for another path is not what the browser sends to
    this page, so the page rendered in the answer does not see that change either."""
    registry = Registry()

    @registry.action
    def prefer(form: MultiDict[str, str]) -> None:
        cookies().set("admin_pref", "dark", path="/admin")
        cookies().delete("theme", path="/admin")  # only the /admin copy
        cookies().set("seen", "yes")

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(sorted(cookies().all().items())).encode()]

    client = ActionClient(ActionMiddleware(page, registry=registry, cache=False))
    client.set_cookie("theme", "light")
    for path, seen in [
        ("/posts", "[('seen', 'yes'), ('theme', 'light')]"),
        ("/admin/users", "[('admin_pref', 'dark'), ('seen', 'yes')]"),
    ]:
        assert client.submit(prefer, {}, path=path).text == seen
        assert client.submit(prefer, {}, path=path, js=True).json["html"] == seen


def test_two_threads_keep_their_own_cookies() -> None:
    """Two actions interleaved in two threads never see each other's cookies or instructions."""
    registry = Registry()
    barrier = threading.Barrier(2, timeout=5)

    @registry.action
    def who(name: str) -> dict[str, str]:
        cookies().set("who", name)
        barrier.wait()  # both actions are now inside, each having set its cookie
        revalidate_path(f"/{name}")
        barrier.wait()
        return cookies().all()

    app = ActionMiddleware(_ok_app, registry=registry, cache=False)
    results: dict[str, t.Any] = {}

    def run(name: str) -> None:
        response = ActionClient(app).call(who, name)
        results[name] = (response.json, response.headers.getlist("Set-Cookie"))

    threads = [threading.Thread(target=run, args=(n,)) for n in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in ("alice", "bob"):
        answer, set_cookies = results[name]
        assert answer["result"] == {"who": name}
        assert answer["revalidated"]["paths"] == [f"/{name}"]
        assert len(set_cookies) == 1 and set_cookies[0].startswith(f"who={name};")


# -- after() -----------------------------------------------------------------------------------


def test_after_runs_when_response_closes(posts: t.Any) -> None:
    """after() callbacks run from close() of the response, after the action."""
    app, registry, db, client = posts
    environ = EnvironBuilder(
        "/posts", method="POST", data={_actions(registry)["log_after"].field_name: ""}
    ).get_environ()
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert db.log == ["action"]
    b"".join(body)
    body.close()  # type: ignore[attr-defined]
    assert db.log == ["action", "after"]


def test_after_exceptions_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """An exception in an after() callback is logged and does not break the response."""
    from actionkit import after

    def boom() -> None:
        raise ValueError("after failed")

    def app(environ: t.Any, start_response: t.Any) -> t.Any:
        after(boom)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"page"]

    with caplog.at_level(logging.ERROR, logger="actionkit"):
        response = Client(ActionMiddleware(app, cache=False)).get("/")
        assert response.text == "page"
        response.close()
    assert "after() callback" in caplog.text and "after failed" in caplog.text


# -- everything else falls through untouched ---------------------------------------------------


def test_non_action_form_post_reaches_app_with_its_body(posts: t.Any) -> None:
    """A form POST naming no action reaches the app, which reads its own form."""
    app, registry, db, client = posts
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        response = client.post(
            "/echo", data={"q": "$ACTION_ID_ inside a value", "x": "1"}, content_type=content_type
        )
        assert response.text == "POST [('q', '$ACTION_ID_ inside a value'), ('x', '1')]"


def test_large_non_action_post_falls_through_intact() -> None:
    """A non-action form POST over body_limit reaches the app with every byte."""
    app, registry, db = make_app(body_limit=1000)
    payload = "x=" + "a" * 5000
    response = Client(app).post(
        "/raw", data=payload, content_type="application/x-www-form-urlencoded"
    )
    assert response.text == f"POST {len(payload)}"


def test_other_posts_are_not_read(posts: t.Any) -> None:
    """A JSON POST without Action-Id is handed over without the middleware reading it."""
    seen: dict[str, t.Any] = {}

    def app(environ: t.Any, start_response: t.Any) -> t.Any:
        seen["input"] = environ["wsgi.input"]
        seen["body"] = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b""]

    original = io.BytesIO(b'{"a": 1}')
    environ = EnvironBuilder("/", method="POST", content_type="application/json").get_environ()
    environ.update({"wsgi.input": original, "CONTENT_LENGTH": "8"})
    ActionMiddleware(app, cache=False)(environ, lambda *a: None)
    assert seen["input"] is original and seen["body"] == b'{"a": 1}'


def test_get_with_action_header_is_not_an_action(posts: t.Any) -> None:
    """Only POST runs actions; a GET carrying Action-Id is the app's."""
    app, registry, db, client = posts
    response = client.get("/posts", headers={"Action-Id": _actions(registry)["crash"].id})
    assert response.status_code == 200 and "<title>Posts</title>" in response.text


def test_streaming_response_is_passed_through_and_closed() -> None:
    """The wrapped app's streaming iterable is not buffered, and its close() is called."""
    events: list[str] = []

    class Stream:
        def __iter__(self) -> t.Iterator[bytes]:
            events.append("first")
            yield b"one"
            events.append("second")
            yield b"two"

        def close(self) -> None:
            events.append("closed")

    def app(environ: t.Any, start_response: t.Any) -> t.Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Stream()

    for method in ("GET", "POST", "PUT"):
        events.clear()
        environ = EnvironBuilder("/", method=method).get_environ()
        iterable = ActionMiddleware(app, cache=False)(environ, lambda *a: None)
        iterator = iter(iterable)
        assert next(iterator) == b"one" and events == ["first"]
        assert next(iterator) == b"two"
        iterable.close()  # type: ignore[attr-defined]
        assert events == ["first", "second", "closed"]


def test_file_upload(posts: t.Any) -> None:
    """A multipart form's files reach the action as FileStorage objects."""
    registry = Registry()
    received: list[tuple[str, bytes]] = []

    @registry.action
    def upload(form: MultiDict[str, t.Any]) -> None:
        file = form["avatar"]
        assert isinstance(file, FileStorage)
        received.append((file.filename or "", file.read()))

    client = ActionClient(ActionMiddleware(_ok_app, registry=registry, cache=False))
    response = client.submit(upload, {"avatar": (io.BytesIO(b"\x89PNG data"), "me.png")})
    assert response.status_code == 200
    assert received == [("me.png", b"\x89PNG data")]


# -- errors ------------------------------------------------------------------------------------


def test_unknown_action_json_and_html(posts: t.Any) -> None:
    """An unknown ID is 404 unknown_action, JSON for the client, a short page otherwise."""
    app, registry, db, client = posts
    response = client.post("/posts", json=[], headers={"Action-Id": "nope"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "unknown_action"
    response = client.post("/posts", data={"$ACTION_ID_nope": ""})
    assert response.status_code == 404
    assert response.mimetype == "text/html" and "404" in response.text


@pytest.mark.parametrize(
    ("headers", "options", "allowed"),
    [
        pytest.param({"Origin": "http://localhost"}, {}, True, id="same-origin"),
        pytest.param({"Origin": "http://localhost:80"}, {}, True, id="default-port"),
        pytest.param({"Origin": "https://evil.example"}, {}, False, id="cross-origin"),
        pytest.param({"Origin": "null"}, {}, False, id="null-origin"),
        pytest.param({"Referer": "http://localhost/posts"}, {}, True, id="same-referer"),
        pytest.param({"Referer": "https://evil.example/x"}, {}, False, id="cross-referer"),
        pytest.param({}, {}, True, id="no-origin"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, {}, False, id="sec-fetch-site"),
        pytest.param(
            {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
            {},
            False,
            id="sec-fetch-site-with-same-origin",
        ),
        pytest.param(
            {"Referer": "http://localhost/posts", "Sec-Fetch-Site": "cross-site"},
            {},
            False,
            id="sec-fetch-site-with-same-referer",
        ),
        pytest.param(
            {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
            {},
            True,
            id="sec-fetch-site-same-origin",
        ),
        pytest.param({"Origin": "http://localhost:8080"}, {}, False, id="other-port"),
        pytest.param(
            {"Referer": "http://localhost:8080/posts"}, {}, False, id="other-port-referer"
        ),
        pytest.param(
            {"Origin": "http://localhost:8080", "Host": "localhost:8080"},
            {},
            True,
            id="same-port",
        ),
        pytest.param(
            {"Origin": "http://localhost", "Host": "localhost:8080"}, {}, False, id="port-missing"
        ),
        pytest.param(
            {"Origin": "http://app.example.com"},
            {"allowed_origins": ["https://app.example.com"]},
            False,
            id="allowed-origin-other-scheme",
        ),
        pytest.param(
            {"Origin": "https://app.example.com:8443"},
            {"allowed_origins": ["https://app.example.com"]},
            False,
            id="allowed-origin-other-port",
        ),
        pytest.param(
            {"Origin": "https://evil.example"},
            {"allowed_origins": ["https://app.example.com", "*.example.com"]},
            False,
            id="not-among-allowed",
        ),
        pytest.param(
            {"Origin": "https://example.com.evil"},
            {"allowed_origins": ["*.example.com"]},
            False,
            id="pattern-is-anchored",
        ),
        pytest.param(
            {"Origin": "https://app.example.com"},
            {"allowed_origins": ["https://app.example.com"]},
            True,
            id="allowed-origin",
        ),
        pytest.param(
            {"Origin": "https://a.example.com"},
            {"allowed_origins": ["*.example.com"]},
            True,
            id="allowed-pattern",
        ),
        pytest.param(
            {"Origin": "https://a.example.com"},
            {"allowed_origins": ["https://*.example.com"]},
            True,
            id="allowed-pattern-of-a-scheme",
        ),
        pytest.param(
            {"Origin": "http://a.example.com"},
            {"allowed_origins": ["https://*.example.com"]},
            False,
            id="pattern-of-another-scheme",
        ),
        pytest.param(
            {"Origin": "https://public.example", "X-Forwarded-Host": "public.example"},
            {},
            False,
            id="forwarded-untrusted",
        ),
        pytest.param(
            {"Origin": "https://public.example", "X-Forwarded-Host": "public.example"},
            {"trust_forwarded": True},
            True,
            id="forwarded-trusted",
        ),
    ],
)
def test_origin_check(headers: dict[str, str], options: dict[str, t.Any], allowed: bool) -> None:
    """Actions run only for the page's own origin (or allowed ones), in every content type."""
    app, registry, db = make_app(**options)
    client = ActionClient(app)
    acts = _actions(registry)
    responses = [
        client.call(acts["increment_views"], headers=headers),
        client.submit(acts["set_name"], {"name": "x"}, headers=headers),
        client.submit(
            acts["set_name"], {"name": "x"}, headers=headers, content_type="multipart/form-data"
        ),
        client.post(
            "/",
            data="[]",
            headers={**headers, "Action-Id": acts["increment_views"].id},
            content_type="text/plain",
        ),
    ]
    statuses = [r.status_code for r in responses]
    if allowed:
        assert 403 not in statuses
        assert db.views == 1
    else:
        assert statuses == [403, 403, 403, 403]
        assert responses[0].json["error"]["code"] == "cross_origin"
        assert db.views == 0


def test_body_limit(posts: t.Any) -> None:
    """A body over body_limit is 413: by Content-Length, or by reading no further."""
    app, registry, db = make_app(body_limit=100)
    client = ActionClient(app)
    acts = _actions(registry)
    response = client.call(acts["increment_views"], "x" * 200)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "body_too_large"
    response = client.submit(acts["set_name"], {"name": "x" * 200})
    assert response.status_code == 413 and response.mimetype == "text/html"
    # Without Content-Length (chunked), the limit still holds.
    body = json.dumps(["x" * 200]).encode()
    environ = EnvironBuilder(
        "/", method="POST", headers={"Action-Id": acts["increment_views"].id}
    ).get_environ()
    environ.update(
        {
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "CONTENT_TYPE": "application/json",
        }
    )
    environ.pop("CONTENT_LENGTH", None)
    statuses: list[str] = []
    app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses == ["413 Request Entity Too Large"]
    assert db.views == 0


class _Trickle(io.BytesIO):
    """A server's input stream that answers each read with at most 7 bytes."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(7 if size is None or size < 0 else min(size, 7))


@pytest.mark.parametrize("terminated", [False, True], ids=["length", "input-terminated"])
@pytest.mark.parametrize("client_js", [True, False], ids=["js", "no-js"])
def test_body_read_in_pieces_and_cut_short(posts: t.Any, client_js: bool, terminated: bool) -> None:
    """A body that arrives a few bytes at a time is read whole; one that ends before its
    Content-Length (the client went away) is a 400, and the action does not run, also from a
    server that marks every input terminated (gunicorn: its stream ends where the client
    stopped)."""
    app, registry, db, client = posts
    action_id = _actions(registry)["create_post"].id
    body = f"%24ACTION_ID_{action_id}=&title=ada&content=hello".encode()
    headers = {"Action-Id": action_id} if client_js else {}
    whole = "200" if client_js else "303"
    statuses: list[str] = []
    for data, expected in ((body, whole), (body[:20], "400")):
        environ = EnvironBuilder("/posts", method="POST", headers=headers).get_environ()
        environ.update(
            {
                "wsgi.input": _Trickle(data),
                "wsgi.input_terminated": terminated,
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": "application/x-www-form-urlencoded",
            }
        )
        chunks = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(chunks)
        assert statuses[-1].startswith(expected), (statuses, data)
    assert [(p["title"], p["content"]) for p in db.posts.values()] == [("ada", "hello")]


@pytest.mark.parametrize("terminated", [False, True], ids=["length", "input-terminated"])
def test_a_form_cut_short_of_a_length_over_the_limit_never_runs(
    posts: t.Any, terminated: bool
) -> None:
    """A form whose Content-Length is over body_limit, cut short below it (the client went
    away), is refused without running the action, whatever the server says of its stream."""
    app, registry, db, client = posts
    action_id = _actions(registry)["create_post"].id
    body = f"%24ACTION_ID_{action_id}=&title=ada&content=hello".encode()
    environ = EnvironBuilder("/posts", method="POST").get_environ()
    environ.update(
        {
            "wsgi.input": _Trickle(body),
            "wsgi.input_terminated": terminated,
            "CONTENT_LENGTH": str(10 * 1024 * 1024),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
        }
    )
    statuses: list[str] = []
    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses[-1].startswith(("400", "413")), statuses
    assert not db.posts


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"data": "[1,", "content_type": "application/json"}, "JSON", id="bad-json"),
        pytest.param(
            {"data": '{"a": 1}', "content_type": "application/json"}, "array", id="not-array"
        ),
        pytest.param({"data": "x", "content_type": "text/csv"}, "content type", id="bad-type"),
        pytest.param(
            {"data": "--zz\r\nbroken", "content_type": "multipart/form-data; boundary=zz"},
            "decoded",
            id="bad-multipart",
        ),
        pytest.param(
            {"data": "[]", "content_type": "application/json", "headers": {"Action-Bound": "AAAA"}},
            "token",
            id="bad-token",
        ),
        pytest.param(
            {
                "data": "[]",
                "content_type": "application/json",
                "headers": {"Action-Page": "//evil/"},
            },
            "Action-Page",
            id="bad-page",
        ),
    ],
)
def test_bad_requests_are_400(kwargs: dict[str, t.Any], message: str) -> None:
    """Malformed bodies, arguments, tokens or pages get 400 with a message saying what."""
    app, registry, db = make_app()
    action_id = _actions(registry)["increment_views"].id
    kwargs = dict(kwargs)  # the table is shared by every run of the test: never change it
    headers = {"Action-Id": action_id, **kwargs.pop("headers", {})}
    response = Client(app).post("/", headers=headers, **kwargs)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert message in response.json["error"]["message"]
    assert db.views == 0


def test_token_of_another_action_is_refused(posts: t.Any) -> None:
    """A bound token cannot be moved from one action to another."""
    app, registry, db, client = posts
    acts = _actions(registry)
    token = acts["delete_post"].bind(1).token
    response = client.post("/", data={acts["guarded"].field_name: token})
    assert response.status_code == 400


def test_crash_is_500_with_digest_only(posts: t.Any, caplog: pytest.LogCaptureFixture) -> None:
    """An action that raises answers 500 with a digest; the traceback is logged under it."""
    app, registry, db, client = posts
    crash = _actions(registry)["crash"]
    with caplog.at_level(logging.ERROR, logger="actionkit"):
        response = client.call(crash)
        html_response = client.post("/", data={crash.field_name: ""})
    assert response.status_code == 500 == html_response.status_code
    digest = response.json["error"]["digest"]
    assert response.json["error"]["code"] == "action_failed"
    assert "secret database password" not in response.text + html_response.text
    assert "Traceback" not in html_response.text
    assert digest in caplog.text and "secret database password" in caplog.text


def test_crash_shows_traceback_in_debug() -> None:
    """debug=True puts the traceback in the answer."""
    app, registry, db = make_app(debug=True)
    response = ActionClient(app).call(_actions(registry)["crash"])
    assert "secret database password" in response.json["error"]["traceback"]


def test_non_json_result_is_500(caplog: pytest.LogCaptureFixture) -> None:
    """A result the client cannot receive (not JSON) is a logged 500, not a crash."""
    registry = Registry()

    @registry.action
    def odd() -> object:
        return object()

    with caplog.at_level(logging.ERROR, logger="actionkit"):
        response = ActionClient(ActionMiddleware(_ok_app, registry=registry, cache=False)).call(odd)
    assert response.status_code == 500
    assert "not a JSON value" in caplog.text


def test_invalid_body_limit() -> None:
    """A nonsensical body_limit is refused with a clear message."""
    with pytest.raises(ValueError, match="body_limit"):
        ActionMiddleware(_ok_app, body_limit=0)


def _ok_app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>ok</title>"]


def test_a_werkzeug_http_error_in_an_action_is_its_status() -> None:
    """A Werkzeug HTTPException raised by an action of a plain WSGI app answers with its status:
    the client script gets its code and the message it was raised with."""
    from werkzeug.exceptions import Conflict, NotFound

    registry = Registry()

    @registry.action(id="gone")
    def gone() -> None:
        raise NotFound("No such post.")

    @registry.action(id="clash")
    def clash() -> None:
        raise Conflict()

    def page(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"page"]

    client = ActionClient(ActionMiddleware(page, registry=registry, cache=False))
    answer = client.call(gone)
    assert answer.status_code == 404
    assert answer.json["error"] == {"code": "not_found", "message": "No such post."}
    answer = client.call(clash)
    assert answer.status_code == 409
    assert answer.json["error"] == {"code": "http_error", "message": "Conflict"}
    assert client.submit(gone).status_code == 404


_BIG_BODY_APP = """
from actionkit import ActionMiddleware, Registry

registry = Registry()


@registry.action(id="upload")
def upload(*args):
    return len(args)


def page(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"page"]


app = ActionMiddleware(page, registry=registry, cache=False)
"""


def test_a_client_sending_a_refused_action_reads_its_answer(tmp_path: Path) -> None:
    """Under gunicorn (gthread, keep-alive), an 8 MiB action request is answered 413 (or 404
    for an unknown action) and the connection serves the next request: the refused body is
    read and dropped. Left unread, gunicorn closed the connection while the client still
    sent, which saw a reset instead of the answer."""
    import http.client
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    (tmp_path / "bigapp.py").write_text(_BIG_BODY_APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "2", "-w", "1"]
    command += ["-b", f"127.0.0.1:{port}", "bigapp:app"]
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, "gunicorn exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = b'["' + b"x" * (8 * 1024 * 1024) + b'"]'
        headers = {
            "Action-Id": "upload",
            "Content-Type": "application/json",
            "Origin": f"http://127.0.0.1:{port}",
        }
        # Refused as too large, and as naming no action (the 404 after which the client script
        # reloads the page): each answered, and the connection kept.
        for action, status, code in [("upload", 413, b"body_too_large"), ("gone", 404, b"unknown")]:
            connection.request("POST", "/", body=body, headers={**headers, "Action-Id": action})
            answer = connection.getresponse()
            assert answer.status == status and code in answer.read()
            connection.request("GET", "/")
            after = connection.getresponse()
            assert (after.status, after.read()) == (200, b"page")
        connection.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
