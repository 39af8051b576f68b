"""Shared by the Django tests: the example's posts and requests as browsers make them."""

from __future__ import annotations

import json
import typing as t

ORIGIN = "http://testserver"


def client(**options: t.Any) -> t.Any:
    """Django's test client with CSRF checks enforced, as a real browser meets them."""
    from django.test import Client

    return Client(enforce_csrf_checks=True, **options)


def new_post(title: str = "A post") -> t.Any:
    """A post made as a job would make it: outside a request, revalidating the list."""
    from posts.models import Post

    from actionkit import revalidate_path

    post = Post.objects.create(title=title)
    revalidate_path("/posts")
    return post


def call(c: t.Any, act: t.Any, *args: t.Any, path: str = "/posts", **headers: str) -> t.Any:
    """A JSON call of ``act`` as the client script makes it (a bound action's token in the
    ``Action-Bound`` header)."""
    token = {"Action-Bound": act.token} if getattr(act, "token", "") else {}
    return c.post(
        path,
        json.dumps(list(args)),
        content_type="application/json",
        headers={"Action-Id": act.id, "Origin": ORIGIN, **token, **headers},
    )


def submit(
    c: t.Any, act: t.Any, data: dict[str, t.Any] | None = None, *, path: str = "/posts", **h: t.Any
) -> t.Any:
    """A form posted without JavaScript (multipart, as the test client posts forms)."""
    return c.post(
        path, {act.field_name: act.token, **(data or {})}, headers={"Origin": ORIGIN, **h}
    )


class ReadsPost:
    """A middleware that reads ``request.POST`` (an audit log), for tests that put it above
    ActionKitMiddleware."""

    def __init__(self, get_response: t.Any) -> None:
        self.get_response = get_response

    def __call__(self, request: t.Any) -> t.Any:
        request.POST  # noqa: B018  # read for its effect
        return self.get_response(request)


class RecordsPath:
    """A middleware that records ``request.META["PATH_INFO"]`` on the way out (a log line),
    for tests that put it above ActionKitMiddleware."""

    seen: t.ClassVar[list[str]] = []

    def __init__(self, get_response: t.Any) -> None:
        self.get_response = get_response

    def __call__(self, request: t.Any) -> t.Any:
        response = self.get_response(request)
        RecordsPath.seen.append(request.META["PATH_INFO"])
        return response


class TouchesSession:
    """A middleware that writes the session on every request (a "last seen" time), for tests
    that put it above ActionKitMiddleware."""

    def __init__(self, get_response: t.Any) -> None:
        self.get_response = get_response

    def __call__(self, request: t.Any) -> t.Any:
        request.session["seen"] = request.session.get("seen", 0) + 1
        return self.get_response(request)
