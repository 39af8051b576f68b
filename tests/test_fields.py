"""How an annotation reads a form field (actionkit/fields.py)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
import typing as t

import pydantic
import pytest
from annotated_types import MinLen
from typing_extensions import TypedDict
from werkzeug.datastructures import FileStorage, MultiDict

from actionkit import Bound
from actionkit.fields import (
    MISSING,
    adapter,
    is_multidict,
    message,
    model_fields,
    model_input,
    read_flag,
    read_many,
    read_many_filled,
    read_maybe_flag,
    read_one,
    read_only_text,
    read_text,
    reader,
)


class _Filter(enum.Enum):
    ANY = ""
    OPEN = "open"


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        pytest.param(MISSING, read_only_text, id="unannotated"),
        pytest.param(str, read_text, id="str"),
        pytest.param(t.Annotated[str, MinLen(1)], read_text, id="Annotated str"),
        pytest.param(t.Any, read_text, id="Any"),
        pytest.param(int, read_one, id="int"),
        pytest.param(int | None, read_one, id="int | None"),
        pytest.param(Bound[int], read_one, id="Bound[int]"),
        pytest.param(FileStorage, read_one, id="FileStorage"),
        pytest.param(bool, read_flag, id="bool"),
        pytest.param(bool | None, read_maybe_flag, id="bool | None"),
        pytest.param(t.Annotated[bool, "a note"], read_flag, id="Annotated bool"),
        pytest.param(t.Literal["", "open"], read_text, id="choices with the empty text"),
        pytest.param(t.Literal["open", "closed"], read_one, id="choices"),
        pytest.param(_Filter, read_text, id="Enum with an empty value"),
        pytest.param(list[str], read_many, id="list[str]"),
        pytest.param(tuple[int, ...], read_many_filled, id="tuple"),
        pytest.param(t.Sequence[int] | None, read_many_filled, id="Sequence | None"),
        pytest.param(set[str], read_many, id="set"),
        pytest.param(list, read_many, id="list"),
        pytest.param(list[t.Annotated[str, MinLen(1)]], read_many, id="list of Annotated str"),
        pytest.param(list[FileStorage], read_many_filled, id="list of files"),
        pytest.param(tuple[int, str], read_many, id="fixed tuple: every position"),
        pytest.param(list[t.Literal["", "a"]], read_many, id="choices with the empty text"),
        pytest.param(list[int | str], read_many, id="list of int or text"),
        pytest.param(list[t.Literal[1, 2]], read_many_filled, id="choices of numbers"),
        pytest.param(dict[str, str], read_one, id="dict"),
        pytest.param(int | str, read_text, id="a union with text: the empty one too"),
        pytest.param(int | float, read_one, id="a union of numbers"),
    ],
)
def test_reader_follows_the_type(annotation: t.Any, expected: t.Any) -> None:
    """Collections read every value (but the empty ones, of what is not text), bool a checkbox,
    text as it is, anything else one value."""
    assert reader(annotation) is expected


def test_readers() -> None:
    """An empty value or an upload without a file is missing for one value and left out of
    many; a checkbox is its last value, False when absent."""
    empty = FileStorage(io.BytesIO(b""), filename="")
    form = MultiDict(
        [("n", ""), ("t", ""), ("tags", "a"), ("tags", "b"), ("f", empty), ("c", "on")]
    )
    assert read_one(form, "n") is MISSING and read_one(form, "f") is MISSING
    assert read_text(form, "t") == "" and read_text(form, "x") is MISSING
    assert read_many(form, "tags") == ["a", "b"] and read_many(form, "f") is MISSING
    numbers = MultiDict([("n", "1"), ("n", ""), ("n", "3"), ("e", "")])
    assert read_many(numbers, "n") == ["1", "", "3"] and read_many(numbers, "e") == [""]
    assert (
        read_many_filled(numbers, "n") == ["1", "3"] and read_many_filled(numbers, "e") is MISSING
    )
    assert read_flag(form, "c") is True and read_flag(form, "x") is False


@pytest.mark.parametrize(
    ("sent", "flag", "maybe"),
    [
        ([], False, False),
        ([""], False, None),
        (["on"], True, True),
        (["subscribe"], True, True),
        ([" True "], True, True),
        (["off"], False, False),
        (["0"], False, False),
        (["No"], False, False),
        (["false", "on"], True, True),
    ],
)
def test_a_checkbox_is_ticked_by_any_value_but_a_no(
    sent: list[str], flag: bool, maybe: t.Any
) -> None:
    """A ticked checkbox sends its ``value`` (``on`` unless the page gives another): any text but
    an empty one or a word for no is ``True``, as Django and WTForms read it; for
    ``Optional[bool]`` an empty choice is ``None``; the last value counts."""
    form = MultiDict([("c", value) for value in sent])
    assert read_flag(form, "c") is flag
    assert read_maybe_flag(form, "c") is maybe


def test_an_unannotated_parameter_reads_only_text() -> None:
    """Without annotation a parameter is text: an upload of its name is none of it."""
    upload = FileStorage(io.BytesIO(b"x"), filename="x.txt")
    form = MultiDict([("title", upload), ("title", "Hello"), ("only", upload)])
    assert read_only_text(form, "title") == "Hello" and read_only_text(form, "only") is MISSING


def test_multidict_annotations() -> None:
    """MultiDict in any parametrisation or union with None, or as unresolved text, is the form."""
    assert is_multidict(MultiDict) and is_multidict(MultiDict[str, str] | None)
    assert is_multidict("MultiDict[str, str]") and not is_multidict(dict[str, str])


def test_adapter_errors_name_the_parameter() -> None:
    """An annotation left as text, or one pydantic cannot validate, is a TypeError naming the
    parameter; Any validates nothing."""
    assert adapter(t.Any, "x") is None and adapter(MISSING, "x") is None
    with pytest.raises(TypeError, match="'Later' of parameter 'p' cannot be resolved"):
        adapter("Later", "parameter 'p'")


def test_a_model_whose_annotations_name_what_is_not_imported_is_a_type_error() -> None:
    """A dataclass or TypedDict whose field annotation names what only a type checker imports
    is a TypeError saying so (a NameError failed each request of the action)."""
    import dataclasses

    from typing_extensions import TypedDict

    @dataclasses.dataclass
    class Price:
        amount: Later  # type: ignore[name-defined]  # noqa: F821

    class Amount(TypedDict):
        amount: Later  # type: ignore[name-defined]  # noqa: F821

    for model in (Price, Amount):
        with pytest.raises(TypeError, match=r"annotations of .* cannot be resolved.*'Later'"):
            model_fields(model)


def test_message_of_a_validator_is_its_own() -> None:
    """A validator's ValueError text is the message; pydantic's own messages otherwise."""
    error = {
        "type": "value_error",
        "msg": "Value error, Bad.",
        "ctx": {"error": ValueError("Bad.")},
    }
    assert message(error) == "Bad."
    assert message({"type": "int_type", "msg": "Input should be a valid integer"}) == (
        "Input should be a valid integer"
    )


class _Priority(enum.Enum):
    LOW = 1
    HIGH = 2


@pytest.mark.parametrize(
    ("annotation", "text", "value"),
    [
        (t.Literal[1, 2, 3], "3", 3),
        (t.Optional[t.Literal[1, 2, 3]], "2", 2),  # noqa: UP045
        (list[t.Literal[1, 2, 3]], ["1", "3"], [1, 3]),
        (t.Annotated[t.Literal[1, 2], "note"], "1", 1),
        (_Priority, "2", _Priority.HIGH),
        (t.Literal["a", "b"], "a", "a"),
        (t.Literal[True, 7], "7", 7),
    ],
)
def test_choices_that_are_not_text_take_the_text_a_form_sends(
    annotation: t.Any, text: t.Any, value: t.Any
) -> None:
    """A Literal or an Enum of numbers validates the text of one of its values (all a form
    can send, from a <select> of star ratings), as well as the value itself; anything else is
    still refused."""
    validate = adapter(annotation, "test").validate_python  # type: ignore[union-attr]
    assert validate(text) == value
    assert validate(value) == value
    with pytest.raises(pydantic.ValidationError):
        validate(["9"] if isinstance(text, list) else "9")


def test_an_empty_input_is_none_for_a_nullable_model_field_without_default() -> None:
    """A blank ``<input type=date>`` for ``due: date | None`` of a model, a dataclass or a
    TypedDict is ``None``, as for a parameter of that annotation (it was "Field required":
    the form could never be sent without a date); left out of the form, it is still missing."""

    class Task(pydantic.BaseModel):
        title: str
        due: datetime.date | None

    @dataclasses.dataclass
    class TaskData:
        title: str
        due: datetime.date | None

    class TaskDict(TypedDict):
        title: str
        due: datetime.date | None

    for model in (Task, TaskData, TaskDict):
        fields = model_fields(model)
        assert fields is not None
        empty = model_input(fields, MultiDict([("title", "Buy milk"), ("due", "")]))
        assert empty == {"title": "Buy milk", "due": None}, model
        assert model_input(fields, MultiDict([("title", "t")])) == {"title": "t"}
        typed = model_input(fields, MultiDict([("title", "t"), ("due", "2024-03-05")]))
        assert typed == {"title": "t", "due": "2024-03-05"}


def test_a_model_field_is_read_under_every_key_pydantic_accepts() -> None:
    """Each choice of ``AliasChoices``, and the field's name with ``populate_by_name``: the
    form is read as pydantic reads the same data sent as JSON (only the first key was)."""
    from pydantic import AliasChoices, ConfigDict, Field

    class Person(pydantic.BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        first_name: str = Field(alias="firstName")
        last_name: str = Field(validation_alias=AliasChoices("surname", "family_name"))

    fields = model_fields(Person)
    assert fields is not None
    for form in (
        [("first_name", "Ada"), ("surname", "Lovelace")],
        [("firstName", "Ada"), ("family_name", "Lovelace")],
    ):
        data = model_input(fields, MultiDict(form))
        assert Person.model_validate(data).model_dump() == {
            "first_name": "Ada",
            "last_name": "Lovelace",
        }
