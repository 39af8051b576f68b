"""Typed actions: where a request's values go, converted and validated (actionkit/params.py)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import io
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from annotated_types import Ge, MaxLen, MinLen
from flask import Flask
from flask import request as flask_request
from pydantic import AfterValidator, BaseModel, Field
from typing_extensions import TypedDict
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.wrappers import Request

from actionkit import (
    ActionMiddleware,
    Bound,
    Registry,
    action_state,
    fail,
    redirect,
)
from actionkit.flask import ActionKit
from actionkit.params import Parameters
from actionkit.testing import ActionClient

ROOT = Path(__file__).resolve().parent.parent
Title = t.Annotated[str, MinLen(1), MaxLen(20)]


class Post(BaseModel):
    title: Title
    tags: list[str] = []
    published: bool = True


@dataclasses.dataclass
class Comment:
    text: str
    stars: int = 3


class Search(TypedDict):
    q: str
    page: int


def no_shouting(value: str) -> str:
    if value.isupper():
        raise ValueError("No shouting, please.")
    return value


def _page(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
    """A page showing the outcome of the action submitted to it."""
    state = action_state()
    parts = ["<!doctype html><title>page</title>"]
    if state:
        for name in ("title", "n", "q", "post_id"):
            parts.append(f"<p>{name}={state.value(name)!r} error={state.error(name)!r}</p>")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return ["".join(parts).encode()]


def _app(registry: Registry, **options: t.Any) -> ActionClient:
    options.setdefault("cache", False)
    return ActionClient(ActionMiddleware(_page, registry=registry, **options))


@pytest.fixture
def seen() -> list[t.Any]:
    return []


# -- form submissions ----------------------------------------------------------------------------


def test_form_fields_fill_parameters_by_name(seen: list[t.Any]) -> None:
    """A form fills each parameter from the field of its name: text, a list from every value,
    an int converted, a checkbox's presence, an upload, and defaults for missing fields."""
    registry = Registry()

    @registry.action
    def create(
        title: str,
        count: int,
        tags: list[str],
        published: bool,
        photo: FileStorage | None = None,
        note: str = "none",
        draft: bool = False,
    ) -> None:
        seen.append((title, count, tags, published, photo and photo.read(), note, draft))

    client = _app(registry)
    data = {
        "title": "Hello",
        "count": "3",
        "tags": ["a", "b"],
        "published": "on",
        "photo": (io.BytesIO(b"jpeg"), "p.jpg"),
    }
    assert client.submit(create, data).status_code == 200
    assert seen[-1] == ("Hello", 3, ["a", "b"], True, b"jpeg", "none", False)
    assert client.submit(create, {"title": "x", "count": "1"}, js=True).status_code == 200
    assert seen[-1] == ("x", 1, [], False, None, "none", False)


def test_empty_field_is_missing_for_a_non_text_parameter(seen: list[t.Any]) -> None:
    """An empty number input or an empty upload counts as missing: the default applies, and a
    required one is a field error; an empty text field is the empty string."""
    registry = Registry()

    @registry.action
    def save(note: str, n: int | None = None, photo: FileStorage | None = None) -> None:
        seen.append((note, n, photo))

    client = _app(registry)
    empty_file = (io.BytesIO(b""), "")
    data = {"note": "", "n": "", "photo": empty_file}
    assert client.submit(save, data, content_type="multipart/form-data").status_code == 200
    assert seen == [("", None, None)]


def test_empty_values_of_a_collection_of_numbers_are_missing(seen: list[t.Any]) -> None:
    """Among repeated inputs of numbers, the empty ones are left out (an empty input is
    missing, alone or among others); a collection that takes the empty text (text, a fixed
    tuple's positions, choices with "") keeps them."""
    registry = Registry()

    @registry.action
    def save(
        ids: list[int] = [],  # noqa: B006
        notes: list[str] = [],  # noqa: B006
        pair: tuple[int, str] = (0, ""),
        marks: list[t.Literal["", "x"]] = [],  # noqa: B006
    ) -> None:
        seen.append((ids, notes, pair, marks))

    client = _app(registry)
    data = {"ids": ["1", "", "3"], "notes": ["a", ""], "pair": ["1", ""], "marks": ["", "x"]}
    assert client.submit(save, data).status_code == 200
    assert client.submit(save, {"ids": "", "notes": ""}).status_code == 200
    assert seen == [([1, 3], ["a", ""], (1, ""), ["", "x"]), ([], [""], (0, ""), [])]


