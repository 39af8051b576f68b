"""ActionKitMiddleware in the example project, through Django's test client."""

from __future__ import annotations

import io
import json
import re
import typing as t

import pytest

from .helpers import ORIGIN, call, client, new_post, submit

pytestmark = pytest.mark.usefixtures("project")


def test_form_submission_redirects_with_message_and_revalidates() -> None:
    """A form posted without JavaScript runs the action, answers 303, and the next GET shows
    the new post and the message the action added, although the list was cached."""
    from posts import actions

    c = client()
    assert c.get("/posts").headers["Actionkit-Cache"] in ("MISS", "BYPASS", "HIT")
    assert c.get("/posts").headers["Actionkit-Cache"] == "HIT"
    response = submit(c, actions.create_post, {"title": "From a form", "content": "x"})
    assert response.status_code == 303
    assert response["Location"] == "/posts"
    page = c.get("/posts")
    assert page.headers["Actionkit-Cache"] == "BYPASS"  # it shows a message: never stored
    assert "From a form" in page.text
    assert "Published “From a form”." in page.text


def test_client_call_answers_with_the_page_rendered_by_django() -> None:
    """With the client script, the answer holds the redirect and the page at its target,
    rendered by the Django view, with the message the action added (then consumed)."""
    from posts import actions

    c = client()
    response = c.post(
        "/posts",
        {actions.create_post.field_name: "", "title": "Scripted"},
        headers={"Action-Id": actions.create_post.id, "Origin": ORIGIN},
    )
    answer = response.json()
    assert response.status_code == 200
    assert answer["redirect"] == {"url": "/posts", "type": "push"}
    assert "Scripted" in answer["html"] and "Published “Scripted”." in answer["html"]
    assert "Published" not in c.get("/posts").text  # shown once, in the answer


def test_failed_submission_renders_the_form_again_with_422() -> None:
    """fail() renders the page again through its view with the error and the values typed."""
    from posts import actions

    response = submit(client(), actions.create_post, {"title": "", "content": "kept"})
    assert response.status_code == 422
    assert 'id="title-error">Give your post a title.' in response.text
    assert ">kept</textarea>" in response.text
    assert response["Cache-Control"] == "no-store"


def test_action_sees_request_user() -> None:
    """A parameter named request receives Django's request: request.user is the logged-in
    user, as AuthenticationMiddleware made it."""
    from django.contrib.auth.models import User
    from posts import actions
    from posts.models import Post

    user, _ = User.objects.get_or_create(username="ada")
    c = client()
    c.force_login(user)
    submit(c, actions.create_post, {"title": "By Ada"})
    assert Post.objects.get(title="By Ada").author == "ada"
    submit(client(), actions.create_post, {"title": "By nobody"})
    assert Post.objects.get(title="By nobody").author == "anonymous"


def test_permission_denied_is_forbidden_with_djangos_page() -> None:
    """PermissionDenied in an action is 403: Django's handler403 page without JavaScript, the
    JSON error for the client; nothing was deleted."""
    from posts import actions
    from posts.models import Post

    post = new_post()
    response = submit(client(), actions.clear_posts)
    assert response.status_code == 403
    assert 'id="forbidden"' in response.text
    answer = call(client(), actions.clear_posts)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert Post.objects.filter(pk=post.pk).exists()


def test_http404_is_not_found_with_djangos_page() -> None:
    """get_object_or_404 in an action is 404 with the project's 404.html without JavaScript."""
    from posts import actions

    gone = actions.delete_post.bind(10_000_000)
    response = submit(client(), gone)
    assert response.status_code == 404
    assert 'id="not-found"' in response.text
    assert call(client(), gone).json()["error"]["code"] == "not_found"
    # Bound: a request cannot name the post itself.
    assert call(client(), actions.delete_post, 10_000_000).status_code == 400


def test_returned_redirect_response_is_a_redirect() -> None:
    """An action returning an HttpResponseRedirect (redirect_to_login of login_required) ends
    as redirect() does: 303 without JavaScript, the redirect in the client's answer."""
    from django.contrib.auth.decorators import login_required

    from actionkit import action

    @action(id="test-django-login-required")
    @login_required
    def guarded(request: t.Any) -> str:
        return "ran"

    response = submit(client(), guarded)
    assert response.status_code == 303
    assert response["Location"].startswith("/accounts/login/?next=")
    answer = call(client(), guarded).json()
    assert answer["redirect"]["url"].startswith("/accounts/login/")


def test_cookies_set_by_an_action_are_seen_by_the_page_after_it() -> None:
    """cookies().set() reaches the browser and the page Django renders after the action."""
    from posts import actions

    c = client()
    response = call(c, actions.save_preferences, "Delba", "dark", path="/posts")
    assert response.cookies["name"].value == "Delba"
    assert response.cookies["theme"]["samesite"] == "Lax"
    # JSON calls re-render on cookie changes: the page already greets the visitor.
    assert "Hello, Delba" in response.json()["html"]
    assert "Hello, Delba" in c.get("/posts").text


def test_session_changes_are_seen_by_the_page_and_saved() -> None:
    """An action that logs a user in (a new session) is seen by the page rendered after it,
    and the session cookie goes out with the answer."""
    from django.contrib.auth import login
    from django.contrib.auth.models import User
    from django.template import engines

    from actionkit import action

    user, _ = User.objects.get_or_create(username="grace")

    @action(id="test-django-login")
    def log_in(request: t.Any) -> None:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")

    engines["django"].from_string("")  # the engine is ready
    c = client()
    response = submit(c, log_in)
    assert response.status_code == 200
    assert "sessionid" in response.cookies
    assert c.session["_auth_user_id"] == str(user.pk)


