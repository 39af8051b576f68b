"""An action's parameters: where each value of a request goes, converted and validated.

The signature of an action says what it takes, and it is compiled once (:class:`Parameters`,
cached on the :class:`~actionkit.Action`):

- the leading positional parameters take the arguments sealed by :meth:`~actionkit.Action.bind`,
  in order. Those annotated :data:`Bound` may take nothing else: a request without a valid token
  holding them is refused (``400``) whatever its body says, and ``bind()`` validates what it
  seals against their type. Unmarked ones are filled from the token as they are, unvalidated;
- a form submission fills the others *by name*: ``title: str`` from the field ``title``,
  ``tags: list[str]`` from every ``tags`` value, ``photo: FileStorage`` from the upload,
  ``published: bool`` from a ticked checkbox (any value but a word for no; ``False`` when
  absent, whatever the default), a default when a field is missing or empty. A parameter
  annotated with a pydantic model, a dataclass or a ``TypedDict`` receives the whole form
  validated into it;
- a JSON call fills them *in order* with the array's items;
- a parameter named ``form`` without annotation (or ``Any``, ``dict``, ``Mapping``), or annotated
  ``MultiDict``, receives the raw form (an empty one in a JSON call when it has no default); a
  var-positional parameter receives the form when no parameter takes it (``fn(*args, form)``);
- a parameter named ``request`` receives the framework's request (Flask's ``request``; a
  :class:`werkzeug.wrappers.Request` without a framework), never anything the client sent.

Annotations are converted and validated with pydantic 2, constraints included
(``Annotated[str, MinLen(1)]``, ``Annotated[int, Field(gt=0)]``). Values that fail validation run
nothing (:class:`~actionkit.exceptions.InvalidArguments`): the answer is the one of
``fail(422, {"errors": {name: message}})``. Arguments of the wrong shape (too
many, a required unannotated one missing from a JSON call) are refused with ``400``.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing as t

import pydantic
from pydantic.fields import FieldInfo
from werkzeug.datastructures import MultiDict

from .exceptions import InvalidArguments, RequestRefused
from .fields import (
    MISSING,
    Form,
    ModelField,
    Reader,
    accepts,
    adapter,
    is_multidict,
    message,
    model_fields,
    model_input,
    read_text,
    reader,
    reads_many,
    resolve_hints,
    takes_form,
)
from .invocation import REQUEST as _REQUEST
from .invocation import ActionCall, Invocation

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
    default: t.Any = MISSING
    factory: t.Callable[[], t.Any] | None = None
    reader: Reader = read_text
    fields: tuple[ModelField, ...] = ()

    def missing(self) -> t.Any:
        """The default of a parameter nothing was given for, or ``MISSING``."""
        return self.default if self.factory is None else self.factory()


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
        hints = resolve_hints(self.fn, signature)
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
                default = MISSING if info.is_required() else None
                if not info.is_required():
                    factory = lambda info=info: info.get_default(call_default_factory=True)  # noqa: E731
            metadata = t.get_args(annotation)[1:] if t.get_origin(annotation) is t.Annotated else ()
            is_bound = any(m is BOUND for m in metadata)
            if p.kind is p.VAR_POSITIONAL:
                source = "varargs"
            elif p.name == "request" and not is_bound:
                source = "request"
            elif is_multidict(annotation) or (p.name == "form" and takes_form(annotation)):
                source = "form"
            else:
                source = "value"
            if is_bound and (source == "varargs" or p.kind is p.KEYWORD_ONLY):
                raise TypeError(
                    f"The Bound {where} is filled by bind() in order; make it a positional"
                    " parameter."
                )
            fields = model_fields(annotation) if source == "value" else None
            params.append(
                _Param(
                    name=p.name,
                    source="model" if fields is not None else source,
                    positional=p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD),
                    keyword=p.kind is not p.POSITIONAL_ONLY,
                    bound=is_bound,
                    adapter=adapter(annotation, where) if source in ("value", "varargs") else None,
                    default=default,
                    factory=factory,
                    reader=reader(annotation),
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

        :raises ValueError: a value that is not of its :data:`Bound` parameter's type, or more
            values than the action has parameters to bind them to (no request could run it).
        """
        if self.varargs is None and not self.legacy and len(args) > len(self.slots):
            names = ", ".join(p.name for p in self.slots) or "none"
            raise ValueError(
                f"bind() got {len(args)} arguments for {self.name}, which binds at most"
                f" {len(self.slots)} ({names}), in order."
            )
        if self.legacy or not self.required_bound:
            return args, args
        values, sealed = [], []
        for i, value in enumerate(args):
            param = self.slots[i] if i < len(self.slots) else None
            if param is not None and param.bound and param.adapter is not None:
                try:
                    value = param.adapter.validate_python(value)
                    dumped = param.adapter.dump_python(value, mode="json")
                except ValueError as e:  # (a ValidationError, or bytes that JSON cannot hold)
                    why = message(e.errors()[0]) if isinstance(e, pydantic.ValidationError) else e
                    raise ValueError(
                        f"bind() got {value!r} for the Bound parameter {param.name!r} of"
                        f" {self.name}: {why}; pass a value of its type."
                    ) from None
                values.append(value)
                sealed.append(dumped)
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
            names = ", ".join(repr(p.name) for p in self.slots[: self.required_bound])
            raise RequestRefused(
                "bad_request",
                f"{self.name} takes {names} from bind(), in order; this request carries"
                f" {len(bound)} bound argument(s): render its form from action.bind(...).",
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
                raw = model_input(param.fields, form, param.missing() is not MISSING)
            else:
                raw = param.reader(form, param.name)
            if raw is MISSING:
                raw = param.missing()
                if raw is not MISSING:
                    values[param.name] = raw
                    continue
                if reads_many(param.reader):
                    raw = []
                elif param.name in form and source != "model" and accepts(param.adapter, None):
                    raw = None  # an empty field is a form's only "no value": Optional[int]
                else:
                    errors[param.name] = "Field required"
                    continue
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
            if default is not MISSING:
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
            errors.setdefault(key, message(error))