def test_an_empty_field_is_none_for_an_optional_parameter_without_default(
    seen: list[t.Any],
) -> None:
    """An empty field is the only "no value" a form can send: an Optional parameter without a
    default gets None from it, as from JSON null; a missing field is still required."""
    registry = Registry()

    @registry.action
    def limit(n: int | None) -> None:
        seen.append(n)

    client = _app(registry)
    assert client.submit(limit, {"n": ""}).status_code == 200
    assert client.submit(limit, {"n": "5"}).status_code == 200
    assert client.call(limit, None).status_code == 200
    assert seen == [None, 5, None]
    assert client.submit(limit, {}, js=True).json["result"]["errors"] == {"n": "Field required"}


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e309", "-1e309", "Infinity"])
def test_a_float_is_a_finite_number(text: str, seen: list[t.Any]) -> None:
    """A float parameter refuses NaN and the infinities (a form's text, or a JSON number too
    large for a float): a field error, never a value the answer's JSON could not hold."""
    registry = Registry()

    @registry.action
    def price(x: float) -> float:
        seen.append(x)
        return x

    client = _app(registry)
    answer = client.submit(price, {"x": text}, js=True)
    assert answer.status_code == 422
    assert answer.json["result"]["errors"] == {"x": "Input should be a finite number"}
    if text.lstrip("-")[0].isdigit():
        called = client.post(
            "/",
            data=f"[{text}]",
            content_type="application/json",
            headers={"Action-Id": price.id},
        )
        assert called.status_code == 400 and "too large" in called.json["error"]["message"]
    assert seen == []


def test_binding_a_value_json_cannot_hold_is_a_value_error() -> None:
    """bind() of bytes that are not UTF-8 to a Bound[bytes] parameter raises the documented
    ValueError naming the parameter."""
    registry = Registry()

    @registry.action
    def store(blob: Bound[bytes]) -> None: ...

    with pytest.raises(ValueError, match="Bound parameter 'blob' of"):
        store.bind(b"\xff\x00")


def test_bind_refuses_arguments_no_request_could_use(seen: list[t.Any]) -> None:
    """bind() with more values than the action binds (without ``*args``) raises when the page
    renders, naming the parameters (a page rendered so was refused on every request); with
    fewer than reach the last Bound parameter (``bind()`` may be chained), the request is
    refused saying which parameters in order, and how many it carries."""
    registry = Registry()

    @registry.action
    def rename(title: str, post_id: Bound[int]) -> None: ...

    @registry.action
    def like(post_id: int) -> None: ...

    @registry.action
    def tag(post_id: Bound[int], *tags: str) -> None:
        seen.append((post_id, tags))

    with pytest.raises(ValueError, match=r"got 2 arguments for .*at most 1 \(post_id\)"):
        like.bind(7, 8)
    with pytest.raises(ValueError, match=r"got 3 arguments for .*at most 2 \(title, post_id\)"):
        rename.bind("New").bind(7, 8)
    assert like.bind(7) and like.bind()
    client = _app(registry)
    answer = client.call(rename.bind(7), "x")
    assert answer.status_code == 400
    assert "'title', 'post_id' from bind(), in order; this request carries 1" in answer.text
    assert client.call(rename.bind("New").bind(7)).status_code == 200
    client.submit(tag.bind(7, "a", "b"), {})
    assert seen == [(7, ("a", "b", MultiDict()))]  # the form last, as fn(*bound_args, form)


def test_model_parameter_receives_the_whole_form(seen: list[t.Any]) -> None:
    """A parameter annotated with a pydantic model, a dataclass or a TypedDict receives the
    whole form validated into it; its errors are keyed by field."""
    registry = Registry()

    @registry.action
    def post(data: Post) -> None:
        seen.append(data)

    @registry.action
    def comment(data: Comment) -> None:
        seen.append(data)

    @registry.action
    def search(data: Search) -> None:
        seen.append(data)

    client = _app(registry)
    client.submit(post, {"title": "Hi", "tags": ["x"]})
    assert seen[-1] == Post(title="Hi", tags=["x"], published=False)
    client.submit(comment, {"text": "nice"})
    assert seen[-1] == Comment("nice", 3)
    client.submit(search, {"q": "wsgi", "page": "2"})
    assert seen[-1] == {"q": "wsgi", "page": 2}
    answer = client.submit(post, {"title": ""}, js=True)
    assert answer.status_code == 422
    assert answer.json["result"] == {"errors": {"title": "String should have at least 1 character"}}
    assert len(seen) == 3