def test_csrf_token_in_an_action_form_and_plain_forms_still_guarded() -> None:
    """{% csrf_token %} renders in an action form, and its cookie is sent; a POST that is not
    an action still needs the token (CsrfViewMiddleware stays on), and reads request.POST
    after actionkit looked into its body."""
    from posts import actions

    post = new_post("Token")
    c = client()
    page = c.get(f"/posts/{post.pk}")
    assert 'name="csrfmiddlewaretoken"' in page.text
    assert "csrftoken" in page.cookies
    renamed = submit(c, actions.rename_post.bind(post.pk), {"title": ""}, path=f"/posts/{post.pk}")
    assert renamed.status_code == 422
    assert 'name="csrfmiddlewaretoken"' in renamed.text
    assert client().post("/feedback", {"message": "hi"}).status_code == 403
    form = c.get("/feedback")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    sent = c.post("/feedback", {"message": "hi there", "csrfmiddlewaretoken": token.group(1)})
    assert sent.status_code == 200
    assert "Thanks: hi there" in sent.text


def test_action_reads_the_body_through_django() -> None:
    """request.POST and request.body work inside an action after actionkit decoded the body."""
    from actionkit import action

    seen: dict[str, t.Any] = {}

    @action(id="test-django-body")
    def echo(request: t.Any, form: t.Any) -> str:
        seen["post"] = request.POST.get("word")
        return "ok"

    @action(id="test-django-json-body")
    def echo_json(request: t.Any, word: str) -> str:
        seen["body"] = request.body
        return word

    c = client()
    response = c.post(
        "/posts",
        f"{echo.field_name}=&word=hello",
        content_type="application/x-www-form-urlencoded",
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200
    assert seen["post"] == "hello"
    assert call(c, echo_json, "there").json()["result"] == "there"
    assert seen["body"] == b'["there"]'


def test_non_seekable_input_reaches_the_view_whole() -> None:
    """A form POST from a socket-like stream that is not an action reaches the view with its
    body, though actionkit read it first (Django had wrapped the stream already)."""
    from django.core.handlers.wsgi import WSGIHandler

    class Socket:
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._data.read(size)

        def readline(self, size: int = -1) -> bytes:
            return self._data.readline(size)

    body = b"message=" + b"x" * 3000
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/feedback",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": Socket(body),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_COOKIE": "csrftoken=" + "a" * 32,
        "HTTP_X_CSRFTOKEN": "a" * 32,
    }
    status: list[str] = []
    chunks = WSGIHandler()(environ, lambda s, h, e=None: status.append(s))
    try:
        text = b"".join(chunks).decode()
    finally:
        chunks.close()
    assert status == ["200 OK"]
    assert "Thanks: " + "x" * 3000 in text


def test_a_form_larger_than_the_body_limit_reaches_the_view_whole() -> None:
    """A form that is not an action, larger than BODY_LIMIT (actionkit read its first MiB to
    look for an action's field), reaches its view whole: Django reads request.body in one read
    of the whole length."""
    from django.test import Client

    body = b"message=" + b"x" * 2_000_000
    sent = Client().post("/feedback", body, content_type="application/x-www-form-urlencoded")
    assert sent.status_code == 200
    assert "Thanks: " + "x" * 2_000_000 in sent.text


@pytest.mark.parametrize("size", [10, 2_000_000], ids=["small", "over-the-limit"])
def test_an_int_content_length_from_the_test_client(size: int) -> None:
    """Django's test client passes on CONTENT_LENGTH as given, an int in Django's own tests
    (``CONTENT_LENGTH=len(payload)``), and Django reads it: a form that is not an action
    reaches its view, and an action call runs."""
    from django.test import Client
    from posts import actions

    body = b"message=" + b"x" * size
    sent = Client().generic(
        "POST",
        "/feedback",
        body,
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=len(body),
    )
    assert sent.status_code == 200
    assert "Thanks: " + "x" * size in sent.text
    post = new_post()
    data = json.dumps([post.pk]).encode()
    headers = {"Action-Id": actions.increment_views.id, "Origin": ORIGIN}
    response = Client().generic(
        "POST", "/posts", data, "application/json", headers=headers, CONTENT_LENGTH=len(data)
    )
    assert response.status_code == 200
    assert response.json()["result"] == 1


def test_action_posted_before_any_get() -> None:
    """The app imported posts.actions when Django started: a new handler runs an action as its
    first request."""
    from posts import actions

    c = client()
    assert call(c, actions.increment_views, new_post().pk).status_code == 200


def test_each_test_that_sets_actionkit_has_a_memory_store_of_its_own() -> None:
    """With override_settings(ACTIONKIT={"CACHE": "memory"}), a test gets a store of its own,
    which all its clients share: a page stored in one such test is not the next one's (a post
    made with the ORM alone, no revalidation, shows there), and revalidation outside a request
    reaches the test's store."""
    from django.test import override_settings
    from posts.models import Post

    from actionkit import revalidate_path

    memory = {"CACHE": "memory"}
    with override_settings(ACTIONKIT=memory):
        client().get("/posts")
        assert client().get("/posts").headers["Actionkit-Cache"] == "HIT"
    Post.objects.create(title="Made without a revalidation")
    with override_settings(ACTIONKIT=memory):
        page = client().get("/posts")
        assert page.headers["Actionkit-Cache"] == "MISS"
        assert "Made without a revalidation" in page.text
        assert client().get("/posts").headers["Actionkit-Cache"] == "HIT"
        revalidate_path("/posts")
        assert client().get("/posts").headers["Actionkit-Cache"] == "MISS"


