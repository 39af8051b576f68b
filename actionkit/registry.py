"""Actions and the registry that finds them by ID.

An action is a plain Python function registered under an ID. The page names it in a form (its
hidden field, or the ``name`` of a submit button); the browser posts the form to the page; the
middleware looks the ID up in its :class:`Registry` and calls the function.

.. code-block:: python

    from actionkit import action, revalidate_path, redirect

    @action
    def create_post(form):
        db.insert(form["title"], form["content"])
        revalidate_path("/posts")
        redirect("/posts")

IDs are derived from the function's module and qualified name, so every worker process computes
the same ID without configuration and restarts keep it, while the ID itself does not show the
name. ``@action(id="create-post")`` gives a public, stable ID of your choosing instead.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
import typing as t

import typing_extensions
from markupsafe import Markup, escape

from . import security
from .context import current as _current_context
from .exceptions import DuplicateActionError
from .identity import ID_RE, check_replacement, derive_id, qualified_name, refuse_methods
from .params import Parameters
from .protocol import ACTION_FIELD_PREFIX

__all__ = ["Action", "DuplicateActionError", "Registry", "action", "default_registry", "use_server"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
# The parameters and result of an action's function. The defaults keep a bare ``Action`` valid
# for type checkers: ``Action[..., Any]``.
P = typing_extensions.ParamSpec("P", default=...)
R = typing_extensions.TypeVar("R", default=t.Any)


class Action(t.Generic[P, R]):
    """A registered function, callable as itself, with the helpers to name it in a page.

    ``bind(*args)`` gives a copy whose arguments are sealed into its form field and passed first
    when it runs, as ``Function.prototype.bind`` does for Next.js server actions.

    For type checkers an ``Action[P, R]`` keeps the function's parameters and result: on
    ``def like(post_id: int) -> int``, ``like("one")`` is an error and ``like(1)`` an ``int``.
    """

    __slots__ = ("fn", "id", "bound_args", "token", "under", "_name_html", "__dict__")
    #: Django's template language leaves it uncalled: ``{{ create_post.field }}`` is the field.
    do_not_call_in_templates = True

    def __init__(
        self,
        fn: t.Callable[P, R],
        id: str,
        bound_args: tuple[t.Any, ...] = (),
        token: str = "",
        under: str | None = None,
    ) -> None:
        self.fn = fn
        self.id = id
        self.bound_args = bound_args
        #: The sealed bound arguments, sent back as the form field's value ("" when unbound).
        self.token = token
        #: The path the action runs at or below (``@action(under="/admin/")``), or ``None``.
        self.under = under
        self._name_html = str(escape(ACTION_FIELD_PREFIX + id))
        # The copies bind() made, by key and arguments (shared with the copies; bounded).
        self._copies: dict[tuple[t.Any, ...], Action[..., R]] = {}
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        """The function's name (for ``actionkit_script(expose=...)``)."""
        return str(getattr(self.fn, "__name__", self.id))

    @functools.cached_property
    def parameters(self) -> Parameters:
        """The function's compiled signature: where each value of a request goes
        (:mod:`actionkit.params`). Compiled on first use, shared by the bound copies."""
        return Parameters(self.fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        fn = t.cast("t.Callable[..., R]", self.fn)
        return fn(*self.bound_args, *args, **kwargs)

    def bind(self, *args: t.Any) -> Action[..., R]:
        """A copy with ``args`` bound in front of the arguments it will be called with.

        The arguments must be JSON values; they are encrypted with the secret key, so the page
        can carry them without the browser reading or changing them. Those bound to
        :data:`~actionkit.Bound` parameters are validated against their type first.

        :raises ValueError: a value that is not of its ``Bound`` parameter's type, or more
            values than the action has parameters to bind them to.
        """
        arguments = self.bound_args + args
        key = _current_key()
        memo: tuple[t.Any, ...] | None = None
        types = tuple(map(type, arguments))
        if security.SCALARS.issuperset(types):
            # A page binds the same IDs on every render: the same arguments, of the same types
            # (1, 1.0 and True are equal keys), with the same key give the same copy.
            sealing = key if key is None or type(key) in _KEY_TYPES else tuple(key)
            memo = (sealing, arguments, types)
            found = self._copies.get(memo)
            if found is not None:
                return found
        bound, sealed = self.parameters.seal(arguments)
        token = security.encrypt_args(self.id, sealed, key)
        # A page binds an action per item it lists: copy the wrapper's attributes rather than
        # running functools.update_wrapper again.
        copy: Action[..., R] = Action.__new__(Action)
        copy.fn, copy.id, copy.bound_args, copy.token = self.fn, self.id, bound, token
        copy.under = self.under
        copy._name_html = self._name_html
        copy.__dict__.update(self.__dict__)
        if memo is not None:
            if len(self._copies) >= _MARKUP_CACHE_SIZE:
                self._copies.clear()
            self._copies[memo] = copy
        return copy

    def field(self) -> Markup:
        """The hidden input that makes the enclosing form submit this action."""
        key = (self.id, self.token)
        markup = _fields.get(key)
        if markup is None:
            markup = Markup(
                f'<input type="hidden" name="{self._name_html}" value="{escape(self.token)}">'
            )
            _remember(_fields, key, markup)
        return markup

    def button_attrs(self) -> Markup:
        """Attributes for a submit button that runs this action (one form, several actions)."""
        key = (self.id, self.token)
        markup = _buttons.get(key)
        if markup is None:
            value = escape(self.token)
            markup = Markup(
                f'type="submit" name="{self._name_html}" value="{value}" formmethod="post"'
            )
            _remember(_buttons, key, markup)
        return markup

    @property
    def field_name(self) -> str:
        return ACTION_FIELD_PREFIX + self.id

    def __html__(self) -> str:
        return str(escape(self.id))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return self.id == other.id and self.bound_args == other.bound_args

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        bound = f" bound={self.bound_args!r}" if self.bound_args else ""
        return f"<Action {self.name!r} id={self.id!r}{bound}>"


# The markup of field() and button_attrs() by (action ID, token): a page of bound buttons renders
# the same ones on every request (a token is the same for the same arguments, see
# security.encrypt_args), so each is built once. Bounded: emptied when full.
_MARKUP_CACHE_SIZE = 4096
_fields: dict[tuple[str, str], Markup] = {}
_buttons: dict[tuple[str, str], Markup] = {}


def _remember(cache: dict[tuple[str, str], Markup], key: tuple[str, str], markup: Markup) -> None:
    if len(cache) >= _MARKUP_CACHE_SIZE:
        cache.clear()
    cache[key] = markup


_KEY_TYPES = frozenset((str, bytes))


def _current_key() -> security.SecretKey | None:
    ctx = _current_context()
    key = None if ctx is None else ctx.secret_key
    return key if key is not None else security.resolve_key()


class Registry:
    """A set of actions, looked up by ID.

    The :func:`action` decorator registers into :data:`default_registry` unless given another;
    give a middleware its own registry to expose only some actions to one application.
    """

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}

    def register(
        self, fn: t.Callable[..., t.Any], *, id: str | None = None, under: str | None = None
    ) -> Action:
        """Register ``fn`` and return its :class:`Action`.

        :param id: a public, stable ID instead of the derived one.
        :param under: run the action only when it is posted to a page at or below this path
            (see :func:`action`).
        :raises DuplicateActionError: another function already has this ID.
        """
        if under is not None and (not isinstance(under, str) or not under.startswith("/")):
            raise ValueError(
                f"under= takes a path starting with '/', such as '/admin/', not {under!r}."
            )
        if isinstance(fn, Action):
            fn = fn.fn
        if not callable(fn):
            raise TypeError(f"An action must be a function, not {fn!r}.")
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"{qualified_name(fn)} is 'async def'; actionkit runs actions synchronously,"
                " define it with plain 'def'."
            )
        if id is None:
            action_id = derive_id(fn)
        elif isinstance(id, str) and ID_RE.fullmatch(id):
            action_id = id
        else:
            raise ValueError(
                f"Invalid action id {id!r}: use 1-128 letters, digits, '_', '.', ':' or '-'."
            )
        refuse_methods(fn)
        existing = self._actions.get(action_id)
        if existing is not None:
            if existing.fn is fn:
                return existing  # registered again (use_server after @action)
            check_replacement(action_id, existing.fn, fn)
        new = Action(fn, action_id, under=under)
        self._actions[action_id] = new
        return new

    @t.overload
    def action(
        self, fn: t.Callable[P, R], /, *, id: str | None = None, under: str | None = None
    ) -> Action[P, R]: ...
    @t.overload
    def action(
        self, fn: None = None, /, *, id: str | None = None, under: str | None = None
    ) -> t.Callable[[t.Callable[P, R]], Action[P, R]]: ...
    def action(
        self,
        fn: t.Callable[..., t.Any] | None = None,
        /,
        *,
        id: str | None = None,
        under: str | None = None,
    ) -> Action | t.Callable[[t.Callable[..., t.Any]], Action]:
        """Decorator: register a function in this registry (``@registry.action``)."""
        if fn is not None:
            return self.register(fn, id=id, under=under)
        return functools.partial(self.register, id=id, under=under)

    def use_server(self, module: types.ModuleType | str) -> dict[str, Action]:
        """Register every public function defined in ``module`` (a "use server" file).

        Each module attribute is replaced by its :class:`Action`, so ``actions.create_post``
        has ``.field()`` and ``.bind()``. Functions imported from elsewhere, and names starting
        with ``_``, are left alone. Call it at the end of the module (``use_server(__name__)``)
        or where the module is imported.
        """
        if isinstance(module, str):
            try:
                module = sys.modules[module]
            except KeyError:
                raise ValueError(f"Module {module!r} is not imported; import it first.") from None
        registered: dict[str, Action] = {}
        for name, value in list(vars(module).items()):
            if name.startswith("_"):
                continue
            fn = value.fn if isinstance(value, Action) else value
            if not inspect.isfunction(fn) or fn.__module__ != module.__name__:
                continue
            if isinstance(value, Action):
                registered[name] = self.get(value.id) or self.register(fn, id=value.id)
            else:
                registered[name] = self.register(fn)
            setattr(module, name, registered[name])
        return registered

    def get(self, action_id: str) -> Action | None:
        """The action registered under ``action_id``, or ``None``."""
        return self._actions.get(action_id)

    def __getitem__(self, action_id: str) -> Action:
        return self._actions[action_id]

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._actions

    def __iter__(self) -> t.Iterator[Action]:
        return iter(list(self._actions.values()))

    def __len__(self) -> int:
        return len(self._actions)

    def __repr__(self) -> str:
        names = ", ".join(sorted(a.name for a in self._actions.values()))
        return f"<Registry of {len(self._actions)} action(s): {names}>"