class _Size(enum.Enum):
    SMALL = 1
    LARGE = 2


class Order(BaseModel):
    stars: t.Literal[1, 2, 3]
    size: _Size = _Size.SMALL
    extras: list[_Size] = []
    note: t.Literal[1, 2] | None = None


@dataclasses.dataclass
class Rating:
    stars: t.Literal[1, 2, 3]


class Pick(TypedDict):
    size: _Size


def test_model_fields_of_number_choices_take_the_text_a_form_sends(seen: list[t.Any]) -> None:
    """A model's Literal or Enum field of numbers takes the text of one of its values, as a
    form sends it (a <select> of star ratings), alone, in a list or Optional; other text is
    still the model's error."""
    registry = Registry()

    @registry.action
    def order(data: Order) -> None:
        seen.append(data)

    @registry.action
    def rate(data: Rating) -> None:
        seen.append(data)

    @registry.action
    def pick(data: Pick) -> None:
        seen.append(data)

    client = _app(registry)
    fields = {"stars": "3", "size": "2", "extras": ["1", "2"], "note": "1"}
    assert client.submit(order, fields).status_code == 200
    assert seen[-1] == Order(stars=3, size=_Size.LARGE, extras=[_Size.SMALL, _Size.LARGE], note=1)
    assert client.submit(rate, {"stars": "2"}).status_code == 200
    assert seen[-1] == Rating(2)
    assert client.submit(pick, {"size": "1"}).status_code == 200
    assert seen[-1] == {"size": _Size.SMALL}
    answer = client.submit(order, {"stars": "9"}, js=True)
    assert answer.status_code == 422
    assert set(answer.json["result"]["errors"]) == {"stars"}
    assert len(seen) == 3


@pytest.mark.parametrize(
    "annotation",
    [
        pytest.param(None, id="unannotated"),
        pytest.param(t.Any, id="Any"),
        pytest.param(MultiDict, id="MultiDict"),
        pytest.param(MultiDict[str, t.Any], id="MultiDict[str, Any]"),
        pytest.param(MultiDict[str, str] | None, id="MultiDict | None"),
        pytest.param(dict, id="form: dict"),
        pytest.param(dict[str, str], id="form: dict[str, str]"),
        pytest.param(t.Mapping[str, str], id="form: Mapping[str, str]"),
    ],
)
def test_raw_form_parameter(annotation: t.Any, seen: list[t.Any]) -> None:
    """A parameter named form without annotation (or Any, or a mapping type: ``dict``,
    ``Mapping[str, str]``), or annotated MultiDict, receives the raw form, as every action did
    before (annotated dict, it was read as a field named "form": every submission failed)."""
    registry = Registry()

    def record(post_id, form):  # type: ignore[no-untyped-def]
        seen.append((post_id, form))

    if annotation is not None:
        record.__annotations__ = {"post_id": int, "form": annotation}
    act = registry.register(record)
    _app(registry).submit(act.bind(7), [("a", "1"), ("a", "2")])
    post_id, form = seen[-1]
    assert post_id == 7 and isinstance(form, MultiDict) and form.getlist("a") == ["1", "2"]


def test_action_without_parameters_behind_a_button(seen: list[t.Any]) -> None:
    """An action taking nothing runs from a form (it is not handed the form)."""
    registry = Registry()

    @registry.action
    def ping() -> str:
        seen.append("ping")
        return "pong"

    client = _app(registry)
    assert client.submit(ping, {"stray": "field"}).status_code == 200
    assert client.submit(ping, js=True).json["result"] == "pong"
    assert seen == ["ping", "ping"]


def test_unannotated_parameters_are_strings_by_name(seen: list[t.Any]) -> None:
    """Unannotated parameters other than form are the fields of their name, as text; a missing
    one is a field error."""
    registry = Registry()

    @registry.action
    def greet(name, greeting="Hello"):  # type: ignore[no-untyped-def]
        seen.append((name, greeting))

    client = _app(registry)
    client.submit(greet, {"name": "Ada"})
    assert seen == [("Ada", "Hello")]
    answer = client.submit(greet, {}, js=True)
    assert answer.status_code == 422
    assert answer.json["result"] == {"errors": {"name": "Field required"}}


