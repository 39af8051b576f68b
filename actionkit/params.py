"""An action's parameters: where each value of a request goes, converted and validated.

The signature of an action says what it takes, and it is compiled once (:class:`Parameters`,
cached on the :class:`~actionkit.Action`):

- the leading positional parameters take the arguments sealed by :meth:`~actionkit.Action.bind`,
  in order. Those annotated :data:`Bound` may take nothing else: a request without a valid token
  holding them is refused (``400``) whatever its body says, and ``bind()`` validates what it
  seals against their type. Unmarked ones are filled from the token as they are, unvalidated;
- a form submission fills the others *by name*: ``title: str`` from the field ``title``,
  ``tags: list[str]`` from every ``tags`` value, ``photo: FileStorage`` from the upload,
  ``published: bool`` from the presence of the checkbox (``False`` when absent, whatever the
  default), a default when a field is missing or empty. A parameter annotated with a pydantic
  model, a dataclass or a ``TypedDict`` receives the whole form validated into it;
- a JSON call fills them *in order* with the array's items;
- a parameter named ``form`` without annotation (or ``Any``), or annotated ``MultiDict``,
  receives the raw form (an empty one in a JSON call when it has no default); a var-positional
  parameter receives the form when no parameter takes it (``fn(*bound_args, form)``);
- a parameter named ``request`` receives the framework's request (Flask's ``request``; a
  :class:`werkzeug.wrappers.Request` without a framework), never anything the client sent.

Annotations are converted and validated with pydantic 2, constraints included
(``Annotated[str, MinLen(1)]``, ``Annotated[int, Field(gt=0)]``). Values that fail validation run
nothing (:class:`~actionkit.exceptions.InvalidArguments`): the answer is the one of
``fail(422, {"errors": {name: message}})``. Arguments of the wrong shape (too
many, a required unannotated one missing from a JSON call) are refused with ``400``.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import inspect
import types
import typing as t

import pydantic
import typing_extensions
from pydantic.fields import FieldInfo
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.wrappers import Request

from .exceptions import InvalidArguments, RequestRefused

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["ActionCall", "Bound", "Invocation", "Parameters"]

T = t.TypeVar("T")


class _BoundMarker:
    """The ``Annotated`` metadata of :data:`Bound`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "actionkit.Bound"


BOUND = _BoundMarker()

#: A parameter only the sealed token of :meth:`~actionkit.Action.bind` may fill::
#:
#:     @action
#:     def delete_post(post_id: Bound[int]) -> None: ...
#:
#:     delete_post.bind(post.id).button_attrs()
Bound: t.TypeAlias = t.Annotated[T, BOUND]

_MISSING: t.Any = inspect.Parameter.empty
# Where the request object goes, until the framework hands it over (see Invocation).
_REQUEST: t.Any = object()
_CONFIG = pydantic.ConfigDict(arbitrary_types_allowed=True)
_ANY = (t.Any, object)

Form = MultiDict[str, t.Any]
#: Reads a field's raw value from a form, or ``_MISSING``.
Reader = t.Callable[[Form, str], t.Any]


class ActionCall(t.Protocol):
    """What an ``action_wrapper`` calls: runs the action, given the framework's request."""

    def __call__(self, *, request: t.Any = None) -> t.Any: ...


# -- reading a form -------------------------------------------------------------------------------


def _no_file(value: t.Any) -> bool:
    """An upload field left empty (the browser sends a part without a file name)."""
    return isinstance(value, FileStorage) and not value.filename


def _read_text(form: Form, key: str) -> t.Any:
    return form.get(key, _MISSING)


def _read_one(form: Form, key: str) -> t.Any:
    value = form.get(key, _MISSING)
    return _MISSING if value == "" or _no_file(value) else value


def _read_many(form: Form, key: str) -> t.Any:
    values = [v for v in form.getlist(key) if not _no_file(v)]
    return values or _MISSING


