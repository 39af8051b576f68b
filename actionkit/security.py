"""The secret key, encrypted bound arguments and the cross-site check.

Bound arguments (``Action.bind(post.id)``) travel to the browser and back in the value of the
action's form field. They are encrypted and authenticated with AES-GCM under a key derived from
the deployment's secret key, with the action ID as associated data: the browser can neither read
nor change them, nor move a token from one action to another. Only JSON values are ever encoded,
so decoding a token can never build anything but plain data.

The secret key comes from ``ActionMiddleware(secret_key=...)`` (Flask: ``app.secret_key``), else
from the ``ACTIONKIT_SECRET_KEY`` environment variable. Every worker of a deployment must share it.

Keys rotate: give a list, ``[new, old]``. The first key seals, every key opens, so pages rendered
before a deploy that changed the key keep working while the old key is listed. The environment
variable takes the same list separated by commas (``ACTIONKIT_SECRET_KEY=<new key>,<old key>``,
spaces around the commas ignored). A key containing a comma cannot be given that way: pass it with
``secret_key=`` in code. So that a passphrase with commas is not silently cut into short keys,
every key of a comma-separated value must be at least 16 characters long; generated keys
(``secrets.token_hex(32)``, ``secrets.token_urlsafe()``) never contain commas.

A token is accepted only in the one form :func:`encrypt_args` writes: URL-safe base64 without
padding. Padding, the standard alphabet's ``+`` and ``/``, or any other character make it a
:class:`BadToken`, so a token has exactly one spelling.
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

from .context import request_scheme
from .exceptions import BadToken, SecretKeyMissing

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: A secret key, or a sequence of them (``[new, old]``): the first seals, every one opens.
SecretKey = str | bytes | t.Sequence[str | bytes]

ENV_SECRET_KEY = "ACTIONKIT_SECRET_KEY"
#: What separates the keys of a rotation in ``ACTIONKIT_SECRET_KEY``.
ENV_KEY_SEPARATOR = ","
#: The shortest key accepted in a comma-separated ``ACTIONKIT_SECRET_KEY`` (see the module).
_MIN_LISTED_KEY = 16
_TOKEN_VERSION = b"\x01"
_NONCE_SIZE = 12
# Tokens kept per process for the arguments sealed most recently (see encrypt_args).
_SEALED_CACHE_SIZE = 8192
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: The types of bound arguments whose tokens and bound copies are kept by value.
SCALARS = frozenset((str, int, float, bool, type(None)))


# The key set by the most recently created middleware, used outside requests (``bind()`` at
# import time, in a CLI command). Inside a request the middleware's own key is used.
_process_key: SecretKey | None = None


def set_process_key(key: SecretKey | None) -> None:
    """Make ``key`` the key used outside requests (``None`` leaves the current one)."""
    global _process_key
    if key is not None:
        _process_key = key


def resolve_key(explicit: SecretKey | None = None) -> SecretKey | None:
    """The secret key to use: ``explicit``, else the process's configured key, else the env.

    A comma-separated ``ACTIONKIT_SECRET_KEY`` gives a tuple of keys (see the module); a
    value without a comma is the key itself.
    """
    if explicit is not None:
        return explicit
    if _process_key is not None:
        return _process_key
    value = os.environ.get(ENV_SECRET_KEY)
    return _env_keys(value) if value else None


@functools.lru_cache(maxsize=4)
def _env_keys(value: str) -> SecretKey:
    """The key or keys in the value of ``ACTIONKIT_SECRET_KEY`` (parsed once per value)."""
    if ENV_KEY_SEPARATOR not in value:
        return value
    keys = tuple(part.strip() for part in value.split(ENV_KEY_SEPARATOR))
    for number, key in enumerate(keys, 1):
        if len(key) < _MIN_LISTED_KEY:
            raise ValueError(
                f"Key {number} of the comma-separated {ENV_SECRET_KEY} has {len(key)}"
                f" characters, fewer than {_MIN_LISTED_KEY}; separate keys of at least"
                f" {_MIN_LISTED_KEY} characters with commas, or pass a key that contains a comma"
                " with ActionMiddleware(secret_key=...)."
            )
    return keys


def _keys(key: SecretKey) -> tuple[str | bytes, ...]:
    """The keys of ``key``, the sealing one first; :class:`SecretKeyMissing` if it has none."""
    keys: tuple[str | bytes, ...] = (key,) if isinstance(key, str | bytes) else tuple(key)
    if not keys:
        raise SecretKeyMissing()
    for item in keys:
        if not isinstance(item, str | bytes):
            raise TypeError(
                f"A secret key must be str or bytes, not {type(item).__name__} ({item!r});"
                " give one key or a list of keys, the current one first."
            )
    return keys


@functools.lru_cache(maxsize=8)
def _aead(key: str | bytes) -> AESGCM:
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
    # Sealed with the first key only, so the caches below are keyed by it alone.
    sealing = key if isinstance(key, str | bytes) else _keys(key)[0]
    if all(type(arg) in SCALARS for arg in args):
        # The common case, an ID or two: found by the values and their types (1, 1.0 and True
        # are equal keys in a dict, and different JSON).
        return _seal_scalars(sealing, action_id, args, tuple(map(type, args)))
    return _seal(sealing, action_id, _json(args))


@functools.lru_cache(maxsize=_SEALED_CACHE_SIZE)
def _seal_scalars(
    key: str | bytes, action_id: str, args: tuple[t.Any, ...], types: tuple[type, ...]
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
def _seal(key: str | bytes, action_id: str, plain: str) -> str:
    nonce = os.urandom(_NONCE_SIZE)
    sealed = _aead(key).encrypt(nonce, plain.encode(), action_id.encode())
    return base64.urlsafe_b64encode(_TOKEN_VERSION + nonce + sealed).rstrip(b"=").decode()


def decrypt_args(action_id: str, token: str, key: SecretKey | None) -> list[t.Any]:
    """The arguments sealed in ``token`` for ``action_id``; :class:`BadToken` if it is not one.

    ``key`` may list several keys (see the module): each is tried in turn.
    """
    if not token:
        return []
    if key is None:
        raise SecretKeyMissing()
    keys = _keys(key)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadToken("The bound-arguments token is not base64.") from None
    # The decoder skips characters outside its alphabet, takes "+" and "/" as well as "-" and
    # "_", and ignores padding and the unused bits of the last character: only the exact text
    # encrypt_args wrote is accepted, so no token has a second spelling.
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode("utf-8", "replace"):
        raise BadToken("The bound-arguments token is not in its canonical URL-safe form.")
    if len(raw) < 1 + _NONCE_SIZE + 16 or raw[:1] != _TOKEN_VERSION:
        raise BadToken("The bound-arguments token has the wrong format.")
    nonce, sealed = raw[1 : 1 + _NONCE_SIZE], raw[1 + _NONCE_SIZE :]
    associated = action_id.encode()
    for candidate in keys:
        try:
            plain = _aead(candidate).decrypt(nonce, sealed, associated)
        except InvalidTag:
            continue
        break
    else:
        raise BadToken(
            "The bound-arguments token does not verify: changed, made for another action,"
            " or sealed with another secret key."
        )
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
    scheme = request_scheme(environ, trust_forwarded)
    host = None
    if trust_forwarded:
        forwarded = environ.get("HTTP_X_FORWARDED_HOST")
        if forwarded:
            host = forwarded.split(",", 1)[0]
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


def origins(allowed: t.Iterable[str]) -> tuple[str, ...]:
    """``allowed_origins`` as given, checked: a string is refused (its characters would be the
    patterns, ``*`` among them for ``"https://*.example.com"``: every host)."""
    if isinstance(allowed, str | bytes):
        raise TypeError(
            f"allowed_origins is a list of origins, not the string {allowed!r}: write"
            f" [{allowed!r}] (in the environment, FLASK_ACTIONKIT_ALLOWED_ORIGINS is read as"
            " JSON: a list in JSON)."
        )
    return tuple(allowed)


def is_same_origin(
    environ: WSGIEnvironment, allowed_origins: t.Sequence[str], trust_forwarded: bool
) -> bool:
    """Whether an action request may run: it comes from the page's own host or an allowed one.

    ``Origin`` decides, else ``Referer``; a request with neither (a program, not a browser) is
    allowed. An ``https`` request from an ``http`` page of the same host is refused.
    ``Sec-Fetch-Site: cross-site`` is always refused. ``allowed_origins`` holds origins
    (``https://app.example.com``) or host patterns (``*.example.com``, of either scheme;
    ``https://*.example.com``, of that one).
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
        # Not from a page on plain http, which anyone on the network can rewrite, to https.
        return scheme == "https" or request_scheme(environ, trust_forwarded) != "https"
    for allowed in allowed_origins:
        wanted, _, pattern = allowed.lower().rpartition("://")
        if wanted and "*" not in pattern:  # an origin
            if _origin_host(allowed) == (scheme, host):
                return True
        elif wanted in ("", scheme) and fnmatch.fnmatchcase(host, pattern):
            return True  # a host pattern, of either scheme unless it names one
    return False