def test_an_upload_is_no_text_for_an_unannotated_parameter(seen: list[t.Any]) -> None:
    """A file part named like an unannotated parameter is not its text: a field error without a
    default, the default with one; the action never gets a FileStorage it takes for text."""
    registry = Registry()

    @registry.action
    def greet(name, greeting="Hello"):  # type: ignore[no-untyped-def]
        seen.append((name, greeting))

    client = _app(registry)
    upload = {"name": (io.BytesIO(b"x"), "name.txt"), "greeting": (io.BytesIO(b"y"), "g.txt")}
    answer = client.submit(greet, upload, js=True)
    assert answer.status_code == 422
    assert answer.json["result"] == {"errors": {"name": "Field required"}}
    upload = {"name": "Ada", "greeting": (io.BytesIO(b"y"), "g.txt")}
    assert client.submit(greet, upload, js=True).status_code == 200
    assert seen == [("Ada", "Hello")]


class _Status(enum.Enum):
    ANY = ""
    OPEN = "open"


def test_an_empty_choice_is_a_value_of_a_type_that_has_it(seen: list[t.Any]) -> None:
    """The "Any" option of a <select> (``value=""``) is chosen, not missing, where the type has
    the empty text among its values (Literal, Enum): neither refused nor replaced by the
    default."""
    registry = Registry()

    @registry.action
    def search(
        status: t.Literal["", "open", "closed"],
        kind: t.Literal["", "post", "page"] = "post",
        state: _Status = _Status.OPEN,
        year: int | None = 2024,
    ) -> None:
        seen.append((status, kind, state, year))

    client = _app(registry)
    answer = client.submit(search, {"status": "", "kind": "", "state": "", "year": ""})
    assert answer.status_code == 200
    assert seen == [("", "", _Status.ANY, 2024)]


def test_a_checkbox_with_a_value_of_its_own_is_ticked(seen: list[t.Any]) -> None:
    """A bool is true for a ticked checkbox whatever its ``value`` (``value="subscribe"``),
    false for a word for no; ``Optional[bool]`` is ``None`` for an empty choice."""
    registry = Registry()

    @registry.action
    def settings(newsletter: bool, published: bool | None = None) -> None:
        seen.append((newsletter, published))

    client = _app(registry)
    for data in (
        {"newsletter": "subscribe", "published": ""},
        {"newsletter": "off", "published": "true"},
        {"published": "no"},
    ):
        assert client.submit(settings, data).status_code == 200
    assert seen == [(True, None), (False, True), (False, False)]


@dataclasses.dataclass
class _Price:
    amount: float


class _Amount(TypedDict):
    amount: float


@dataclasses.dataclass
class _Upload:
    title: str
    photo: FileStorage


def test_a_dataclass_or_typeddict_has_the_configuration_of_parameters(
    seen: list[t.Any],
) -> None:
    """A dataclass or ``TypedDict`` without a configuration of its own is validated as plain
    parameters are: NaN refused, a ``FileStorage`` field taken (pydantic would refuse the
    type, which failed every request)."""
    registry = Registry()

    @registry.action
    def price(p: _Price, a: _Amount) -> None:
        seen.append((p, a))

    @registry.action
    def upload(u: _Upload) -> None:
        seen.append((u.title, u.photo.read()))

    client = _app(registry)
    answer = client.submit(price, {"amount": "nan"}, js=True)
    assert answer.status_code == 422
    assert answer.json["result"]["errors"] == {"amount": "Input should be a finite number"}
    answer = client.call(price, {"amount": 1.5}, {"amount": float("nan")})
    assert answer.status_code in (400, 422) and seen == []
    assert client.submit(price, {"amount": "2.5"}, js=True).status_code == 200
    data = {"title": "Hi", "photo": (io.BytesIO(b"jpeg"), "p.jpg")}
    assert client.submit(upload, data, js=True).status_code == 200
    assert seen == [(_Price(2.5), {"amount": 2.5}), ("Hi", b"jpeg")]


class _Filters(BaseModel):
    author: str
    year: int


