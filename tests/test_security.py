from __future__ import annotations

import base64

import pytest

from actionkit import security
from actionkit.security import (
    _SEALED_CACHE_SIZE,
    BadToken,
    SecretKeyMissing,
    decrypt_args,
    encrypt_args,
)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="empty"),
        pytest.param((1, "two", None, True, 2.5), id="scalars"),
        pytest.param(({"a": [1, {"b": "c"}]},), id="nested"),
    ],
)
def test_round_trip(args: tuple[object, ...]) -> None:
    """What is sealed for an action is what comes out for it (as JSON values)."""
    token = encrypt_args("act", args, "key")
    assert decrypt_args("act", token, "key") == list(args)


def test_tokens_are_sealed_once_per_process() -> None:
    """The same arguments for the same action and key give the same token (pages render the
    same bytes); other arguments, actions or keys give another, with its own nonce."""
    token = encrypt_args("act", (1,), "key")
    assert encrypt_args("act", (1,), "key") == token
    others = {
        encrypt_args("act", (2,), "key"),
        encrypt_args("act", ("1",), "key"),
        encrypt_args("other", (1,), "key"),
        encrypt_args("act", (1,), "other key"),
    }
    assert token not in others and len(others) == 4
    nonces = {base64.urlsafe_b64decode(tok + "==")[1:13] for tok in (token, *others)}
    assert len(nonces) == 5


def test_sealed_cache_is_bounded() -> None:
    """Past its size the cache forgets the oldest tokens and seals those arguments anew,
    with a fresh nonce."""
    first = encrypt_args("bounded", (0,), "key")
    for n in range(1, _SEALED_CACHE_SIZE + 1):
        encrypt_args("bounded", (n,), "key")
    again = encrypt_args("bounded", (0,), "key")
    assert again != first
    assert decrypt_args("bounded", again, "key") == decrypt_args("bounded", first, "key") == [0]


@pytest.mark.parametrize(
    ("action_id", "key", "mangle"),
    [
        pytest.param("other", "key", lambda tok: tok, id="other-action"),
        pytest.param("act", "other key", lambda tok: tok, id="other-key"),
        pytest.param(
            "act",
            "key",
            lambda tok: tok[:-2] + ("A" if tok[-2] != "A" else "B") + tok[-1],
            id="changed",
        ),
        pytest.param("act", "key", lambda tok: tok[:10], id="truncated"),
        pytest.param("act", "key", lambda tok: "!!not base64!!", id="junk"),
        pytest.param("act", "key", lambda tok: "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", id="version"),
    ],
)
def test_bad_tokens_are_refused(action_id: str, key: str, mangle: object) -> None:
    """A token moved to another action, sealed with another key, or changed is refused."""
    token = encrypt_args("act", (1,), "key")
    with pytest.raises(BadToken):
        decrypt_args(action_id, mangle(token), key)  # type: ignore[operator]


def test_empty_token_means_no_arguments() -> None:
    """An unbound action's field has an empty value: no arguments, no key needed."""
    assert decrypt_args("act", "", None) == []


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sealing or opening without a key raises SecretKeyMissing with the fix."""
    with pytest.raises(SecretKeyMissing, match="secret_key"):
        encrypt_args("act", (1,), None)
    with pytest.raises(SecretKeyMissing):
        decrypt_args("act", "abc", None)
    with pytest.raises(SecretKeyMissing):
        encrypt_args("act", (1,), b"")


def test_resolve_key_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit key wins, then the process key, then ACTIONKIT_SECRET_KEY."""
    monkeypatch.setattr(security, "_process_key", None)
    monkeypatch.setenv("ACTIONKIT_SECRET_KEY", "from-env")
    assert security.resolve_key() == "from-env"
    security.set_process_key("from-middleware")
    assert security.resolve_key() == "from-middleware"
    assert security.resolve_key("explicit") == "explicit"
    security.set_process_key(None)  # None never unsets a configured key
    assert security.resolve_key() == "from-middleware"


@pytest.mark.parametrize(
    ("environ", "trust", "host"),
    [
        pytest.param({"HTTP_HOST": "Example.com:80"}, False, "example.com", id="default-port"),
        pytest.param(
            {"HTTP_HOST": "a:8000", "wsgi.url_scheme": "https"}, False, "a:8000", id="port"
        ),
        pytest.param({"SERVER_NAME": "srv", "SERVER_PORT": "80"}, False, "srv", id="no-host"),
        pytest.param(
            {"HTTP_HOST": "internal", "HTTP_X_FORWARDED_HOST": "public.example, x"},
            True,
            "public.example",
            id="forwarded",
        ),
        pytest.param(
            {
                "HTTP_HOST": "internal",
                "HTTP_X_FORWARDED_HOST": "public.example:443",
                "HTTP_X_FORWARDED_PROTO": "https",
            },
            True,
            "public.example",
            id="forwarded-proto",
        ),
        pytest.param(
            {"HTTP_HOST": "internal", "HTTP_X_FORWARDED_HOST": "public.example"},
            False,
            "internal",
            id="forwarded-untrusted",
        ),
    ],
)
def test_request_host(environ: dict[str, str], trust: bool, host: str) -> None:
    """The host the browser addressed, normalized; forwarded headers only when trusted."""
    assert security.request_host(environ, trust) == host