def test_get_cache_revalidated_by_an_action_and_outside_a_request() -> None:
    """A cached page is dropped by the action's revalidate_path, and by revalidate_tag called
    outside any request (a job, a management command): it reaches the project's store."""
    from posts import actions

    from actionkit import revalidate_tag

    post = new_post("Cached")
    c = client()
    c.get("/posts")
    assert c.get("/posts").headers["Actionkit-Cache"] == "HIT"
    like = f'id="like-{post.pk}"'
    assert re.search(like + r'[^>]*>♥ <span class="count">0<', c.get("/posts").text)
    call(c, actions.increment_like, post.pk)  # its answer's page is stored anew
    assert re.search(like + r'[^>]*>♥ <span class="count">1<', c.get("/posts").text)
    assert c.get("/posts").headers["Actionkit-Cache"] == "HIT"
    revalidate_tag("posts")
    assert c.get("/posts").headers["Actionkit-Cache"] == "MISS"
    # The post's page holds a CSRF token: somebody's, never stored.
    assert c.get(f"/posts/{post.pk}").headers["Actionkit-Cache"] == "BYPASS"
    assert c.get(f"/posts/{post.pk}").headers["Actionkit-Cache"] == "BYPASS"


def test_a_page_that_touched_the_session_varies_on_cookie() -> None:
    """A cached page that read request.user (the session) is stored per Cookie header: a
    logged-in visitor never gets an anonymous visitor's copy, nor the reverse."""
    from django.contrib.auth.models import User
    from django.http import HttpResponse
    from django.urls import clear_url_caches, path

    from actionkit import cache_tag

    def whoami(request: t.Any) -> HttpResponse:
        cache_tag("whoami")
        return HttpResponse(f"user={request.user.get_username() or '-'}")

    import mysite.urls

    mysite.urls.urlpatterns.append(path("whoami", whoami))
    clear_url_caches()
    try:
        user, _ = User.objects.get_or_create(username="linus")
        anonymous, logged = client(), client()
        logged.force_login(user)
        assert anonymous.get("/whoami").text == "user=-"
        assert "Cookie" in anonymous.get("/whoami")["Vary"]
        assert logged.get("/whoami").text == "user=linus"
        assert anonymous.get("/whoami").headers["Actionkit-Cache"] == "HIT"
    finally:
        mysite.urls.urlpatterns.pop()
        clear_url_caches()


def _route(name: str, view: t.Any) -> t.Any:
    """A view added to the example's URLs for one test (``with _route(...)``)."""
    import contextlib

    import mysite.urls
    from django.urls import clear_url_caches, path

    @contextlib.contextmanager
    def added() -> t.Iterator[None]:
        mysite.urls.urlpatterns.append(path(name, view))
        clear_url_caches()
        try:
            yield
        finally:
            mysite.urls.urlpatterns.pop()
            clear_url_caches()

    return added()


def test_a_page_that_writes_the_session_is_never_stored() -> None:
    """A cached page whose view writes the session (a new visitor's cart) answers with the
    session cookie: it is somebody's, and the next visitor gets a page of their own."""
    import uuid

    from django.http import HttpResponse

    from actionkit import cache_tag

    def cart(request: t.Any) -> HttpResponse:
        cache_tag("cart")
        request.session.setdefault("cart", uuid.uuid4().hex)
        return HttpResponse(f"cart={request.session['cart']}")

    with _route("new-cart", cart):
        first, second = client().get("/new-cart"), client().get("/new-cart")
        assert "sessionid" in first.cookies and "sessionid" in second.cookies
        assert first.text != second.text
        assert second.headers["Actionkit-Cache"] != "HIT"


def test_the_page_after_an_action_that_changed_the_session_is_the_visitors_own() -> None:
    """The page in the client's answer to an action that changed the session shows the new
    session: it is not read from the cache under the request's old Cookie header, nor stored
    under it for the next visitor with that header (none, for new visitors)."""
    from django.http import HttpResponse

    from actionkit import action, cache_tag, redirect

    def cart(request: t.Any) -> HttpResponse:
        cache_tag("cart")
        return HttpResponse(f"cart={request.session.get('cart', [])}")

    @action(id="test-django-add-to-cart")
    def add_to_cart(request: t.Any, item: str) -> None:
        request.session["cart"] = [*request.session.get("cart", []), item]
        redirect("/cart")

    with _route("cart", cart):
        assert client().get("/cart").text == "cart=[]"  # stored for visitors without cookies
        alice = client()
        answer = call(alice, add_to_cart, "tea", path="/cart")
        assert answer.json()["html"] == "cart=['tea']"
        assert "sessionid" in answer.cookies
        bob = client().get("/cart")
        assert bob.text == "cart=[]"
        assert alice.get("/cart").text == "cart=['tea']"