def test_a_model_left_out_of_the_form_takes_its_default(seen: list[t.Any]) -> None:
    """A model parameter with a default takes it when the form has none of the model's fields,
    as a JSON call without it does; without a default, each missing field is a field error."""
    registry = Registry()

    @registry.action
    def search(q: str, filters: _Filters | None = None) -> None:
        seen.append((q, filters))

    @registry.action
    def strict(filters: _Filters) -> None:
        seen.append(filters)

    client = _app(registry)
    assert client.submit(search, {"q": "python"}).status_code == 200
    assert client.submit(search, {"q": "py", "author": "x", "year": "2020"}).status_code == 200
    answer = client.submit(search, {"q": "py", "author": "x"}, js=True)
    assert answer.json["result"]["errors"] == {"year": "Field required"}
    answer = client.submit(strict, {}, js=True)
    assert answer.json["result"]["errors"] == {"author": "Field required", "year": "Field required"}
    assert seen == [("python", None), ("py", _Filters(author="x", year=2020))]


def test_var_positional_receives_the_form_when_nothing_else_does(seen: list[t.Any]) -> None:
    """``fn(*args)`` is called with the bound arguments and the form, as before."""
    registry = Registry()

    @registry.action
    def record(*args: t.Any) -> None:
        seen.append(args)

    _app(registry).submit(record.bind(1, 2), {"a": "1"})
    assert seen[-1][:2] == (1, 2) and seen[-1][2]["a"] == "1"


# -- validation failures -------------------------------------------------------------------------


def test_invalid_form_rerenders_with_422_errors_and_values(seen: list[t.Any]) -> None:
    """Values that do not validate run nothing: without JS the page renders again with 422,
    action_state().error(name) giving the message and .value(name) what was typed."""
    registry = Registry()

    @registry.action
    def create(title: Title, n: t.Annotated[int, Ge(1)]) -> None:
        seen.append(title)

    client = _app(registry)
    response = client.submit(create, {"title": "x" * 21, "n": "zero"})
    assert response.status_code == 422 and seen == []
    assert f"title={'x' * 21!r} error='String should have at most 20 characters'" in response.text
    assert "n='zero' error='Input should be a valid integer" in response.text
    answer = client.submit(create, {"title": "", "n": "0"}, js=True)
    assert answer.status_code == 422 and answer.json["failed"] is True
    assert answer.json["result"]["errors"] == {
        "title": "String should have at least 1 character",
        "n": "Input should be greater than or equal to 1",
    }
    assert "title=&#39;&#39;" in answer.json["html"] or "title=''" in answer.json["html"]


def test_invalid_json_arguments_are_422(seen: list[t.Any]) -> None:
    """A JSON call's items are validated in order: an object where an int goes is a 422 with
    the error, never a 500."""
    registry = Registry()

    @registry.action
    def like(post_id: int, amount: t.Annotated[int, Field(gt=0, le=10)] = 1) -> int:
        seen.append((post_id, amount))
        return post_id

    client = _app(registry)
    assert client.call(like, "5").json["result"] == 5
    assert client.call(like, 5, 10).status_code == 200
    answer = client.call(like, {"$gt": ""}, 11)
    assert answer.status_code == 422
    assert answer.json["failed"] is True
    assert answer.json["result"] == {
        "errors": {
            "post_id": "Input should be a valid integer",
            "amount": "Input should be less than or equal to 10",
        }
    }
    assert client.call(like).json["result"] == {"errors": {"post_id": "Field required"}}
    assert seen == [(5, 1), (5, 10)]


def test_a_validator_message_is_shown_as_written() -> None:
    """A ValueError raised by a validator is the field's message as its author wrote it."""
    registry = Registry()

    @registry.action
    def say(text: t.Annotated[str, AfterValidator(no_shouting)]) -> str:
        return text

    answer = _app(registry).call(say, "HELLO")
    assert answer.json["result"] == {"errors": {"text": "No shouting, please."}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([1, 2, 3], "takes 2 argument(s)", id="too many"),
        pytest.param([1], "takes 2 argument(s)", id="too few unannotated"),
    ],
)
def test_wrong_number_of_json_arguments_is_400(args: list[int], message: str) -> None:
    """Too many arguments for any action, or too few for unannotated ones, is a 400 saying
    how many to send."""
    registry = Registry()

    @registry.action
    def add(a, b):  # type: ignore[no-untyped-def]
        return a + b

    client = _app(registry)
    assert client.call(add, 1, 2).json["result"] == 3
    answer = client.call(add, *args)
    assert answer.status_code == 400 and answer.json["error"]["code"] == "bad_request"
    assert message in answer.json["error"]["message"]


