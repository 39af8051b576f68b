"""What an annotation makes of a form field: how the field is read, and how it is validated.

A parameter's type decides how its field is read from a form (:func:`reader`): every value for a
collection (``list[str]``), presence for a ``bool`` checkbox, the text as it is for ``str`` (or no
annotation), and otherwise one value, an empty one counting as missing. A model, dataclass or
``TypedDict`` type is read field by field (:func:`model_fields`). Validation is pydantic's
(:func:`adapter`), arbitrary classes (``FileStorage``) checked with ``isinstance``.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import enum
import inspect
import types
import typing as t

import pydantic
import typing_extensions
from werkzeug.datastructures import FileStorage, MultiDict

#: No value: a field not in the form, a parameter without a default.
MISSING: t.Any = inspect.Parameter.empty
# Infinities and NaN are not numbers a form or JSON sends (nor can the answer hold them).
_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True, allow_inf_nan=False)
#: Annotations that validate nothing.
ANY = (t.Any, object)

Form = MultiDict[str, t.Any]
#: Reads a field's raw value from a form, or :data:`MISSING`.
Reader = t.Callable[[Form, str], t.Any]
#: A model's field: its keys in the form (the first one found is read: an alias, the other
#: choices of ``AliasChoices``, its name with ``populate_by_name``), how it is read, whether the
#: model requires it, what makes its text a value of the field's type where pydantic would
#: refuse the text, and whether ``None`` is one of its values (an empty input is then ``None``).
ModelField = tuple[tuple[str, ...], Reader, bool, t.Callable[[t.Any], t.Any] | None, bool]


# -- reading a form -------------------------------------------------------------------------------


def _no_file(value: t.Any) -> bool:
    """An upload field left empty (the browser sends a part without a file name)."""
    return isinstance(value, FileStorage) and not value.filename


def read_text(form: Form, key: str) -> t.Any:
    return form.get(key, MISSING)


def read_only_text(form: Form, key: str) -> t.Any:
    """The field's text, for a parameter without annotation (text): an upload of its name is
    none (without a type that takes files, the action would get a ``FileStorage``)."""
    return next((v for v in form.getlist(key) if not isinstance(v, FileStorage)), MISSING)


def read_one(form: Form, key: str) -> t.Any:
    value = form.get(key, MISSING)
    return MISSING if value == "" or _no_file(value) else value


def read_many(form: Form, key: str) -> t.Any:
    values = [v for v in form.getlist(key) if not _no_file(v)]
    return values or MISSING


def read_many_filled(form: Form, key: str) -> t.Any:
    """Every value but the empty ones, for a collection of what is not text (``list[int]``):
    an empty input among several counts as missing, as it does alone."""
    values = [v for v in form.getlist(key) if v != "" and not _no_file(v)]
    return values or MISSING


def reads_many(read: Reader) -> bool:
    """Whether ``read`` reads every value of a field (a collection), found missing as ``[]``."""
    return read is read_many or read is read_many_filled


# What a form sends for "no" (pydantic's words); any other text is a ticked checkbox's value.
_NO = frozenset(("", "0", "off", "f", "false", "n", "no"))


def read_flag(form: Form, key: str) -> t.Any:
    """A checkbox: ``False`` when absent, empty or a word for no, ``True`` for any other text (a
    ticked box sends its ``value``, ``on`` by default), as Django and WTForms read one."""
    values = form.getlist(key)
    if not values:
        return False
    value = values[-1]
    return value.strip().lower() not in _NO if isinstance(value, str) else value


def read_maybe_flag(form: Form, key: str) -> t.Any:
    """``Optional[bool]``: as :func:`read_flag`, and ``None`` for an empty choice (a
    ``<select>`` of "", "true" and "false")."""
    values = form.getlist(key)
    return None if values and values[-1] == "" else read_flag(form, key)


def _unwrap(tp: t.Any) -> t.Any:
    """``tp`` without ``Annotated`` and without ``None`` from a union with one other type."""
    while t.get_origin(tp) is t.Annotated:
        tp = t.get_args(tp)[0]
    if t.get_origin(tp) in (t.Union, types.UnionType):
        args = [a for a in t.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def reader(annotation: t.Any) -> Reader:
    """How a field of this type is read: text, one value, every value, or a checkbox."""
    base = _unwrap(annotation)
    if base is bool:
        return read_maybe_flag if _accepts(annotation, None, False) else read_flag
    origin = t.get_origin(base) or base
    if (
        inspect.isclass(origin)
        and issubclass(origin, collections.abc.Collection)
        and not issubclass(origin, str | bytes | bytearray | collections.abc.Mapping)
    ):
        return read_many if _takes_empty_text(base) else read_many_filled
    if annotation is MISSING:
        return read_only_text
    if base is str or base in ANY:
        return read_text
    # An empty input is missing, unless it is one of the type's values: the "Any" option of a
    # <select> for Literal["", "open", "closed"].
    return read_text if _accepts(annotation, "", False) else read_one


def _takes_empty_text(collection: t.Any) -> bool:
    """Whether an empty input is one of the values of ``collection`` (``list[str]``, a tuple of
    positions, ``list[Literal["", "a"]]``), rather than a missing one (``list[int]``)."""
    items = t.get_args(collection)
    if not items or (t.get_origin(collection) is tuple and items[-1] is not Ellipsis):
        return True  # untyped, or a fixed tuple: every position counts
    item = items[0]
    if _unwrap(item) is str or _unwrap(item) in ANY:
        return True
    return _accepts(item, "", True)  # a type pydantic cannot build: every value, as before


def accepts(adapter: pydantic.TypeAdapter[t.Any] | None, value: t.Any) -> bool:
    """Whether ``adapter`` validates ``value`` (``None``: for an ``Optional`` type)."""
    if adapter is None:
        return False
    try:
        adapter.validate_python(value)
    except pydantic.ValidationError:
        return False
    return True


def _accepts(tp: t.Any, value: t.Any, otherwise: bool) -> bool:
    """Whether ``value`` is a value of ``tp``; ``otherwise`` where pydantic cannot tell."""
    try:
        return accepts(_adapter(tp), value)
    except Exception:
        return otherwise


def model_fields(annotation: t.Any) -> tuple[ModelField, ...] | None:
    """The fields of a model, dataclass or ``TypedDict`` type: (key, reader, required)."""
    base = _unwrap(annotation)
    if not inspect.isclass(base):
        return None
    fields: list[tuple[tuple[str, ...], t.Any, bool]]
    if issubclass(base, pydantic.BaseModel):
        by_name = bool(
            base.model_config.get("populate_by_name") or base.model_config.get("validate_by_name")
        )
        fields = [
            (_keys(name, f, by_name), f.annotation, f.is_required())
            for name, f in base.model_fields.items()
        ]
    elif dataclasses.is_dataclass(base):
        hints = _hints(base)
        fields = [
            ((f.name,), hints.get(f.name, t.Any), _required_field(f))
            for f in dataclasses.fields(base)
            if f.init
        ]
    elif typing_extensions.is_typeddict(base):
        required: frozenset[str] = getattr(base, "__required_keys__", frozenset())
        fields = [((k,), v, k in required) for k, v in _hints(base).items()]
    else:
        return None
    return tuple(
        (keys, reader(ann), required, _choose(ann), _accepts(ann, None, False))
        for keys, ann, required in fields
    )


def _keys(name: str, field: t.Any, by_name: bool) -> tuple[str, ...]:
    """The form keys of a pydantic model's field, as pydantic reads its input."""
    alias = field.validation_alias
    if isinstance(alias, str):
        keys = [alias]
    elif isinstance(alias, pydantic.AliasChoices):
        keys = [c for c in alias.choices if isinstance(c, str)]
    else:
        keys = [field.alias or name]
    if (by_name or not keys) and name not in keys:
        keys.append(name)
    return tuple(keys)


