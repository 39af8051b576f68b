"""Ending an action, and what the page rendered after it knows of its outcome.

The functions that end an action (:func:`redirect`, :func:`permanent_redirect`,
:func:`not_found`, :func:`forbidden`, :func:`unauthorized`) raise a subclass of
:class:`~actionkit.exceptions.ActionSignal`, which derives from :class:`BaseException` rather than
:class:`Exception`: a broad ``except Exception:`` in an action cannot swallow it by accident.
:func:`fail` is returned, not raised: the page is rendered again with the submission kept, and
:func:`action_state` gives it the outcome.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from . import context
from .exceptions import HTTPSignal, RedirectSignal, RedirectType

if t.TYPE_CHECKING:
    from .registry import Action

_REDIRECT_TYPES = ("push", "replace")


def redirect(url: str, type: RedirectType = "push") -> t.NoReturn:
    """End the action and send the browser to ``url``.

    Without JavaScript the answer is ``303 See Other``; the client script navigates with
    ``history.pushState`` (``type="push"``) or ``replaceState`` (``type="replace"``) and shows
    the page at ``url`` from the same answer.

    .. code-block:: python

        @action
        def create_post(form):
            post = db.insert(form["title"])
            revalidate_path("/posts")
            redirect(f"/posts/{post.id}")
    """
    if type not in _REDIRECT_TYPES:
        raise ValueError(f"Unknown redirect type {type!r}; use 'push' or 'replace'.")
    context.require_action("redirect()")
    raise RedirectSignal(str(url), type, 303)


def permanent_redirect(url: str, type: RedirectType = "push") -> t.NoReturn:
    """Like :func:`redirect`, and answered the same way: ``303 See Other`` without JavaScript,
    as Next.js answers a Server Action. A ``308`` would make the browser post the form again to
    the new URL, where it names the action again (the action would run again, and a target on
    another site would get the form)."""
    if type not in _REDIRECT_TYPES:
        raise ValueError(f"Unknown redirect type {type!r}; use 'push' or 'replace'.")
    context.require_action("permanent_redirect()")
    raise RedirectSignal(str(url), type, 303)


def not_found() -> t.NoReturn:
    """End the action with ``404 Not Found``."""
    context.require_action("not_found()")
    raise HTTPSignal(404)


def forbidden() -> t.NoReturn:
    """End the action with ``403 Forbidden``."""
    context.require_action("forbidden()")
    raise HTTPSignal(403)


def unauthorized() -> t.NoReturn:
    """End the action with ``401 Unauthorized``."""
    context.require_action("unauthorized()")
    raise HTTPSignal(401)


@dataclass(frozen=True)
class Failure:
    """What :func:`fail` returns: a failed submission to answer with ``status``."""

    status: int
    data: t.Any


def fail(status: int = 422, data: t.Any = None) -> Failure:
    """The return value of a failed submission, such as a form with validation errors.

    The page is rendered again with ``status`` and :func:`action_state` gives the template the
    ``data`` and the submitted form, so the errors show next to the fields and nothing typed is
    lost. The client script never resets a form whose action failed.

    .. code-block:: python

        @action
        def create_post(form):
            if not form.get("title"):
                return fail(422, {"title": "A title is required."})
    """
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"fail() takes a 4xx or 5xx status, not {status!r}; 422 is usual.")
    failure = Failure(status, data)
    ctx = context.current()
    if ctx is not None and ctx.in_action:
        ctx.failure = failure  # the middleware logs one that is not returned
    return failure


@dataclass(frozen=True)
class ActionState:
    """What :func:`action_state` returns while the page is re-rendered after an action."""

    #: The action that ran.
    action: Action
    #: Its return value, or the data given to :func:`fail`.
    result: t.Any
    #: The submitted form (``$ACTION_*`` fields removed); empty for a JSON call.
    form: MultiDict[str, t.Any]
    #: Whether the action returned :func:`fail`.
    failed: bool
    #: The status of the answer: 200, or the status given to :func:`fail`.
    status: int

    def value(self, name: str, default: str = "") -> str:
        """The submitted value of the field ``name``, to echo it back into a form."""
        value = self.form.get(name, default)
        return value if isinstance(value, str) else default

    @property
    def errors(self) -> dict[str, t.Any]:
        """The field errors of a failed submission: the ``"errors"`` mapping of the ``fail()``
        data (what typed actions give), else that data when it is a mapping; ``{}`` otherwise.
        """
        if not self.failed or not isinstance(self.result, t.Mapping):
            return {}
        errors = self.result.get("errors")
        return dict(errors if isinstance(errors, t.Mapping) else self.result)

    def error(self, name: str) -> t.Any:
        """The error of the field ``name``: its entry in :attr:`errors`, else in the ``fail()``
        data itself when that is a mapping; ``None`` otherwise."""
        found = self.errors.get(name)
        if found is None and self.failed and isinstance(self.result, t.Mapping):
            found = self.result.get(name)
        return found


class NoState:
    """What :func:`action_state` returns where no action's outcome is shown: falsy, without
    errors or values, so that templates need no guard (``state.error("title")`` is ``None``,
    ``state.value("title")`` is ``""``)."""

    __slots__ = ()
    action = None
    result = None
    failed = False
    status = None

    @property
    def form(self) -> MultiDict[str, t.Any]:
        return MultiDict()

    @property
    def errors(self) -> dict[str, t.Any]:
        return {}

    def value(self, name: str, default: str = "") -> str:
        return default  # as ActionState.value for a field not submitted

    def error(self, name: str) -> None:
        return None

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<NoState>"


#: The empty state (see :class:`NoState`).
NO_STATE = NoState()


def action_state(action: Action | None = None) -> ActionState | NoState:
    """The outcome of the action that was just submitted, while its page is rendered again.

    Elsewhere, and when ``action`` is given unless it was that action (bound copies count as
    their action), an empty :class:`~actionkit.NoState`: falsy, its ``failed`` false, its
    ``error(name)`` ``None`` and its ``value(name)`` ``""``. Templates use it to show errors
    and keep submitted values::

        {% set state = action_state(create_post) %}
        <input name="title" value="{{ state.value('title') or '' }}">
        {% if state.error('title') %}<p class="error">{{ state.error('title') }}</p>{% endif %}
    """
    ctx = context.current()
    state = None if ctx is None else ctx.state
    if not isinstance(state, ActionState):
        return NO_STATE
    if action is not None and state.action.id != action.id:
        return NO_STATE
    return state