def test_json_body_that_is_not_an_array_is_400() -> None:
    """A JSON call whose body is not an array is refused with 400 whatever the action."""
    registry = Registry()

    @registry.action
    def like(post_id: int) -> int:
        return post_id

    answer = _app(registry).post("/", json={"post_id": 1}, headers={"Action-Id": like.id})
    assert answer.status_code == 400 and "array" in answer.json["error"]["message"]


def test_form_parameter_in_a_json_call_gets_an_empty_form(seen: list[t.Any]) -> None:
    """A JSON call's items skip the form parameter, which gets its default or an empty form."""
    registry = Registry()

    @registry.action
    def like(post_id: int, form: MultiDict[str, str]) -> int:
        seen.append(form)
        return post_id

    assert _app(registry).call(like, 4).json["result"] == 4
    assert seen == [MultiDict()]


def test_field_default_and_positional_only(seen: list[t.Any]) -> None:
    """A pydantic Field as a default gives its constraints and its default; positional-only
    parameters are passed by position; **kwargs is left empty."""
    registry = Registry()

    @registry.action
    def page(
        n: int = Field(default=1, ge=1),
        /,
        size: int = Field(default_factory=lambda: 20, le=50),
        **extra: t.Any,
    ) -> None:
        seen.append((n, size, extra))

    client = _app(registry)
    assert client.submit(page, {"size": "30"}).status_code == 200
    assert client.call(page, 2).status_code == 200
    answer = client.call(page, 0, 51)
    assert answer.json["result"]["errors"] == {
        "n": "Input should be greater than or equal to 1",
        "size": "Input should be less than or equal to 50",
    }
    assert seen == [(1, 30, {}), (2, 20, {})]


def test_var_positional_takes_extra_json_items_validated(seen: list[t.Any]) -> None:
    """Items beyond the named parameters go to *args, validated against its annotation."""
    registry = Registry()

    @registry.action
    def total(first: int, *rest: int) -> int:
        return first + sum(rest)

    client = _app(registry)
    assert client.call(total, 1, "2", 3).json["result"] == 6
    answer = client.call(total, 1, "two")
    assert answer.status_code == 422
    assert answer.json["result"]["errors"]["rest"].startswith("Input should be a valid integer")


def test_function_without_a_signature_is_called_as_before() -> None:
    """A callable inspect cannot read (a builtin) gets fn(*bound, form) or fn(*bound, *args)."""
    registry = Registry()
    act = registry.register(max, id="max")
    client = _app(registry)
    assert client.call(act, 3, 7).json["result"] == 7
    assert client.call(act.bind(9), 3).json["result"] == 9
    assert act.parameters.legacy and act.bind(1, 2).bound_args == (1, 2)