@pytest.mark.parametrize("name", ["café", "日本"])
def test_a_page_with_text_past_ascii_in_its_path(name: str) -> None:
    """A page whose path holds text past ASCII (é is latin-1, 日 is not), which Django's
    WSGIRequest writes into the environ as text: the page after an action is that page, and
    revalidate_path() of it as text drops the cached page."""
    import mysite.urls
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import override_settings
    from django.urls import clear_url_caches
    from django.urls import path as route

    from actionkit import action, cache_tag, revalidate_path

    from .helpers import RecordsPath

    likes = {name: 0}

    def tag(request: t.Any, tag_name: str) -> HttpResponse:
        cache_tag("tags")
        return HttpResponse(f"{tag_name}: {likes[tag_name]} likes|{request.META['PATH_INFO']}")

    @action(id=f"test-django-like-tag-{len(name)}")
    def like(request: t.Any) -> None:
        assert request.META["PATH_INFO"] == f"/tag/{name}"  # as Django gives it to views
        likes[name] += 1
        revalidate_path(f"/tag/{name}")

    mysite.urls.urlpatterns.append(route("tag/<str:tag_name>", tag))
    clear_url_caches()
    middleware = ["tests.django.helpers.RecordsPath", *settings.MIDDLEWARE]
    RecordsPath.seen.clear()
    try:
        c = client()
        url = f"/tag/{name}"
        assert c.get(url).text == f"{name}: 0 likes|/tag/{name}"
        assert submit(c, like, path=url).text == f"{name}: 1 likes|/tag/{name}"
        assert call(c, like, path=url).json()["html"] == f"{name}: 2 likes|/tag/{name}"
        again = c.get(url)
        assert again.text == f"{name}: 2 likes|/tag/{name}"
        assert again.headers["Actionkit-Cache"] in ("MISS", "HIT")
        assert c.get(url).headers["Actionkit-Cache"] == "HIT"
        with override_settings(MIDDLEWARE=middleware):  # a middleware above sees Django's text
            assert call(client(), like, path=url).status_code == 200
            assert client().get(url).headers["Actionkit-Cache"] == "HIT"
        assert RecordsPath.seen == [f"/tag/{name}"] * 2
    finally:
        mysite.urls.urlpatterns.pop()
        clear_url_caches()


def test_pages_in_the_language_localemiddleware_chose_are_stored_apart() -> None:
    """With LocaleMiddleware above (where Django's docs put it), a page rendered in French is
    never served from the cache to a visitor who gets English, nor the reverse."""
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import override_settings
    from django.utils import translation

    from actionkit import cache_tag

    def hello(request: t.Any) -> HttpResponse:
        cache_tag("hello")
        return HttpResponse(f"language={translation.get_language()}")

    middleware = list(settings.MIDDLEWARE)
    middleware.insert(2, "django.middleware.locale.LocaleMiddleware")
    languages = [("en", "English"), ("fr", "French")]
    with override_settings(MIDDLEWARE=middleware, LANGUAGES=languages), _route("hello", hello):
        for accept, expected in [("fr", "fr"), ("en", "en"), ("fr-CA", "fr"), ("en-US", "en")]:
            answer = client().get("/hello", headers={"Accept-Language": accept})
            assert answer.text == f"language={expected}", accept
        assert client().get("/hello", headers={"Accept-Language": "fr"})["Actionkit-Cache"] == "HIT"


def test_a_streamed_page_that_reads_the_session_is_never_stored() -> None:
    """A StreamingHttpResponse reads the session once SessionMiddleware decided its headers
    (without Vary: Cookie): it is somebody's all the same (it was stored, and served to the
    next visitor)."""
    from django.http import HttpResponse, StreamingHttpResponse

    from actionkit import cache_tag

    def login(request: t.Any) -> HttpResponse:
        request.session["name"] = "alice"
        return HttpResponse("ok")

    def feed(request: t.Any) -> StreamingHttpResponse:
        cache_tag("feed")

        def body() -> t.Iterator[str]:
            yield "Signed in as "
            yield request.session.get("name", "guest")

        return StreamingHttpResponse(body())

    with _route("stream-login", login), _route("stream-feed", feed):
        alice = client()
        alice.get("/stream-login")
        assert b"".join(alice.get("/stream-feed").streaming_content) == b"Signed in as alice"
        guest = client().get("/stream-feed")
        assert b"".join(guest.streaming_content) == b"Signed in as guest"


def test_pages_of_the_sites_a_proxy_forwards_for_are_stored_apart() -> None:
    """Behind a proxy, Django takes the site from X-Forwarded-Host (USE_X_FORWARDED_HOST) and
    the scheme from SECURE_PROXY_SSL_HEADER: a page with absolute URLs of one site is never
    served to a request for another, though Host and the scheme are the proxy's."""
    from django.http import HttpResponse
    from django.test import override_settings

    from actionkit import cache_tag

    def home(request: t.Any) -> HttpResponse:
        cache_tag("home")
        return HttpResponse(request.build_absolute_uri("/"))

    proxy = {
        "ALLOWED_HOSTS": ["*"],
        "USE_X_FORWARDED_HOST": True,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    }
    with override_settings(**proxy), _route("site-home", home):
        for site, scheme in [("a.example", "https"), ("b.example", "https"), ("a.example", "http")]:
            headers = {"X-Forwarded-Host": site, "X-Forwarded-Proto": scheme}
            for _ in range(2):
                answer = client().get("/site-home", headers=headers, HTTP_HOST="backend")
                assert answer.text == f"{scheme}://{site}/", headers
        again = client().get("/site-home", headers=headers, HTTP_HOST="backend")
        assert again["Actionkit-Cache"] == "HIT"


