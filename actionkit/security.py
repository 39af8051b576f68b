"""The secret key, encrypted bound arguments and the cross-site check.

Bound arguments (``Action.bind(post.id)``) travel to the browser and back in the value of the
action's form field. They are encrypted and authenticated with AES-GCM under a key derived from
the deployment's secret key, with the action ID as associated data: the browser can neither read
nor change them, nor move a token from one action to another. Only JSON values are ever encoded,
so decoding a token can never build anything but plain data.

The secret key comes from ``ActionMiddleware(secret_key=...)`` (Flask: ``app.secret_key``), else
from the ``ACTIONKIT_SECRET_KEY`` environment variable. Every worker of a deployment must share it.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
import json
import os
import typing as t
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

SecretKey = str | bytes

ENV_SECRET_KEY = "ACTIONKIT_SECRET_KEY"
_TOKEN_VERSION = b"\x01"
_NONCE_SIZE = 12
# Tokens kept per process for the arguments sealed most recently (see encrypt_args).
_SEALED_CACHE_SIZE = 8192
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_SCALARS = frozenset((str, int, float, bool, type(None)))


class SecretKeyMissing(RuntimeError):
    """Raised when bound arguments must be encrypted or decrypted and no secret key is set."""

    def __init__(self) -> None:
        super().__init__(
            "No secret key to encrypt bound action arguments: pass"
            " ActionMiddleware(app, secret_key=...), set app.secret_key with the Flask extension,"
            f" or set the {ENV_SECRET_KEY} environment variable (the same value in every worker;"
            " generate one with: python -c 'import secrets; print(secrets.token_hex(32))')."
        )


class BadToken(ValueError):
    """A bound-arguments token that was changed, belongs to another action or key, or is junk."""


# The key set by the most recently created middleware, used outside requests (``bind()`` at
# import time, in a CLI command). Inside a request the middleware's own key is used.
_process_key: SecretKey | None = None


def set_process_key(key: SecretKey | None) -> None:
    global _process_key
    if key is not None:
        _process_key = key


def resolve_key(explicit: SecretKey | None = None) -> SecretKey | None:
    """The secret key to use: ``explicit``, else the process's configured key, else the env."""
    if explicit is not None:
        return explicit
    if _process_key is not None:
        return _process_key
    return os.environ.get(ENV_SECRET_KEY) or None


@functools.lru_cache(maxsize=8)
def _aead(key: SecretKey) -> AESGCM:
    raw = key.encode() if isinstance(key, str) else key
    if not raw:
        raise SecretKeyMissing()
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"actionkit.bind.v1"
    ).derive(raw)
    return AESGCM(derived)


def encrypt_args(action_id: str, args: tuple[t.Any, ...], key: SecretKey | None) -> str:
    """Encrypt ``args`` for ``action_id``; the token is URL-safe base64 text.

    A process seals the same arguments for the same action and key once and gives the same token
    again (a bounded cache): a page renders its tokens without encrypting anything after the
    first time, and the page comes out byte for byte the same on every render, so the client's
    morph leaves its forms alone. A token shows the browser that two buttons carry equal
    arguments, never what they are.
    """
    if key is None:
        raise SecretKeyMissing()
    if all(type(arg) in _SCALARS for arg in args):
        # The common case, an ID or two: found by the values and their types (1, 1.0 and True
        # are equal keys in a dict, and different JSON).
        return _seal_scalars(key, action_id, args, tuple(map(type, args)))
    return _seal(key, action_id, _json(args))


@functools.lru_cache(maxsize=_SEALED_CACHE_SIZE)
def _seal_scalars(
    key: SecretKey, action_id: str, args: tuple[t.Any, ...], types: tuple[type, ...]
) -> str:
    return _seal(key, action_id, _json(args))


def _json(args: tuple[t.Any, ...]) -> str:
    try:
        return _ENCODER.encode(list(args))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"Bound arguments must be JSON values (str, int, float, bool, None, list, dict),"
            f" got {args!r}: {e}"
        ) from None


@functools.lru_cache(maxsize=_SEALED_CACHE_SIZE)
def _seal(key: SecretKey, action_id: str, plain: str) -> str:
    nonce = os.urandom(_NONCE_SIZE)
    sealed = _aead(key).encrypt(nonce, plain.encode(), action_id.encode())
    return base64.urlsafe_b64encode(_TOKEN_VERSION + nonce + sealed).rstrip(b"=").decode()


def decrypt_args(action_id: str, token: str, key: SecretKey | None) -> list[t.Any]:
    """The arguments sealed in ``token`` for ``action_id``; :class:`BadToken` if it is not one."""
    if not token:
        return []
    if key is None:
        raise SecretKeyMissing()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadToken("The bound-arguments token is not base64.") from None
    if len(raw) < 1 + _NONCE_SIZE + 16 or raw[:1] != _TOKEN_VERSION:
        raise BadToken("The bound-arguments token has the wrong format.")
    nonce, sealed = raw[1 : 1 + _NONCE_SIZE], raw[1 + _NONCE_SIZE :]
    try:
        plain = _aead(key).decrypt(nonce, sealed, action_id.encode())
    except InvalidTag:
        raise BadToken(
            "The bound-arguments token does not verify: changed, made for another action,"
            " or sealed with another secret key."
        ) from None
    args = json.loads(plain)
    if not isinstance(args, list):
        raise BadToken("The bound-arguments token does not hold a list.")
    return args


# -- cross-site requests ----------------------------------------------------------------------

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _normalize_host(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and host.endswith(":" + default):
        host = host[: -len(default) - 1]
    return host


def request_host(environ: WSGIEnvironment, trust_forwarded: bool) -> str:
    """The host the browser addressed (``X-Forwarded-Host`` only when trusted)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = None
    if trust_forwarded:
        forwarded = environ.get("HTTP_X_FORWARDED_HOST")
        if forwarded:
            host = forwarded.split(",", 1)[0]
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        if proto:
            scheme = proto.split(",", 1)[0].strip().lower()
    if host is None:
        host = environ.get("HTTP_HOST")
    if host is None:
        host = f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    return _normalize_host(host, scheme)


def _origin_host(origin: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.scheme, _normalize_host(parts.netloc, parts.scheme)


def is_same_origin(
    environ: WSGIEnvironment, allowed_origins: t.Sequence[str], trust_forwarded: bool
) -> bool:
    """Whether an action request may run: it comes from the page's own host or an allowed one.

    ``Origin`` decides, else ``Referer``; a request with neither (a program, not a browser) is
    allowed. ``Sec-Fetch-Site: cross-site`` is always refused. ``allowed_origins`` holds origins
    (``https://app.example.com``) or host patterns (``*.example.com``).
    """
    if environ.get("HTTP_SEC_FETCH_SITE") == "cross-site":
        return False
    origin = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER")
    if origin is None:
        return True
    parsed = _origin_host(origin)
    if parsed is None:  # "null" (sandboxed frames, file://) or junk
        return False
    scheme, host = parsed
    if host == request_host(environ, trust_forwarded):
        return True
    for allowed in allowed_origins:
        if "://" in allowed:
            allowed_parsed = _origin_host(allowed)
            if allowed_parsed == (scheme, host):
                return True
        elif fnmatch.fnmatchcase(host, allowed.lower()):
            return True
    return False