#: The registry :func:`action` and :func:`use_server` use unless given another.
default_registry = Registry()


@t.overload
def action(
    fn: t.Callable[P, R],
    /,
    *,
    id: str | None = None,
    under: str | None = None,
    registry: Registry | None = None,
) -> Action[P, R]: ...
@t.overload
def action(
    fn: None = None,
    /,
    *,
    id: str | None = None,
    under: str | None = None,
    registry: Registry | None = None,
) -> t.Callable[[t.Callable[P, R]], Action[P, R]]: ...
def action(
    fn: t.Callable[..., t.Any] | None = None,
    /,
    *,
    id: str | None = None,
    under: str | None = None,
    registry: Registry | None = None,
) -> Action | t.Callable[[t.Callable[..., t.Any]], Action]:
    """Register a function as an action: ``@action`` or ``@action(id="create-post")``.

    The result is an :class:`Action`, still callable as the function itself, and typed as it
    (``Action[P, R]``).

    An action is a public endpoint: any page can post to it, so validate and authorize inside
    it. ``under="/admin/"`` scopes it: it runs only when posted to a page at or below that path
    (so that path's guards, such as a Flask blueprint's ``before_request``, run first), and is
    refused with 404, running nothing, anywhere else.

    :param id: a public, stable ID instead of the derived one.
    :param under: the path the action runs at or below.
    :param registry: register here instead of :data:`default_registry`.
    """
    target = default_registry if registry is None else registry
    if fn is None:
        return functools.partial(target.register, id=id, under=under)
    return target.register(fn, id=id, under=under)


def use_server(
    module: types.ModuleType | str, *, registry: Registry | None = None
) -> dict[str, Action]:
    """Register every public function of ``module`` as an action, like a "use server" file.

    .. code-block:: python

        # app/actions.py
        def create_post(form): ...
        def delete_post(post_id, form): ...

        use_server(__name__)
    """
    return (default_registry if registry is None else registry).use_server(module)