def test_a_multipart_action_whose_body_a_middleware_above_parsed_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A middleware above that read request.POST of a multipart action consumed its body
    (Django keeps no copy): the answer is an error naming the cause, not a plain form that
    CSRF refuses. A urlencoded one still runs (Django keeps its body)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings
    from posts import actions
    from werkzeug.test import Client

    middleware = ["tests.django.helpers.ReadsPost", *settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware):
        wsgi = Client(WSGIHandler())
        gone = actions.delete_post.bind(10_000_000)  # (a bound action: its field has a value)
        form = {gone.field_name: gone.token}
        sent = {"headers": {"Origin": ORIGIN}, "base_url": ORIGIN}
        plain = wsgi.post("/posts", data=form, **sent)
        assert plain.status_code == 404 and 'id="not-found"' in plain.text  # it ran
        answer = wsgi.post("/posts", data=form, content_type="multipart/form-data", **sent)
        assert answer.status_code == 500
        (error,) = [r.exc_info[1] for r in caplog.records if r.exc_info]
        assert isinstance(error, ImproperlyConfigured)
        assert "read request.POST of a multipart action request" in str(error)


@pytest.mark.parametrize("debug", [False, True])
def test_a_form_posted_where_django_adds_a_slash_is_answered_with_303(debug: bool) -> None:
    """Without JavaScript, an action posted to /slashed while the page is /slashed/
    (APPEND_SLASH) runs, and its answer is a 303 to /slashed/: CommonMiddleware above never
    meets a POST it would redirect (a 301, or an error with DEBUG)."""
    from django.http import HttpResponse
    from django.test import override_settings

    from actionkit import action

    ran: list[str] = []

    @action(id=f"test-django-slashed-{debug}")
    def note(request: t.Any, title: str = "") -> None:
        ran.append(title)

    def slashed(request: t.Any) -> HttpResponse:
        return HttpResponse(f"ran={ran}")

    with override_settings(DEBUG=debug), _route("slashed/", slashed):
        answer = submit(client(), note, {"title": "hello"}, path="/slashed")
        assert (answer.status_code, answer["Location"]) == (303, "/slashed/")
        assert ran == ["hello"]


def test_an_action_returning_a_permanent_redirect_is_answered_with_303() -> None:
    """An action that returns HttpResponsePermanentRedirect ran: the browser goes on with a
    303, as after redirect(); a 301 or 308 would post the form again (it would run again)."""
    from django.http import HttpResponsePermanentRedirect

    from actionkit import action

    @action(id="test-django-permanent")
    def move(request: t.Any) -> t.Any:
        return HttpResponsePermanentRedirect("/moved/")

    answer = submit(client(), move, {}, path="/posts")
    assert (answer.status_code, answer["Location"]) == (303, "/moved/")


def test_the_cookies_of_a_redirect_the_action_returns_are_sent() -> None:
    """``response = redirect(...); response.set_cookie(...); return response``, as in a view:
    the cookie is sent with the action's redirect."""
    from django.shortcuts import redirect as django_redirect

    from actionkit import action

    @action(id="test-django-redirect-cookie")
    def go(request: t.Any) -> t.Any:
        response = django_redirect("/posts")
        response.set_cookie("theme", "dark")
        return response

    answer = submit(client(), go, {}, path="/posts")
    assert answer.status_code == 303 and answer.cookies["theme"].value == "dark"


def test_not_found_and_forbidden_roll_back_as_http404_does() -> None:
    """With ATOMIC_REQUESTS, an action ended by not_found() or forbidden() rolls back what it
    wrote, as one raising Http404; transaction.non_atomic_requests opts an action out."""
    from django.db import connection, transaction
    from posts.models import Post

    from actionkit import action, forbidden, not_found

    @action(id="test-django-create-then-not-found")
    def create_then_not_found(request: t.Any, title: str) -> None:
        Post.objects.create(title=title)
        not_found()

    @action(id="test-django-create-then-forbidden")
    def create_then_forbidden(request: t.Any, title: str) -> None:
        Post.objects.create(title=title)
        forbidden()

    @action(id="test-django-non-atomic")
    @transaction.non_atomic_requests
    def non_atomic(request: t.Any) -> bool:
        return transaction.get_autocommit()

    atomic = connection.settings_dict["ATOMIC_REQUESTS"]
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        assert call(client(), create_then_not_found, "rolled back 1").status_code == 404
        assert call(client(), create_then_forbidden, "rolled back 2").status_code == 403
        assert not Post.objects.filter(title__startswith="rolled back").exists()
        assert call(client(), non_atomic).json()["result"] is True
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = atomic


def test_the_error_page_shows_the_exception_the_action_raised() -> None:
    """Without JavaScript, Http404 and PermissionDenied raised in an action reach Django's
    error view with their message, as from a view."""
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    from actionkit import action

    @action(id="test-django-raise-404")
    def gone(request: t.Any) -> None:
        raise Http404("Post 7 was deleted.")

    @action(id="test-django-raise-403")
    def staff_only(request: t.Any) -> None:
        raise PermissionDenied("Only staff may clear posts.")

    import mysite.urls
    from django.http import HttpResponse
    from django.urls import clear_url_caches

    def handler(status: int) -> t.Any:
        return lambda request, exception: HttpResponse(f"[{exception}]", status=status)

    mysite.urls.handler404, mysite.urls.handler403 = handler(404), handler(403)  # type: ignore[attr-defined]
    clear_url_caches()
    try:
        assert submit(client(), gone).text == "[Post 7 was deleted.]"
        assert submit(client(), staff_only).text == "[Only staff may clear posts.]"
    finally:
        del mysite.urls.handler404, mysite.urls.handler403  # type: ignore[attr-defined]
        clear_url_caches()


