"""Cross-site requests against the example project, CsrfViewMiddleware enforcing: every
cross-site action request is refused and runs nothing; every same-origin one runs without a
CSRF token.

The matrix: where the request says it comes from (``Origin``, ``Referer``, ``Sec-Fetch-Site``)
× how it names the action (a form field in an urlencoded or a multipart body, the
``Action-Id`` header with an urlencoded body or with a JSON body).
"""

from __future__ import annotations

import json
import typing as t
from urllib.parse import urlencode

import pytest
from django.test.client import MULTIPART_CONTENT

from .helpers import client, new_post

pytestmark = pytest.mark.usefixtures("project")

SAME = [
    pytest.param({"Origin": "http://testserver"}, id="origin"),
    pytest.param({"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}, id="fetch"),
    pytest.param({"Referer": "http://testserver/posts"}, id="referer-only"),
    pytest.param({"Sec-Fetch-Site": "same-origin"}, id="fetch-only"),
    pytest.param({}, id="no-browser"),
]
CROSS = [
    pytest.param({"Origin": "https://evil.example"}, id="origin"),
    pytest.param({"Origin": "http://testserver.evil.example"}, id="origin-suffix"),
    pytest.param({"Origin": "http://testserver:8080"}, id="origin-port"),
    pytest.param({"Origin": "null"}, id="origin-null"),
    pytest.param({"Referer": "https://evil.example/page"}, id="referer-only"),
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="fetch-only"),
    pytest.param({"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"}, id="fetch"),
    pytest.param(
        {"Origin": "https://evil.example", "Referer": "http://testserver/posts"}, id="mixed"
    ),
]
KINDS = ["urlencoded-field", "multipart-field", "urlencoded-header", "json-header"]


def _post(kind: str, post_id: int, headers: dict[str, str]) -> t.Any:
    """Like post ``post_id`` as ``kind`` says, with no CSRF token and no cookie."""
    from posts import actions

    like = actions.increment_like
    c = client()
    if kind.endswith("-field"):
        bound = like.bind(post_id)
        fields = {bound.field_name: bound.token, "note": "x"}
    else:
        headers = {**headers, "Action-Id": like.id}
        fields = {"post_id": str(post_id)}
    if kind.startswith("urlencoded"):
        body: t.Any = urlencode(fields)
        content_type = "application/x-www-form-urlencoded"
    elif kind.startswith("multipart"):
        body, content_type = fields, MULTIPART_CONTENT  # the client encodes it
    else:
        body, content_type = json.dumps([post_id]), "application/json"
    return c.post("/posts", body, content_type=content_type, headers=headers)


def _likes(post_id: int) -> int:
    from posts.models import Post

    return int(Post.objects.values_list("likes", flat=True).get(pk=post_id))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("headers", CROSS)
def test_cross_site_action_is_refused_and_runs_nothing(kind: str, headers: dict[str, str]) -> None:
    """A cross-site action request gets 403 from actionkit's origin check; the action did not
    run."""
    post = new_post()
    response = _post(kind, post.pk, headers)
    assert response.status_code == 403
    if kind.endswith("-header"):
        assert response.json()["error"]["code"] == "cross_origin"
    else:
        assert "another site" in response.text
    assert _likes(post.pk) == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("headers", SAME)
def test_same_origin_action_runs_without_a_csrf_token(kind: str, headers: dict[str, str]) -> None:
    """A same-origin action request (or a program's, with neither Origin nor Referer) runs
    although it carries no CSRF token and CsrfViewMiddleware enforces its checks."""
    post = new_post()
    response = _post(kind, post.pk, headers)
    assert response.status_code == 200, response.content[:300]
    assert _likes(post.pk) == 1


@pytest.mark.parametrize("headers", [*SAME, *CROSS])
def test_a_post_that_is_no_action_still_needs_its_token(headers: dict[str, str]) -> None:
    """A form POST that names no action meets CsrfViewMiddleware as before: without a token
    it is refused whatever its origin."""
    response = client().post("/feedback", {"message": "hi"}, headers=headers)
    assert response.status_code == 403
    assert "CSRF" in response.text


@pytest.mark.parametrize(
    ("origin", "runs"),
    [
        pytest.param("https://shop.example.com", True, id="https-subdomain"),
        pytest.param("http://shop.example.com", False, id="http-subdomain"),
        pytest.param("https://example.com.evil", False, id="another-site"),
    ],
)
def test_trusted_origins_are_read_as_django_reads_them(origin: str, runs: bool) -> None:
    """CSRF_TRUSTED_ORIGINS = ["https://*.example.com"] lets the subdomains' https pages run
    actions, not their plain http ones (anyone on the network can rewrite those), as Django's
    own check reads it; the scheme was dropped, and both ran."""
    from django.test import override_settings

    post = new_post()
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://*.example.com"]):
        response = _post("urlencoded-field", post.pk, {"Origin": origin})
    assert (response.status_code, _likes(post.pk)) == ((200, 1) if runs else (403, 0))