def test_a_signature_that_cannot_be_compiled_is_a_500_with_a_digest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An annotation that names nothing importable fails the request as an action that raised:
    a 500 whose digest finds the logged TypeError, never a traceback in the answer."""
    namespace: dict[str, t.Any] = {}
    exec("def broken(post_id: 'Missing'): pass", namespace)
    registry = Registry()
    act = registry.register(namespace["broken"], id="broken")
    answer = _app(registry).call(act, 1)
    assert answer.status_code == 500 and answer.json["error"]["code"] == "action_failed"
    assert "'Missing' of parameter 'post_id'" in caplog.text
    assert answer.json["error"]["digest"] in caplog.text


# -- Bound ---------------------------------------------------------------------------------------


def test_bound_parameter_only_from_the_token(seen: list[t.Any]) -> None:
    """A Bound parameter is never filled by the body: without a token the request is refused
    with 400 and nothing runs; with one, the sealed value is used whatever the body says."""
    registry = Registry()

    @registry.action
    def delete(post_id: Bound[int], reason: str = "") -> None:
        seen.append((post_id, reason))

    client = _app(registry)
    assert client.submit(delete, {"post_id": "1"}).status_code == 400
    refused = client.call(delete, 1)
    assert refused.status_code == 400 and "bind()" in refused.json["error"]["message"]
    assert seen == []
    assert client.submit(delete.bind(7), {"post_id": "1", "reason": "spam"}).status_code == 200
    assert client.call(delete.bind(8), "dup").status_code == 200
    assert seen == [(7, "spam"), (8, "dup")]


def test_bind_validates_bound_values() -> None:
    """bind() converts and checks what it seals against the Bound type, naming the parameter;
    unmarked leading parameters are bound as they are."""
    registry = Registry()

    @registry.action
    def move(post_id: Bound[int], position, to: str) -> None:  # type: ignore[no-untyped-def]
        pass

    assert move.bind("5").bound_args == (5,)
    assert move.bind(5, "anything").bound_args == (5, "anything")
    with pytest.raises(ValueError, match="'post_id' of .*move: Input should be a valid integer"):
        move.bind("five")


def test_a_bound_value_that_does_not_validate_is_refused() -> None:
    """A token whose value no longer fits the Bound type (sealed before a deploy changed it) is
    refused with 400."""
    registry = Registry()

    @registry.action
    def act(post_id: Bound[int]) -> int:
        return post_id

    bound = act.bind(1)
    from actionkit import security

    bound.token = security.encrypt_args(act.id, ("one",), security.resolve_key())
    assert _app(registry).call(bound).status_code == 400


def test_a_token_with_more_values_than_parameters_is_refused() -> None:
    """Bound arguments beyond what the function takes (a page rendered before a deploy changed
    it: bind() refuses them) are refused with 400, not a crash."""
    registry, before = Registry(), Registry()

    @registry.action(id="act")
    def act(post_id: int) -> int:
        return post_id

    @before.action(id="act")
    def old(post_id: int, other: int) -> int:
        return post_id

    client = _app(registry)
    sealed = old.bind(1, 2)
    assert client.call(sealed).status_code == 400
    assert client.submit(sealed, {}).status_code == 400


def test_bound_must_be_positional() -> None:
    """A keyword-only Bound parameter cannot be filled in order: a TypeError says so."""

    def act(*, post_id: Bound[int]) -> None:
        pass

    with pytest.raises(TypeError, match="make it a positional parameter"):
        Parameters(act)


# -- request, keyword calls, results ------------------------------------------------------------


def test_request_parameter_without_a_framework() -> None:
    """A parameter named request gets a Werkzeug Request for the environ, never a field."""
    registry = Registry()

    @registry.action
    def where(request: Request, title: str) -> list[str]:
        return [request.path, request.form.get("title", "-"), title]

    client = _app(registry)
    form = {"title": "t", "request": "forged"}
    answer = client.submit(where, form, path="/somewhere", js=True).json
    assert answer["result"] == ["/somewhere", "t", "t"]
    answer = client.call(where, "x", path="/json")
    assert answer.json["result"] == ["/json", "-", "x"]


def test_request_parameter_with_flask() -> None:
    """With the Flask extension, request is Flask's request object of the action."""
    registry = Registry()
    app = Flask(__name__)
    app.secret_key = "test"
    seen: list[t.Any] = []

    @registry.action
    def whoami(request: t.Any, name: str) -> str:
        seen.append(request is flask_request._get_current_object())  # type: ignore[attr-defined]
        return f"{request.endpoint}:{name}"

    @app.get("/")
    def home() -> str:
        return "home"

    ActionKit(app, registry=registry)
    client = ActionClient(app)
    assert client.call(whoami, "ada").json["result"] == "home:ada"
    assert client.submit(whoami, {"name": "bob"}, js=True).json["result"] == "home:bob"
    assert seen == [True, True]


def test_a_custom_action_wrapper_hands_over_its_request() -> None:
    """action_wrapper(environ, call) may give the request as call(request=...)."""
    registry = Registry()

    @registry.action
    def act(request: t.Any) -> str:
        return str(request)

    def wrapper(environ: t.Any, call: t.Any) -> t.Any:
        return call(request="the framework's request")

    client = _app(registry, action_wrapper=wrapper)
    assert client.call(act).json["result"] == "the framework's request"


