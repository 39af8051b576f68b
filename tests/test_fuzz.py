"""Malformed action requests, generated: each is answered with a 4xx, runs nothing, and never
lets an exception escape.

`make test` tries a few thousand requests; `make fuzz` (``HYPOTHESIS_PROFILE=fuzz``) tries far
more. Requests are random bytes under every content type, and mutations of valid ones: fields
and parts renamed, dropped or repeated, tokens and IDs changed, bodies cut short, lengths that
lie, JSON of any shape and depth.
"""

from __future__ import annotations

import io
import json
import os
import typing as t

from annotated_types import Ge, MaxLen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from actionkit import ActionMiddleware, Bound, Registry, security

from .conftest import SECRET

settings.register_profile(
    "default", max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=50_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

BODY_LIMIT = 4096
OK_STATUSES = {200, 303}
REFUSALS = {400, 403, 404, 413, 422}

ran: list[str] = []
registry = Registry()


@registry.action(id="like")
def like(post_id: t.Annotated[int, Ge(0)]) -> int:
    ran.append("like")
    return post_id + 1


@registry.action(id="create")
def create(title: t.Annotated[str, MaxLen(50)], tags: list[str] | None = None) -> str:
    ran.append("create")
    return title


@registry.action(id="raw")
def raw(form: t.Any) -> int:
    ran.append("raw")
    return len(form)


@registry.action(id="delete")
def delete(post_id: Bound[int]) -> None:
    ran.append("delete")


@registry.action(id="nothing")
def nothing() -> None:
    ran.append("nothing")


def page(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>page</title>"]


APP = ActionMiddleware(
    page, registry=registry, cache=False, body_limit=BODY_LIMIT, secret_key=SECRET
)
IDS = ["like", "create", "raw", "delete", "nothing"]
TOKEN = security.encrypt_args("delete", (7,), SECRET)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
field_names = st.sampled_from(["title", "tags", "post_id", "x", ""]) | st.text(max_size=12)
action_fields = st.sampled_from(IDS + ["", "nope", "like\x00"]).map(lambda i: "$ACTION_ID_" + i)
tokens = st.sampled_from(["", TOKEN, TOKEN[:-1], TOKEN + "A", TOKEN.upper()]) | st.text(max_size=40)


@st.composite
def form_fields(draw: st.DrawFn) -> list[tuple[str, str]]:
    fields = draw(st.lists(st.tuples(field_names, st.text(max_size=60)), max_size=6))
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(fields)))
        fields.insert(position, (draw(action_fields), draw(tokens)))
    return fields


@st.composite
def multipart(draw: st.DrawFn, fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = draw(st.sampled_from(["b0undary", "x", "----WebKitFormBoundary7MA4"]))
    parts = []
    for name, value in fields:
        disposition = draw(
            st.sampled_from(
                [
                    f'form-data; name="{name}"',
                    f'form-data; name="{name}"; filename="f.txt"',
                    "form-data",
                    f"form-data; name={name}",
                ]
            )
        )
        parts.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n".encode(
                "utf-8", "surrogatepass"
            )
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=20))
    content_type = f"multipart/form-data; boundary={draw(st.sampled_from([boundary, 'other']))}"
    return body, content_type


@st.composite
def requests(draw: st.DrawFn) -> dict[str, t.Any]:
    client = draw(st.booleans())
    kind = draw(st.sampled_from(["json", "urlencoded", "multipart", "junk"]))
    headers: dict[str, str] = {}
    if client:
        headers["Action-Id"] = draw(st.sampled_from(IDS) | st.text(max_size=10))
    if kind == "json":
        value = draw(st.lists(json_values, max_size=4) | json_values)
        text = json.dumps(value, allow_nan=True)
        depth = draw(st.integers(0, 3))
        if depth == 3:
            text = "[" * draw(st.integers(500, 5000)) + text
        body = text.encode()
        if draw(st.booleans()):
            body = body[: draw(st.integers(0, len(body)))]
        content_type = "application/json"
    elif kind == "urlencoded":
        from urllib.parse import urlencode

        body = urlencode(draw(form_fields())).encode()
        content_type = "application/x-www-form-urlencoded"
    elif kind == "multipart":
        body, content_type = draw(multipart(draw(form_fields())))
    else:
        body = draw(st.binary(max_size=300))
        content_type = draw(
            st.sampled_from(
                ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
            )
        )
        if draw(st.booleans()):
            body = b"$ACTION_ID_like=&" + body
    if draw(st.booleans()):
        body += b"x" * draw(st.sampled_from([0, BODY_LIMIT]))
    if draw(st.booleans()):
        headers["Action-Bound"] = draw(tokens)
    if draw(st.booleans()):
        headers["Action-Page"] = draw(st.sampled_from(["/", "/posts?x=1", "//evil"]) | st.text())
    if draw(st.booleans()):
        headers["Origin"] = draw(st.sampled_from(["http://localhost", "https://evil.example"]))
    length = draw(st.sampled_from([None, "short", "long"]))
    return {"body": body, "content_type": content_type, "headers": headers, "length": length}


def _send(request: dict[str, t.Any]) -> int:
    headers = {
        k: v.encode("utf-8", "surrogatepass").decode("latin-1")
        for k, v in request["headers"].items()
    }
    environ = EnvironBuilder(
        "/posts", method="POST", content_type=request["content_type"] or None
    ).get_environ()
    # Set by hand: a server passes on header values a client library would refuse to send.
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    body = request["body"]
    environ["wsgi.input"] = io.BytesIO(body)
    length = {None: len(body), "short": max(len(body) - 3, 0), "long": len(body) + 50}
    environ["CONTENT_LENGTH"] = str(length[request["length"]])
    if not request["content_type"]:
        environ.pop("CONTENT_TYPE", None)
    statuses: list[str] = []
    answer = APP(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        b"".join(answer)
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()
    return int(statuses[-1].split()[0])


@given(requests())
def test_malformed_action_requests_are_refused_and_run_nothing(request: dict[str, t.Any]) -> None:
    """Whatever the request, no exception escapes and no answer is a 5xx; a refusal (4xx) ran
    no action."""
    before = len(ran)
    status = _send(request)
    assert status in OK_STATUSES | REFUSALS, status
    if status >= 400:
        assert len(ran) == before, (status, ran[before:])


@given(st.binary(max_size=2000), st.sampled_from(IDS), st.booleans())
def test_random_bytes_are_refused(body: bytes, action_id: str, client: bool) -> None:
    """Random bytes as a JSON call or a form naming an action: a 4xx (or a valid call that
    happened to be well formed), never an exception."""
    headers = {"Action-Id": action_id} if client else {}
    content_type = "application/json" if client else "application/x-www-form-urlencoded"
    if not client:
        body = f"$ACTION_ID_{action_id}=&".encode() + body
    before = len(ran)
    status = _send({"body": body, "content_type": content_type, "headers": headers, "length": None})
    assert status in OK_STATUSES | REFUSALS, status
    if status >= 400:
        assert len(ran) == before
