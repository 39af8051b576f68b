"""Any WSGI application keeps working unchanged under the middleware, and runs actions."""

from __future__ import annotations

import typing as t

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from actionkit import ActionMiddleware, Registry, redirect, revalidate_path
from actionkit.testing import ActionClient


def _registry() -> tuple[Registry, list[t.Any]]:
    registry = Registry()
    calls: list[t.Any] = []

    @registry.action(id="note")
    def note(form: MultiDict[str, str]) -> None:
        calls.append(form["text"])
        revalidate_path("/")
        redirect("/")

    @registry.action(id="double")
    def double(n: int) -> int:
        return n * 2

    return registry, calls


@Request.application
def werkzeug_app(request: Request) -> Response:
    if request.method == "POST":
        return Response(f"own form: {request.form['q']}", status=201)
    if request.path == "/boom":
        return Response("teapot", status=418)
    return Response("<!doctype html><title>home</title>", content_type="text/html")


def test_bare_werkzeug_app() -> None:
    """A plain Werkzeug app: its GETs, its own POST forms and its errors are unchanged."""
    registry, calls = _registry()
    client = ActionClient(ActionMiddleware(werkzeug_app, registry=registry, cache=False))
    assert client.get("/").text == "<!doctype html><title>home</title>"
    response = client.post("/", data={"q": "mine"})
    assert (response.status_code, response.text) == (201, "own form: mine")
    assert client.get("/boom").status_code == 418
    assert client.submit(registry["note"], {"text": "hi"}).headers["Location"] == "/"
    assert client.call(registry["double"], 21).json["result"] == 42
    assert calls == ["hi"]


@pytest.fixture(scope="module")
def django_app() -> t.Any:
    """A minimal Django project's WSGI application, configured in-process."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="django-test",
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["localhost", "testserver"],
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
            INSTALLED_APPS=[],
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def _django_home(request: t.Any) -> t.Any:
    from django.http import HttpResponse

    if request.method == "POST":
        return HttpResponse(f"django form: {request.POST.get('q')}")
    return HttpResponse("<!doctype html><title>django</title>")


def __getattr__(name: str) -> t.Any:
    # Django reads ROOT_URLCONF's urlpatterns after settings are configured.
    if name == "urlpatterns":
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt

        return [path("", csrf_exempt(_django_home)), path("page", csrf_exempt(_django_home))]
    raise AttributeError(name)


def test_django_app(django_app: t.Any) -> None:
    """A Django WSGI app wrapped by the middleware keeps its views and runs actions, whose
    answers render the Django page."""
    registry, calls = _registry()
    client = ActionClient(ActionMiddleware(django_app, registry=registry, cache=False))
    assert client.get("/page").text == "<!doctype html><title>django</title>"
    assert client.get("/missing").status_code == 404
    assert client.post("/page", data={"q": "own"}).text == "django form: own"
    answer = client.submit(registry["note"], {"text": "dj"}, path="/page", js=True).json
    assert answer["redirect"]["url"] == "/"
    assert answer["html"] == "<!doctype html><title>django</title>"
    assert client.call(registry["double"], 4, path="/page").json["result"] == 8
    assert calls == ["dj"]
