"""A plain WSGI application made by a factory, wrapped by ActionMiddleware and then by another
middleware, as ``gunicorn 'tests.cli_apps.factory_app:create_app()'`` would load it."""

from __future__ import annotations

import typing as t

from actionkit import ActionMiddleware, Registry

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

registry = Registry()


@registry.action
def subscribe(form: t.Any) -> str:
    return "ok"


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Logging:
    """Another middleware on top: the command line follows its ``app`` attribute."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Any:
        return self.app(environ, start_response)


def create_app(debug: bool = False) -> Logging:
    return Logging(ActionMiddleware(hello, registry=registry, cache=False, debug=debug))


nothing = None


def create_app_without_settings() -> t.Any:
    """A factory that fails as one missing its configuration does."""
    raise KeyError("DATABASE_URL")