def test_uncached_pages_are_the_views_own_responses() -> None:
    """A page that did not opt in reaches the client as the view's own response object, only
    marked BYPASS."""
    import mysite.urls
    from django.http import JsonResponse
    from django.urls import clear_url_caches, path

    mysite.urls.urlpatterns.append(path("api", lambda request: JsonResponse({"ok": True})))
    clear_url_caches()
    try:
        response = client().get("/api")
    finally:
        mysite.urls.urlpatterns.pop()
        clear_url_caches()
    assert isinstance(response, JsonResponse)
    assert response.json() == {"ok": True}
    assert response.headers["Actionkit-Cache"] == "BYPASS"


def test_crashing_action_is_500_with_a_digest_and_the_signal() -> None:
    """An action that raises is a 500 with a digest; Django's got_request_exception fires."""
    from django.core.signals import got_request_exception

    from actionkit import action

    @action(id="test-django-crash")
    def crash() -> None:
        raise ValueError("boom")

    seen: list[object] = []

    def receiver(sender: object, request: object, **kwargs: object) -> None:
        seen.append(request)

    got_request_exception.connect(receiver)
    try:
        response = call(client(raise_request_exception=False), crash)
    finally:
        got_request_exception.disconnect(receiver)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "action_failed"
    assert len(seen) == 1


def test_templates_never_call_actions() -> None:
    """{{ act.field }} renders the field, {{ act.button_attrs }} the attributes, and a
    zero-argument action is never run by the template language."""
    from django.template import engines

    from actionkit import action

    ran: list[bool] = []

    @action(id="test-django-reset")
    def reset() -> None:
        ran.append(True)

    template = engines["django"].from_string(
        "{{ reset.field }}|<button {{ reset.button_attrs }}>|{{ reset }}|{{ reset.id }}"
    )
    html = template.render({"reset": reset})
    assert '<input type="hidden" name="$ACTION_ID_test-django-reset" value="">' in html
    assert 'name="$ACTION_ID_test-django-reset" value="" formmethod="post"' in html
    assert html.endswith("|test-django-reset")
    assert not ran


def test_template_tags() -> None:
    """The tags of {% load actionkit %}: the script, fields and buttons with bound arguments,
    and a clear error for something that is not an action."""
    from django.template import TemplateSyntaxError, engines
    from posts import actions

    from actionkit.security import decrypt_args, resolve_key

    template = engines["django"].from_string(
        "{% load actionkit %}{% actionkit_script like %}"
        "<form>{% action_field rename 7 %}</form><button {% action_button rename 8 %}>"
    )
    html = template.render({"like": actions.increment_like, "rename": actions.rename_post})
    assert '<script src="/_actionkit/' in html
    assert f"increment_like&#34;:{{&#34;id&#34;:&#34;{actions.increment_like.id}" in html
    tokens = re.findall(r'name="\$ACTION_ID_[^"]+" value="([^"]+)"', html)
    key = resolve_key()
    assert [decrypt_args(actions.rename_post.id, tok, key) for tok in tokens] == [[7], [8]]
    bad = engines["django"].from_string("{% load actionkit %}{% action_field missing %}")
    with pytest.raises((TypeError, TemplateSyntaxError), match="takes an action"):
        bad.render({})


def test_jinja2_environment() -> None:
    """actionkit.django.jinja2.environment gives Django's Jinja2 backend the template
    globals."""
    from django.template.backends.jinja2 import Jinja2
    from posts import actions

    backend = Jinja2(
        {
            "NAME": "jinja2",
            "DIRS": [],
            "APP_DIRS": False,
            "OPTIONS": {"environment": "actionkit.django.jinja2.environment"},
        }
    )
    template = backend.from_string(
        "{{ actionkit_script() }}{% call action_form(act) %}<b>x</b>{% endcall %}"
    )
    html = template.render({"act": actions.create_post})
    assert "/_actionkit/" in html
    assert actions.create_post.field_name in html


def test_checks_report_a_misplaced_middleware_and_a_memory_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """manage.py check: the middleware missing or above AuthenticationMiddleware is an error; a
    MemoryStore with several gunicorn workers a warning."""
    from django.conf import settings
    from django.core.checks import run_checks

    def ids() -> set[str]:
        return {m.id for m in run_checks() if m.id and m.id.startswith("actionkit.")}

    assert ids() == set()
    middleware = list(settings.MIDDLEWARE)
    path = "actionkit.django.ActionKitMiddleware"
    monkeypatch.setattr(settings, "MIDDLEWARE", [m for m in middleware if m != path])
    assert ids() == {"actionkit.E001"}
    monkeypatch.setattr(settings, "MIDDLEWARE", [path, *middleware[:-1]])
    assert ids() == {"actionkit.E002"}
    monkeypatch.setattr(settings, "MIDDLEWARE", middleware)
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "-w 3 --bind 0.0.0.0:80")
    assert ids() == {"actionkit.W001"}


