"""Every exception actionkit raises, in one place.

Errors derive from :class:`ActionKitError`, so ``except ActionKitError`` catches any of them:

- :class:`RequestRefused`: an action request refused before its action ran (its ``code`` and
  ``status`` are those of the error answer, see :mod:`actionkit.protocol`);
- :class:`BadToken`: a bound-arguments token that does not verify (``action_id`` says for which
  action);
- :class:`DuplicateActionError`: two functions claim one action ID;
- :class:`SecretKeyMissing`: bound arguments are sealed or opened and no key is configured;
- :class:`InvalidArguments`: a request's values do not validate against the action's annotations
  (answered as ``fail(422, {"errors": ...})``, the action not run).

The control-flow signals are different: :func:`~actionkit.redirect`, :func:`~actionkit.not_found`
and the other functions that end an action raise an :class:`ActionSignal`, which derives from
:class:`BaseException` rather than :class:`Exception`, so that a broad ``except Exception:`` in an
action cannot swallow it by accident (a known pitfall of Next.js's ``redirect()``).
"""

from __future__ import annotations

import typing as t

from .protocol import ERROR_STATUS, error_code

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

RedirectType = t.Literal["push", "replace"]

#: Where a missing secret key can be configured, shown by :class:`SecretKeyMissing`.
_KEY_HELP = (
    "pass ActionMiddleware(app, secret_key=...), set app.secret_key with the Flask extension,"
    " or set the ACTIONKIT_SECRET_KEY environment variable (the same value in every worker;"
    " generate one with: python -c 'import secrets; print(secrets.token_hex(32))')."
)


class ActionKitError(Exception):
    """The base class of every error actionkit raises (the control-flow signals aside)."""


class RequestRefused(ActionKitError):
    """An action request that is refused before its action runs.

    :param code: the error code of the answer (a key of :data:`~actionkit.protocol.ERROR_STATUS`).
    :param message: one sentence for the person reading the answer or the log.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message


class BadToken(ActionKitError, ValueError):
    """A bound-arguments token that was changed, belongs to another action or key, or is junk.

    :param action_id: the action the token was presented for, when known.
    """

    def __init__(self, message: str, action_id: str | None = None) -> None:
        super().__init__(message)
        self.action_id = action_id


class DuplicateActionError(ActionKitError, ValueError):
    """Two different functions claim the same action ID."""

    def __init__(self, action_id: str, existing: str, new: str, hint: str = "") -> None:
        super().__init__(
            f"Action ID {action_id!r} is already taken by {existing}; {new} cannot register"
            " under it. "
            + (hint or "Give one of them another id=, or register it in another Registry.")
        )
        self.action_id = action_id
        self.existing = existing
        self.new = new


class SecretKeyMissing(ActionKitError, RuntimeError):
    """Raised when bound arguments must be encrypted or decrypted and no secret key is set."""

    def __init__(self) -> None:
        super().__init__(f"No secret key to encrypt bound action arguments: {_KEY_HELP}")


class InvalidArguments(ActionKitError, ValueError):
    """A request's values that do not validate against the action's parameters.

    :param errors: a message for each parameter (or model field) that failed, by name.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        names = ", ".join(repr(name) for name in errors)
        super().__init__(f"The action's arguments do not validate: {names}.")
        self.errors = errors


# -- ending an action (control flow, not errors) ----------------------------------------------


class ActionSignal(BaseException):
    """Ends an action early. Raised by :func:`~actionkit.redirect` and friends; never caught by
    user code."""


class RedirectSignal(ActionSignal):
    """Raised by :func:`~actionkit.redirect` and :func:`~actionkit.permanent_redirect`."""

    def __init__(self, url: str, type: RedirectType, status: int) -> None:
        super().__init__(url)
        self.url = url
        self.type = type
        self.status = status


class HTTPSignal(ActionSignal):
    """Raised by :func:`~actionkit.not_found`, :func:`~actionkit.forbidden` and
    :func:`~actionkit.unauthorized` (and by a framework adapter for its own error answers).

    :param status: the status of the answer.
    :param page: the page to show a browser without JavaScript (a WSGI application, such as a
        framework's response); ``None``: the application's error page for ``status``.
    :param message: the message of the client script's answer (what the page says, such as
        ``abort(404, "No such post.")``'s); ``None``: the status's reason phrase.
    """

    def __init__(
        self, status: int, page: WSGIApplication | None = None, message: str | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.code = error_code(status)
        self.page = page
        self.message = message