def _hints(cls: type) -> dict[str, t.Any]:
    """The annotations of a dataclass's or ``TypedDict``'s fields, resolved.

    :raises TypeError: one names what only a type checker imports.
    """
    try:
        return t.get_type_hints(cls)
    except NameError as e:
        raise TypeError(
            f"The annotations of {cls.__qualname__} cannot be resolved ({e}); import what they"
            " name at run time, not only under TYPE_CHECKING."
        ) from e


def _choose(annotation: t.Any) -> t.Callable[[t.Any], t.Any] | None:
    choices = text_values(annotation)
    return by_text(choices) if choices else None


def _required_field(field: dataclasses.Field[t.Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def model_input(fields: tuple[ModelField, ...], form: Form, has_default: bool = False) -> t.Any:
    """The values of a model's fields in ``form``; :data:`MISSING` for a parameter with a
    default (``filters: Filters | None = None``) when the form has none of its fields."""
    if has_default and not any(key in form for keys, *_ in fields for key in keys):
        return MISSING
    data = {}
    for keys, reader, required, choose, nullable in fields:
        key = next((k for k in keys if k in form), keys[0])
        value = reader(form, key)
        if value is MISSING and reads_many(reader) and required:
            value = []
        elif value is MISSING and required and nullable and key in form:
            value = None  # an empty input is a form's only "no value": Optional[date]
        if value is not MISSING:
            data[key] = value if choose is None or value is None else choose(value)
    return data


def takes_form(annotation: t.Any) -> bool:
    """Whether a parameter named ``form`` annotated so receives the whole form: no annotation,
    ``Any``, or a mapping that is not a model (``dict``, ``Mapping[str, str]``)."""
    if annotation is MISSING or annotation in ANY:
        return True
    base = _unwrap(annotation)
    origin = t.get_origin(base) or base
    return (
        inspect.isclass(origin)
        and not typing_extensions.is_typeddict(origin)
        and issubclass(origin, collections.abc.Mapping)
    )


def is_multidict(annotation: t.Any) -> bool:
    base = _unwrap(annotation)
    origin = t.get_origin(base) or base
    if isinstance(origin, str):  # unresolved: judged by its text
        return "MultiDict" in origin
    return inspect.isclass(origin) and issubclass(origin, MultiDict)


def resolve_hints(fn: t.Callable[..., t.Any], signature: inspect.Signature) -> dict[str, t.Any]:
    """The parameters' annotations, resolved where possible (else left as their text)."""
    target = inspect.unwrap(fn)
    try:
        return t.get_type_hints(target, include_extras=True)
    except Exception:  # one annotation names what only a type checker imports: go one by one
        pass
    namespace: dict[str, t.Any] = dict(getattr(target, "__globals__", {}))
    with contextlib.suppress(TypeError):  # not a Python function: no closure to look in
        namespace.update(inspect.getclosurevars(target).nonlocals)
    hints = {}
    for p in signature.parameters.values():
        annotation = p.annotation
        if isinstance(annotation, str):
            with contextlib.suppress(Exception):  # left as text: see adapter()
                annotation = eval(annotation, namespace)  # what get_type_hints does
        hints[p.name] = annotation
    return hints


def adapter(annotation: t.Any, where: str) -> pydantic.TypeAdapter[t.Any] | None:
    if annotation is MISSING or annotation in ANY:
        return None
    if isinstance(annotation, str):
        raise TypeError(
            f"The annotation {annotation!r} of {where} cannot be resolved; import what it names"
            " at run time, not only under TYPE_CHECKING."
        )
    try:
        return _adapter(_text_choices(annotation))
    except pydantic.PydanticUserError as e:
        raise TypeError(
            f"The annotation of {where} is not a type pydantic can validate: {e}"
        ) from e


def _adapter(annotation: t.Any) -> pydantic.TypeAdapter[t.Any]:
    """The validator of ``annotation`` with actionkit's configuration: also for a dataclass or a
    ``TypedDict``, which pydantic gives a configuration only from outside them (by a type alias
    here, which changes nothing else), where a model or a dataclass with a configuration of its
    own keeps it."""
    try:
        return pydantic.TypeAdapter(annotation, config=_CONFIG)
    except pydantic.PydanticUserError as e:
        if e.code != "type-adapter-config-unused":
            raise
    ActionParameter = typing_extensions.TypeAliasType("ActionParameter", annotation)  # noqa: N806
    return pydantic.TypeAdapter(ActionParameter, config=_CONFIG)


def message(error: t.Any) -> str:
    """A validation error's message; a validator's own ``ValueError`` text as it was written."""
    if error["type"] in ("value_error", "assertion_error") and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return str(error["msg"])


def _text_choices(tp: t.Any) -> t.Any:
    """``tp`` where a ``Literal`` or an ``Enum`` of values that are not text also takes the text
    of one, as a form sends it (``"3"`` for ``Literal[1, 2, 3]``): pydantic would refuse it."""
    choices = text_values(tp)
    return t.Annotated[tp, pydantic.BeforeValidator(by_text(choices))] if choices else tp


def text_values(tp: t.Any) -> dict[str, t.Any]:
    """The values of the ``Literal`` and ``Enum`` types in ``tp`` that are not text, by their
    text: ``{"1": 1, "2": 2}`` for ``list[Literal[1, 2]] | None``."""
    origin = t.get_origin(tp)
    if origin is t.Literal:
        return {str(v): v for v in t.get_args(tp) if not isinstance(v, str)}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {str(m.value): m for m in tp if not isinstance(m.value, str)}
    args = t.get_args(tp)
    if origin is t.Annotated:
        return text_values(args[0])
    choices: dict[str, t.Any] = {}
    if origin in (t.Union, types.UnionType) or (
        inspect.isclass(origin) and issubclass(origin, collections.abc.Collection)
    ):
        for arg in args:
            for text, value in text_values(arg).items():
                choices.setdefault(text, value)
    return choices


def by_text(choices: dict[str, t.Any]) -> t.Callable[[t.Any], t.Any]:
    """A form's text, or a list of them, with the text of a choice made that choice."""

    def choose(value: t.Any) -> t.Any:
        if isinstance(value, str):
            return choices.get(value, value)
        if isinstance(value, list):
            return [choices.get(v, v) if isinstance(v, str) else v for v in value]
        return value

    return choose