def test_checks_report_what_the_registry_check_finds(tmp_path: t.Any) -> None:
    """manage.py check reports a parameter that cannot be compiled (actionkit.E006), as python
    -m actionkit check does: it was dropped, and the action failed each request; and a store
    that cannot be reached as a warning (actionkit.W002), which stops no command."""
    from django.core.checks import WARNING, run_checks
    from django.test import override_settings

    from actionkit import Bound, Registry

    registry = Registry()

    def misplaced(*, post_id: Bound[int]) -> None: ...

    registry.register(misplaced, id="misplaced")
    with override_settings(ACTIONKIT={"CACHE": "memory", "REGISTRY": registry}):
        found = {m.id: m.msg for m in run_checks() if m.id and m.id.startswith("actionkit.")}
    # (Bound is imported here, not where the annotation is read: it cannot be resolved.)
    assert "cannot be resolved" in found["actionkit.E006"]
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with override_settings(ACTIONKIT={"CACHE": str(blocker / "cache.sqlite3")}):
        levels = {m.id: m.level for m in run_checks() if m.id and m.id.startswith("actionkit.")}
    assert levels == {"actionkit.W002": WARNING}


def test_management_command_lists_actions() -> None:
    """manage.py actionkit_actions lists the example's actions (and --json)."""
    from django.core.management import call_command
    from posts import actions

    out = io.StringIO()
    call_command("actionkit_actions", stdout=out)
    assert "create_post" in out.getvalue() and "posts.actions" in out.getvalue()
    out = io.StringIO()
    call_command("actionkit_actions", "--json", stdout=out)
    ids = {entry["id"] for entry in json.loads(out.getvalue())}
    assert actions.rename_post.id in ids