def _read_flag(form: Form, key: str) -> t.Any:
    values = form.getlist(key)
    return values[-1] if values else False


def _unwrap(tp: t.Any) -> t.Any:
    """``tp`` without ``Annotated`` and without ``None`` from a union with one other type."""
    while t.get_origin(tp) is t.Annotated:
        tp = t.get_args(tp)[0]
    if t.get_origin(tp) in (t.Union, types.UnionType):
        args = [a for a in t.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _reader(annotation: t.Any) -> Reader:
    """How a field of this type is read: text, one value, every value, or a checkbox."""
    base = _unwrap(annotation)
    if base is bool:
        return _read_flag
    origin = t.get_origin(base) or base
    if (
        inspect.isclass(origin)
        and issubclass(origin, collections.abc.Collection)
        and not issubclass(origin, str | bytes | bytearray | collections.abc.Mapping)
    ):
        return _read_many
    if annotation is _MISSING or base is str or base in _ANY:
        return _read_text
    return _read_one


def _model_fields(annotation: t.Any) -> tuple[tuple[str, Reader, bool], ...] | None:
    """The fields of a model, dataclass or ``TypedDict`` type: (key, reader, required)."""
    base = _unwrap(annotation)
    if not inspect.isclass(base):
        return None
    fields: list[tuple[str, t.Any, bool]]
    if issubclass(base, pydantic.BaseModel):
        fields = [
            (
                f.validation_alias if isinstance(f.validation_alias, str) else f.alias or name,
                f.annotation,
                f.is_required(),
            )
            for name, f in base.model_fields.items()
        ]
    elif dataclasses.is_dataclass(base):
        hints = t.get_type_hints(base)
        fields = [
            (f.name, hints.get(f.name, t.Any), _required_field(f))
            for f in dataclasses.fields(base)
            if f.init
        ]
    elif typing_extensions.is_typeddict(base):
        required: frozenset[str] = getattr(base, "__required_keys__", frozenset())
        fields = [(k, v, k in required) for k, v in t.get_type_hints(base).items()]
    else:
        return None
    return tuple((key, _reader(ann), required) for key, ann, required in fields)


def _required_field(field: dataclasses.Field[t.Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _model_input(fields: tuple[tuple[str, Reader, bool], ...], form: Form) -> dict[str, t.Any]:
    data = {}
    for key, reader, required in fields:
        value = reader(form, key)
        if value is _MISSING and reader is _read_many and required:
            value = []
        if value is not _MISSING:
            data[key] = value
    return data


# -- compiling a signature ------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Param:
    name: str
    #: "value", "model" (the whole form), "form" (the raw form), "request", "varargs"
    source: str
    positional: bool
    keyword: bool
    bound: bool
    adapter: pydantic.TypeAdapter[t.Any] | None
    default: t.Any = _MISSING
    factory: t.Callable[[], t.Any] | None = None
    reader: Reader = _read_text
    fields: tuple[tuple[str, Reader, bool], ...] = ()

    def missing(self) -> t.Any:
        """The default of a parameter nothing was given for, or ``_MISSING``."""
        return self.default if self.factory is None else self.factory()


def _is_multidict(annotation: t.Any) -> bool:
    base = _unwrap(annotation)
    origin = t.get_origin(base) or base
    if isinstance(origin, str):  # unresolved: judged by its text
        return "MultiDict" in origin
    return inspect.isclass(origin) and issubclass(origin, MultiDict)


def _hints(fn: t.Callable[..., t.Any], signature: inspect.Signature) -> dict[str, t.Any]:
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
            with contextlib.suppress(Exception):  # left as text: see _adapter
                annotation = eval(annotation, namespace)  # what get_type_hints does
        hints[p.name] = annotation
    return hints


def _adapter(annotation: t.Any, where: str) -> pydantic.TypeAdapter[t.Any] | None:
    if annotation is _MISSING or annotation in _ANY:
        return None
    if isinstance(annotation, str):
        raise TypeError(
            f"The annotation {annotation!r} of {where} cannot be resolved; import what it names"
            " at run time, not only under TYPE_CHECKING."
        )
    try:
        try:
            return pydantic.TypeAdapter(annotation, config=_CONFIG)
        except pydantic.PydanticUserError as e:
            if e.code != "type-adapter-config-unused":
                raise
            return pydantic.TypeAdapter(annotation)  # a model keeps its own configuration
    except pydantic.PydanticUserError as e:
        raise TypeError(
            f"The annotation of {where} is not a type pydantic can validate: {e}"
        ) from e


class Parameters:
    """The compiled signature of an action function: see the module.

    :raises TypeError: a parameter whose annotation cannot be resolved or validated, or a
        :data:`Bound` one that is not positional.
    """

    def __init__(self, fn: t.Callable[..., t.Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", repr(fn))
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # a builtin: called as fn(*bound_args, form | *args)
            signature = None
        self.legacy = signature is None
        params = [] if signature is None else self._compile(signature)
        self.params = params
        self.varargs = next((p for p in params if p.source == "varargs"), None)
        positional = [p for p in params if p.positional and p.source != "varargs"]
        #: Positional parameters in order: given positionally when *args takes something.
        self.positional = positional
        self.positional_only = [p for p in positional if not p.keyword]
        #: Where the bound arguments go, in order.
        self.slots = [p for p in positional if p.source in ("value", "model")]
        bound = [i for i, p in enumerate(self.slots) if p.bound]
        self.required_bound = bound[-1] + 1 if bound else 0
        # The form goes to *args when no parameter takes it (fn(*bound_args, form)).
        self.form_to_varargs = self.varargs is not None and not any(
            p.source in ("form", "model") for p in params
        )
        self.requests = [p.name for p in params if p.source == "request"]
        # What is left after k bound arguments, and the order of a JSON call's items.
        self._rest: list[list[_Param]] = []
        self._order: list[list[_Param]] = []
        for k in range(len(self.slots) + 1):
            taken = {p.name for p in self.slots[:k]}
            rest = [p for p in params if p.name not in taken and p.source != "varargs"]
            self._rest.append(rest)
            order = [p for p in rest if p.source in ("value", "model")]
            if self.varargs is not None:
                order = [p for p in order if p.positional]
            self._order.append(order)

    def _compile(self, signature: inspect.Signature) -> list[_Param]:
        hints = _hints(self.fn, signature)
        params = []
        for p in signature.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                continue
            where = f"parameter {p.name!r} of {self.name}"
            annotation = hints.get(p.name, p.annotation)
            default, factory = p.default, None
            if isinstance(default, FieldInfo):  # def f(title: str = Field(min_length=1))
                annotation = t.Annotated[annotation, default]
                info = default
                default = _MISSING if info.is_required() else None
                if not info.is_required():
                    factory = lambda info=info: info.get_default(call_default_factory=True)  # noqa: E731
            metadata = t.get_args(annotation)[1:] if t.get_origin(annotation) is t.Annotated else ()
            is_bound = any(m is BOUND for m in metadata)
            if p.kind is p.VAR_POSITIONAL:
                source = "varargs"
            elif p.name == "request" and not is_bound:
                source = "request"
            elif _is_multidict(annotation) or (
                p.name == "form" and annotation in (_MISSING, *_ANY)
            ):
                source = "form"
            else:
                source = "value"
            if is_bound and (source == "varargs" or p.kind is p.KEYWORD_ONLY):
                raise TypeError(
                    f"The Bound {where} is filled by bind() in order; make it a positional"
                    " parameter."
                )
            fields = _model_fields(annotation) if source == "value" else None
            params.append(
                _Param(
                    name=p.name,
                    source="model" if fields is not None else source,
                    positional=p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD),
                    keyword=p.kind is not p.POSITIONAL_ONLY,
                    bound=is_bound,
                    adapter=_adapter(annotation, where) if source in ("value", "varargs") else None,
                    default=default,
                    factory=factory,
                    reader=_reader(annotation),
                    fields=fields or (),
                )
            )
        return params

    def __repr__(self) -> str:
        return f"<Parameters of {self.name} ({', '.join(p.name for p in self.params)})>"

    # -- at render time: bind() ----------------------------------------------------------------

    def seal(self, args: tuple[t.Any, ...]) -> tuple[tuple[t.Any, ...], tuple[t.Any, ...]]:
        """The values ``bind(*args)`` binds (converted to their :data:`Bound` types) and the JSON
        values it seals. Values for unmarked parameters are bound as they are.

        :raises ValueError: a value that is not of its :data:`Bound` parameter's type.
        """
        if self.legacy or not self.required_bound:
            return args, args
        values, sealed = [], []
        for i, value in enumerate(args):
            param = self.slots[i] if i < len(self.slots) else None
            if param is not None and param.bound and param.adapter is not None:
                try:
                    value = param.adapter.validate_python(value)
                except pydantic.ValidationError as e:
                    raise ValueError(
                        f"bind() got {value!r} for the Bound parameter {param.name!r} of"
                        f" {self.name}: {_message(e.errors()[0])}; pass a value of its type."
                    ) from None
                values.append(value)
                sealed.append(param.adapter.dump_python(value, mode="json"))
            else:
                values.append(value)
                sealed.append(value)
        return tuple(values), tuple(sealed)

    # -- at request time -----------------------------------------------------------------------

    def prepare(
        self,
        bound: list[t.Any],
        form: Form | None,
        json_args: list[t.Any] | None,
        environ: WSGIEnvironment,
    ) -> Invocation:
        """The call a request makes, its arguments converted and validated.

        :raises RequestRefused: arguments of the wrong number or shape, or a missing token for a
            :data:`Bound` parameter.
        :raises InvalidArguments: values that do not validate; nothing may run.
        """
        if self.legacy:
            args = [*bound, form] if form is not None else [*bound, *(json_args or ())]
            return Invocation(self.fn, args, {}, environ)
        if len(bound) < self.required_bound:
            names = ", ".join(repr(p.name) for p in self.slots[: self.required_bound] if p.bound)
            raise RequestRefused(
                "bad_request",
                f"{self.name} takes {names} only from bind(); this request carries no bound"
                " arguments for it, so render its form from action.bind(...).",
            )
        values: dict[str, t.Any] = {}
        extras: list[t.Any] = []
        errors: dict[str, str] = {}
        taken = min(len(bound), len(self.slots))
        if len(bound) > taken:
            if self.varargs is None:
                raise RequestRefused(
                    "bad_request",
                    f"The token holds {len(bound)} bound arguments; {self.name} takes"
                    f" {len(self.slots)}. Render the page again.",
                )
            extras.extend(bound[taken:])
        for param, value in zip(self.slots, bound, strict=False):
            if param.bound and param.adapter is not None:
                try:
                    value = param.adapter.validate_python(value)
                except pydantic.ValidationError:
                    raise RequestRefused(
                        "bad_request",
                        f"The bound argument {param.name!r} of {self.name} is not of its type;"
                        " render the page again.",
                    ) from None
            values[param.name] = value
        if form is not None:
            self._from_form(self._rest[taken], form, values, errors)
            if self.form_to_varargs:
                extras.append(form)
        else:
            self._from_json(taken, json_args or [], values, extras, errors)
        if errors:
            raise InvalidArguments(errors)
        return self._invocation(values, extras, environ)

    def _from_form(
        self, rest: list[_Param], form: Form, values: dict[str, t.Any], errors: dict[str, str]
    ) -> None:
        for param in rest:
            source = param.source
            if source == "form":
                values[param.name] = form
                continue
            if source == "request":
                values[param.name] = _REQUEST
                continue
            raw: t.Any
            if source == "model":
                raw = _model_input(param.fields, form)
            else:
                raw = param.reader(form, param.name)
            if raw is _MISSING:
                raw = param.missing()
                if raw is not _MISSING:
                    values[param.name] = raw
                    continue
                if param.reader is not _read_many:
                    errors[param.name] = "Field required"
                    continue
                raw = []
            _validate(param, raw, values, errors)

    def _from_json(
        self,
        taken: int,
        items: list[t.Any],
        values: dict[str, t.Any],
        extras: list[t.Any],
        errors: dict[str, str],
    ) -> None:
        order = self._order[taken]
        if len(items) > len(order):
            if self.varargs is None:
                raise RequestRefused(
                    "bad_request",
                    f"{self.name} takes {len(order)} argument(s) after its bound ones, not"
                    f" {len(items)}; send a JSON array of {len(order)}.",
                )
            varargs = self.varargs
            for item in items[len(order) :]:
                if varargs.adapter is None:
                    extras.append(item)
                else:
                    holder: dict[str, t.Any] = {}
                    _validate(varargs, item, holder, errors)
                    extras.append(holder.get(varargs.name))
        for param, item in zip(order, items, strict=False):
            _validate(param, item, values, errors)
        given = {p.name for p in order[: len(items)]}
        for param in self._rest[taken]:
            if param.name in given:
                continue
            if param.source == "request":
                values[param.name] = _REQUEST
                continue
            default = param.missing()
            if default is not _MISSING:
                values[param.name] = default
            elif param.source == "form":
                values[param.name] = MultiDict()
            elif param.adapter is not None or param.source == "model":
                errors[param.name] = "Field required"
            else:
                raise RequestRefused(
                    "bad_request",
                    f"{self.name} takes {len(order)} argument(s) after its bound ones, not"
                    f" {len(items)}; send a JSON array of {len(order)}.",
                )

    def _invocation(
        self, values: dict[str, t.Any], extras: list[t.Any], environ: WSGIEnvironment
    ) -> Invocation:
        """By keyword wherever the signature allows (a ``**kwargs`` wrapper works)."""
        if extras:
            args = [values.pop(p.name) for p in self.positional] + extras
        elif self.positional_only:
            args = [values.pop(p.name) for p in self.positional_only]
        else:
            args = []
        return Invocation(self.fn, args, values, environ, requests=bool(self.requests))


def _message(error: t.Any) -> str:
    """A validation error's message; a validator's own ``ValueError`` text as it was written."""
    if error["type"] in ("value_error", "assertion_error") and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return str(error["msg"])


def _validate(param: _Param, raw: t.Any, values: dict[str, t.Any], errors: dict[str, str]) -> None:
    if param.adapter is None:
        values[param.name] = raw
        return
    try:
        values[param.name] = param.adapter.validate_python(raw)
    except pydantic.ValidationError as e:
        for error in e.errors(include_url=False, include_input=False):
            loc = error["loc"]
            key = str(loc[0]) if param.source == "model" and loc else param.name
            errors.setdefault(key, _message(error))


class Invocation:
    """An action call ready to run (an :class:`ActionCall`).

    ``invocation(request=...)`` runs it; the framework's request goes to parameters named
    ``request`` (without one, a :class:`werkzeug.wrappers.Request` for the environ).
    """

    __slots__ = ("fn", "args", "kwargs", "environ", "requests")

    def __init__(
        self,
        fn: t.Callable[..., t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
        environ: WSGIEnvironment,
        requests: bool = False,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.environ = environ
        #: Whether a parameter takes the request.
        self.requests = requests

    def __call__(self, *, request: t.Any = None) -> t.Any:
        args, kwargs = self.args, self.kwargs
        if self.requests:
            if request is None:
                request = Request(self.environ)
            args = [request if a is _REQUEST else a for a in args]
            kwargs = {k: request if v is _REQUEST else v for k, v in kwargs.items()}
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Invocation {getattr(self.fn, '__qualname__', self.fn)!r}>"