def test_keyword_only_wrapper_works(seen: list[t.Any]) -> None:
    """Actions are called by keyword, so a functools.wraps decorator whose wrapper takes only
    **kwargs (Flask's tutorial login_required) works; its signature is the function's."""

    def login_required(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        @functools.wraps(view)
        def wrapped_view(**kwargs: t.Any) -> t.Any:
            seen.append("checked")
            return view(**kwargs)

        return wrapped_view

    registry = Registry()

    @registry.action
    @login_required
    def delete(post_id: Bound[int], reason: str) -> str:
        return f"{post_id}:{reason}"

    client = _app(registry)
    assert client.call(delete.bind(3), "spam").json["result"] == "3:spam"
    assert client.submit(delete.bind(4), {"reason": "old"}, js=True).json["result"] == "4:old"
    assert seen == ["checked", "checked"]


def test_model_result_is_answered_as_json() -> None:
    """A pydantic model returned by an action is its model_dump(mode="json") in the answer."""
    registry = Registry()

    @registry.action
    def make(title: str) -> Post:
        return Post(title=title, tags=["a"])

    @registry.action
    def refuse(title: str) -> t.Any:
        return fail(409, {"post": Post(title=title)})

    client = _app(registry)
    assert client.call(make, "Hi").json["result"] == {
        "title": "Hi",
        "tags": ["a"],
        "published": True,
    }
    assert client.call(refuse, "Hi").json["result"]["post"]["title"] == "Hi"


def test_validation_failure_comes_after_a_flask_guard() -> None:
    """A before_request guard (a login check) answers first: an anonymous visitor posting
    invalid values is sent to log in, never shown the field errors."""
    registry = Registry()
    app = Flask(__name__)
    app.secret_key = "test"

    @registry.action
    def create(title: Title) -> None:
        redirect("/")

    @app.before_request
    def guard() -> t.Any:
        if flask_request.method == "POST" and "X-User" not in flask_request.headers:
            return app.redirect("/login")
        return None

    @app.get("/")
    def home() -> str:
        return "home"

    ActionKit(app, registry=registry)
    client = ActionClient(app)
    assert client.submit(create, {"title": ""}).headers["Location"] == "/login"
    assert client.submit(create, {"title": ""}, headers={"X-User": "ada"}).status_code == 422


# -- compiling -----------------------------------------------------------------------------------


def test_signature_is_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature is compiled on first use and shared by every bound copy and request."""
    registry = Registry()
    compiled: list[t.Any] = []
    original = Parameters.__init__

    def counting(self: Parameters, fn: t.Any) -> None:
        compiled.append(fn)
        original(self, fn)

    monkeypatch.setattr(Parameters, "__init__", counting)

    @registry.action
    def like(post_id: Bound[int]) -> int:
        return post_id

    client = _app(registry)
    for n in range(3):
        assert client.call(like.bind(n)).json["result"] == n
    assert like.bind(1).parameters is like.parameters
    assert len(compiled) == 1


def test_annotation_only_a_type_checker_sees() -> None:
    """A form parameter annotated with a name imported only under TYPE_CHECKING is still the
    raw form; any other unresolvable annotation is a TypeError naming the parameter."""

    namespace: dict[str, t.Any] = {}
    exec(
        "def legacy(post_id: int, form: 'MultiDict[str, str]', request: 'Req'): pass\n"
        "def broken(post_id: 'PostId'): pass",
        namespace,
    )
    params = Parameters(namespace["legacy"])
    assert [(p.name, p.source) for p in params.params] == [
        ("post_id", "value"),
        ("form", "form"),
        ("request", "request"),
    ]
    with pytest.raises(TypeError, match="'PostId' of parameter 'post_id' of broken"):
        Parameters(namespace["broken"])


def test_error_reads_the_errors_mapping() -> None:
    """ActionState.error(name) looks into the fail() data's "errors" mapping first, and into
    the data itself as before."""
    from actionkit import ActionState

    registry = Registry()
    act = registry.register(lambda: None, id="a")
    state = ActionState(
        act, {"errors": {"title": "Too short."}, "n": "Bad."}, MultiDict(), True, 422
    )
    assert state.error("title") == "Too short." and state.error("n") == "Bad."
    assert state.error("other") is None


# -- types for users -----------------------------------------------------------------------------

WRONG = """\
from actionkit import action


@action
def like(post_id: int) -> int:
    return post_id


like("one")
text: str = like(1)
"""


def _mypy(*paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_actions_keep_their_signature_for_type_checkers(tmp_path: Path) -> None:
    """mypy --strict accepts the typed example (a bare Action too) and reports a call with a
    wrong argument type and a result used as the wrong type."""
    done = _mypy("tests/typing_example.py")
    assert done.returncode == 0, done.stdout + done.stderr
    wrong = tmp_path / "wrong.py"
    wrong.write_text(WRONG)
    done = _mypy(str(wrong))
    assert done.returncode == 1
    assert 'Argument 1 to "__call__" of "Action" has incompatible type "str"; expected "int"' in (
        done.stdout
    )
    assert 'Incompatible types in assignment (expression has type "int"' in done.stdout