def test_settings_are_checked_and_the_key_is_derived(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown ACTIONKIT key is refused naming the valid ones; the key sealing bound
    arguments is derived from SECRET_KEY, never SECRET_KEY itself."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from actionkit.django import conf

    key = conf.options().secret_key
    assert isinstance(key, tuple) and settings.SECRET_KEY not in key and len(key[0]) == 64
    monkeypatch.setattr(settings, "ACTIONKIT", {"CACHES": "memory"})
    with pytest.raises(ImproperlyConfigured, match="valid: \\['CACHE'"):
        conf.options()


def test_the_per_site_cache_stores_a_page_that_opts_in() -> None:
    """Django's per-site cache (UpdateCacheMiddleware first, FetchFromCacheMiddleware last)
    pickles the response: a page that opted in to actionkit's cache is stored there too, where
    it was a 500 (the cache's closer cannot be pickled), and served from it."""
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import override_settings

    from actionkit import cache_tag

    renders: list[int] = []

    def counted(request: t.Any) -> HttpResponse:
        cache_tag("counted")
        renders.append(1)
        return HttpResponse(f"count={len(renders)}")

    middleware = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *settings.MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with (
        override_settings(MIDDLEWARE=middleware, CACHES=caches, CACHE_MIDDLEWARE_SECONDS=60),
        _route("counted", counted),
    ):
        first, second = client().get("/counted"), client().get("/counted")
    assert (first.status_code, first.text) == (200, "count=1")
    assert (second.status_code, second.text) == (200, "count=1") and renders == [1]


def test_a_login_guard_answering_307_is_a_303() -> None:
    """A LoginRequiredMiddleware of the project's own that answers 307: a 303 all the same. The
    browser would post the form to the login page, where the guard (which follows the action,
    not the page) answers 307 again, each time with a longer next, until it gives up."""
    from django.conf import settings
    from django.contrib.auth.middleware import LoginRequiredMiddleware
    from django.http import HttpResponse, HttpResponseRedirect
    from django.test import override_settings

    from actionkit import Registry

    class TemporaryRedirect(LoginRequiredMiddleware):  # type: ignore[misc]
        def handle_no_permission(self, request: t.Any, view_func: t.Any) -> t.Any:
            return HttpResponseRedirect(f"/login?next={request.path}", status=307)

    registry = Registry()

    @registry.action(id="wipe-307")
    def wipe() -> str:
        return "wiped"

    globals()["TemporaryRedirect"] = TemporaryRedirect
    middleware = [*settings.MIDDLEWARE, f"{__name__}.TemporaryRedirect"]
    options = {"CACHE": "memory", "REGISTRY": registry}
    try:
        with (
            override_settings(MIDDLEWARE=middleware, LOGIN_URL="/login", ACTIONKIT=options),
            _route("account", lambda request: HttpResponse("account")),
        ):
            refused = submit(client(), wipe, path="/account")
            assert (refused.status_code, refused["Location"]) == (303, "/login?next=/account")
    finally:
        del globals()["TemporaryRedirect"]


def test_login_required_middleware_guards_actions() -> None:
    """With Django's LoginRequiredMiddleware, an anonymous user's action is refused as a view
    of its own would be (the redirect to the login page, the page posted to as next; nothing
    runs), wherever it is posted: a page marked @login_not_required (the login page) is chosen
    by the client, so only an action marked so runs for everyone; signing in lets it run."""
    from django.conf import settings
    from django.contrib.auth.decorators import login_not_required
    from django.contrib.auth.models import User
    from django.http import HttpResponse
    from django.test import override_settings

    from actionkit import Registry

    ran: list[str] = []
    registry = Registry()

    @registry.action(id="wipe")
    def wipe() -> str:
        ran.append("wipe")
        return "wiped"

    @registry.action(id="subscribe")
    @login_not_required
    def subscribe() -> str:
        ran.append("subscribe")
        return "subscribed"

    def account(request: t.Any) -> HttpResponse:
        return HttpResponse("account")

    @login_not_required
    def login_page(request: t.Any) -> HttpResponse:
        return HttpResponse("log in")

    middleware = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    options = {"CACHE": "memory", "REGISTRY": registry}
    with (
        override_settings(MIDDLEWARE=middleware, LOGIN_URL="/login", ACTIONKIT=options),
        _route("account", account),
        _route("login", login_page),
    ):
        c = client()
        refused = submit(c, wipe, path="/account")
        assert refused.status_code == 303
        assert refused["Location"] == "/login?next=/account"
        for path in ("/account", "/login", "/nowhere"):
            answer = call(c, wipe, path=path).json()
            assert answer["redirect"]["url"] == f"/login?next={path}", path
        assert ran == []
        assert call(c, subscribe, path="/account").json()["result"] == "subscribed"
        c.force_login(User.objects.get_or_create(username="ada")[0])
        assert call(c, wipe, path="/account").json()["result"] == "wiped"
    assert ran == ["subscribe", "wipe"]


def test_the_test_client_follows_an_actions_redirect() -> None:
    """Django's test client follows the 303 of an action (follow=True) and assertRedirects
    reads it, as for a view's redirect."""
    from django.test import SimpleTestCase
    from posts import actions

    c = client()
    response = submit(c, actions.create_post, {"title": "Followed", "content": "x"})
    SimpleTestCase().assertRedirects(
        response, "/posts", status_code=303, fetch_redirect_response=False
    )
    fields = {actions.create_post.field_name: "", "title": "Twice", "content": "x"}
    followed = c.post("/posts", fields, headers={"Origin": ORIGIN}, follow=True)
    assert followed.status_code == 200 and followed.redirect_chain == [("/posts", 303)]
    assert "Twice" in followed.text


def test_a_script_call_that_only_adds_a_message_gets_the_page_showing_it() -> None:
    """A JSON call whose action adds a message, and changes nothing else, answers with the
    page showing it (as the page after a form does), and the message is shown once."""
    from django.contrib import messages
    from django.test import override_settings

    from actionkit import Registry

    registry = Registry()

    @registry.action(id="note")
    def note(request: t.Any) -> None:
        messages.success(request, "Saved your settings.")

    with override_settings(ACTIONKIT={"CACHE": "memory", "REGISTRY": registry}):
        c = client()
        c.get("/posts")
        answer = call(c, note).json()
        assert answer["html"] is not None and "Saved your settings." in answer["html"]
        assert "Saved your settings." not in c.get("/posts").text


def test_a_script_call_answers_with_the_page_only_when_its_action_changed_the_session() -> None:
    """The answer to a JSON call carries the page when the action changed the session (a value
    changed in place and marked modified too, Django's way for a list), not when a middleware
    above wrote it (a "last seen" time) or it is saved on every request."""
    from django.conf import settings
    from django.test import override_settings

    from actionkit import Registry

    registry = Registry()

    @registry.action(id="noop")
    def noop() -> int:
        return 1

    @registry.action(id="remember")
    def remember(request: t.Any) -> int:
        request.session["theme"] = "dark"
        return 2

    @registry.action(id="look")
    def look(request: t.Any) -> object:
        return request.session.get("theme")

    @registry.action(id="add")
    def add(request: t.Any) -> int:
        request.session["cart"].append("pear")
        request.session.modified = True
        return 3

    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index(_SESSIONS) + 1, "tests.django.helpers.TouchesSession")
    options = {"CACHE": "memory", "REGISTRY": registry}
    for extra in ({"MIDDLEWARE": middleware}, {"SESSION_SAVE_EVERY_REQUEST": True}):
        with override_settings(ACTIONKIT=options, **extra):
            c = client()
            c.get("/posts")
            assert call(c, noop).json()["html"] is None, extra
            assert call(c, look).json()["html"] is None, extra
            assert call(c, remember).json()["html"] is not None, extra
            session = c.session
            session["cart"] = ["apple"]
            session.save()
            assert call(c, add).json()["html"] is not None, extra
            assert c.session["cart"] == ["apple", "pear"]


_SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


_WITHOUT_AUTH = """
import json
import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path
from actionkit import action

@action(id="add")
def add(item: str) -> str:
    return item

urlpatterns = [path("cart", lambda request: HttpResponse("cart"))]
settings.configure(
    SECRET_KEY="x" * 50, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__, DATABASES={},
    INSTALLED_APPS=["django.contrib.sessions", "actionkit.django"],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "actionkit.django.ActionKitMiddleware",
    ],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    ACTIONKIT={"CACHE": "memory"},
)
django.setup()
from django.test import Client
c = Client(raise_request_exception=False, headers={"Origin": "http://testserver"})
called = c.post("/cart", json.dumps(["apple"]), content_type="application/json",
                headers={"Action-Id": "add"})
posted = c.post("/cart", {"$ACTION_ID_add": "", "item": "pear"})
print(called.status_code, called.json()["result"], posted.status_code)
"""


def test_a_project_without_django_contrib_auth_runs_actions() -> None:
    """A project whose INSTALLED_APPS has no django.contrib.auth runs actions (looking for
    LoginRequiredMiddleware imported the auth models, and every action was a 500)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_AUTH], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "apple", "200"]
