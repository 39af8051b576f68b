from __future__ import annotations

import base64
import typing as t

import pytest

from actionkit import ActionMiddleware, Registry, security
from actionkit.registry import Action
from actionkit.security import (
    _SEALED_CACHE_SIZE,
    BadToken,
    SecretKeyMissing,
    decrypt_args,
    encrypt_args,
)
from actionkit.testing import ActionClient


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


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(1, True, id="1-then-True"),
        pytest.param(True, 1, id="True-then-1"),
        pytest.param(1, 1.0, id="1-then-1.0"),
        pytest.param(0, False, id="0-then-False"),
        pytest.param(0.0, 0, id="0.0-then-0"),
    ],
)
def test_equal_arguments_of_other_types_get_their_own_token(first: object, second: object) -> None:
    """1, 1.0 and True are equal in Python and different JSON: bind(True) never reuses the token
    of bind(1), and each opens to the value and type that was bound."""
    registry = Registry()

    @registry.action
    def pick(value: t.Any, form: t.Any) -> t.Any:
        return value

    one, other = pick.bind(first), pick.bind(second)
    assert one.token != other.token
    for bound, value in ((one, first), (other, second)):
        (opened,) = decrypt_args(pick.id, bound.token, security.resolve_key())
        assert opened == value and type(opened) is type(value)
    assert pick.bind(first).token == one.token  # and each is still sealed once


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
        pytest.param(
            {"HTTP_HOST": "in", "HTTP_X_FORWARDED_HOST": "first.example, second, third"},
            True,
            "first.example",
            id="forwarded-first-of-three",
        ),
        pytest.param(
            {
                "HTTP_HOST": "in",
                "HTTP_X_FORWARDED_HOST": "public.example:443",
                "HTTP_X_FORWARDED_PROTO": "HTTPS, http, http",
            },
            True,
            "public.example",
            id="forwarded-proto-first-of-three",
        ),
        pytest.param(
            {"HTTP_HOST": "a.example:443", "wsgi.url_scheme": "https"},
            False,
            "a.example",
            id="https-default-port",
        ),
        pytest.param(
            {"HTTP_HOST": "a.example:443"}, False, "a.example:443", id="http-keeps-port-443"
        ),
        pytest.param(
            {"SERVER_NAME": "srv", "SERVER_PORT": "8080"}, False, "srv:8080", id="no-host-port"
        ),
    ],
)
def test_request_host(environ: dict[str, str], trust: bool, host: str) -> None:
    """The host the browser addressed, normalized; forwarded headers only when trusted."""
    assert security.request_host(environ, trust) == host


# -- one spelling per token ------------------------------------------------------------------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _token_with(chars: str) -> str:
    """A token for ("act", (n,), "key") holding one of ``chars`` (found by trying arguments)."""
    for n in range(1000):
        token = encrypt_args("act", (n,), "key")
        if any(c in token for c in chars):
            return token
    raise AssertionError(f"no token with any of {chars!r}")


def _other_trailing_bits(token: str) -> str:
    """The token with the unused low bits of its last character set: the same bytes."""
    assert len(token) % 4 in (2, 3)
    last = _ALPHABET.index(token[-1])
    return token[:-1] + _ALPHABET[last ^ 1]


@pytest.mark.parametrize(
    "respell",
    [
        pytest.param(lambda tok: tok + "=", id="one-pad"),
        pytest.param(lambda tok: tok + "=" * (-len(tok) % 4), id="padded"),
        pytest.param(lambda tok: tok + "====", id="extra-padding"),
        pytest.param(lambda tok: tok.replace("-", "+").replace("_", "/"), id="standard-alphabet"),
        pytest.param(lambda tok: tok[:5] + "." + tok[5:] + ".", id="junk-dots"),
        pytest.param(lambda tok: tok[:5] + "\n" + tok[5:9] + " " + tok[9:] + "!!", id="junk-space"),
        pytest.param(lambda tok: tok[:5] + "$$$$" + tok[5:], id="junk-four"),
        pytest.param(_other_trailing_bits, id="trailing-bits"),
    ],
)
def test_tokens_have_one_spelling(respell: t.Callable[[str], str]) -> None:
    """Only the exact text encrypt_args wrote opens: padding, the standard base64 alphabet,
    inserted characters and other unused trailing bits, all decoding to the same bytes, are
    refused."""
    token = _token_with("-_")
    assert decrypt_args("act", token, "key") == decrypt_args("act", token, "key")
    other = respell(token)
    assert other != token
    # A lenient decoder finds the same sealed bytes in it...
    lenient = base64.b64decode(other.replace("-", "+").replace("_", "/") + "==", validate=False)
    assert lenient == base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # ...and it is refused all the same.
    with pytest.raises(BadToken):
        decrypt_args("act", other, "key")


# -- key rotation ----------------------------------------------------------------------------------

NEW = "new-key-0123456789abcdef"
OLD = "old-key-0123456789abcdef"


@pytest.mark.parametrize("keys", [[NEW, OLD], (NEW, OLD), [NEW.encode(), OLD]])
def test_the_first_key_seals_and_every_key_opens(keys: t.Sequence[str | bytes]) -> None:
    """With a list of keys, tokens are sealed with the first and opened with any; a key that
    is not listed opens nothing."""
    token = encrypt_args("act", (1,), keys)
    assert decrypt_args("act", token, NEW) == [1]  # sealed with the first key
    assert decrypt_args("act", token, keys) == [1]
    older = encrypt_args("act", ({"a": 1},), OLD)
    assert decrypt_args("act", older, keys) == [{"a": 1}]
    with pytest.raises(BadToken):
        decrypt_args("act", older, NEW)
    with pytest.raises(BadToken):
        decrypt_args("act", older, ["another-key-0123456789"])


def test_a_list_of_keys_shares_the_sealed_tokens_of_its_first() -> None:
    """Tokens sealed under [new, old] are those of new alone: the per-process caches still
    give one token per action and arguments, and pages render the same bytes."""
    assert encrypt_args("act", (1, "x"), [NEW, OLD]) == encrypt_args("act", (1, "x"), NEW)
    assert encrypt_args("act", (1, "x"), (NEW,)) == encrypt_args("act", (1, "x"), NEW)
    nested = ([1, 2],)
    assert encrypt_args("act", nested, [NEW, OLD]) == encrypt_args("act", nested, NEW)


def test_bad_key_lists() -> None:
    """An empty list is no key at all; an item that is not str or bytes is named in a
    TypeError."""
    with pytest.raises(SecretKeyMissing):
        encrypt_args("act", (1,), [])
    with pytest.raises(SecretKeyMissing):
        decrypt_args("act", encrypt_args("act", (1,), NEW), ())
    with pytest.raises(TypeError, match="None"):
        decrypt_args("act", encrypt_args("act", (1,), NEW), [NEW, None])  # type: ignore[list-item]
    with pytest.raises(TypeError) as raised:
        encrypt_args("act", (1,), [NEW, 42])  # type: ignore[list-item]
    assert "must be str or bytes, not int (42); give one key or a list of keys" in str(raised.value)


def test_environment_keys_are_separated_by_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    """ACTIONKIT_SECRET_KEY="new, old" gives both keys, the first sealing; a value without a
    comma is one key, as it is."""
    monkeypatch.setattr(security, "_process_key", None)
    monkeypatch.setenv("ACTIONKIT_SECRET_KEY", f"{NEW}, {OLD}")
    keys = security.resolve_key()
    assert keys == (NEW, OLD)
    older = encrypt_args("act", (3,), OLD)
    assert decrypt_args("act", older, keys) == [3]
    assert decrypt_args("act", encrypt_args("act", (3,), keys), NEW) == [3]
    monkeypatch.setenv("ACTIONKIT_SECRET_KEY", " short key ")
    assert security.resolve_key() == " short key "


@pytest.mark.parametrize("value", ["correct,horse,battery,staple", f"{NEW},", f"{NEW},,{OLD}"])
def test_environment_keys_too_short_to_be_keys(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A comma-separated value whose parts are short (a passphrase with commas, a stray
    comma) is refused rather than cut into weak keys."""
    monkeypatch.setattr(security, "_process_key", None)
    monkeypatch.setenv("ACTIONKIT_SECRET_KEY", value)
    with pytest.raises(ValueError, match="secret_key="):
        security.resolve_key()


def _rotation_app(
    secret_key: t.Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[ActionClient, Action, list[int]]:
    """A middleware with ``secret_key`` running an action that records its bound argument."""
    monkeypatch.setattr(security, "_process_key", None)
    registry = Registry()
    seen: list[int] = []

    @registry.action
    def like(post_id: int, *rest: t.Any) -> int:
        seen.append(post_id)
        return post_id

    def page(environ: t.Any, start_response: t.Any) -> t.Any:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<!doctype html><title>page</title>"]

    middleware = ActionMiddleware(page, registry=registry, secret_key=secret_key, cache=False)
    return ActionClient(middleware), like, seen


def test_middleware_opens_tokens_of_every_listed_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """ActionMiddleware(secret_key=[new, old]) runs actions whose bound arguments were sealed
    with the old key (a page rendered before the deploy) and seals new ones with the new key."""
    client, like, seen = _rotation_app([NEW, OLD], monkeypatch)
    bound = like.bind(7)
    assert decrypt_args(like.id, bound.token, NEW) == [7]
    bound.token = encrypt_args(like.id, (8,), OLD)
    assert client.submit(bound, path="/", js=True).status_code == 200
    assert client.call(bound, path="/").status_code == 200
    assert seen == [8, 8]

    client, like, seen = _rotation_app(NEW, monkeypatch)
    bound = like.bind(7)
    bound.token = encrypt_args(like.id, (8,), OLD)
    assert client.call(bound, path="/").status_code == 400
    assert seen == []


def test_middleware_takes_rotated_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without secret_key=, a comma-separated ACTIONKIT_SECRET_KEY rotates the same way."""
    monkeypatch.setenv("ACTIONKIT_SECRET_KEY", f"{NEW},{OLD}")
    client, like, seen = _rotation_app(None, monkeypatch)
    bound = like.bind(5)
    bound.token = encrypt_args(like.id, (5,), OLD)
    assert client.call(bound, path="/").status_code == 200
    assert seen == [5]
    assert decrypt_args(like.id, like.bind(6).token, NEW) == [6]


def test_flask_app_with_a_list_of_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """ActionKit(app, secret_key=[new, old]) passes the list through to the middleware."""
    import flask

    from actionkit.flask import ActionKit

    monkeypatch.setattr(security, "_process_key", None)
    app = flask.Flask(__name__)
    registry = Registry()

    @registry.action
    def like(post_id: int) -> int:
        return post_id * 2

    @app.get("/")
    def index() -> str:
        return "page"

    ActionKit(app, registry=registry, secret_key=[NEW, OLD], cache=False)
    bound = like.bind(21)
    bound.token = encrypt_args(like.id, (21,), OLD)
    answer = ActionClient(app).call(bound, path="/")
    assert answer.status_code == 200 and answer.get_json()["result"] == 42


def test_flask_secret_key_fallbacks_open_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flask's SECRET_KEY_FALLBACKS (Flask 3.1) are the old keys: a token sealed with one of
    them opens, while app.secret_key seals."""
    import flask

    from actionkit.flask import ActionKit

    monkeypatch.setattr(security, "_process_key", None)
    app = flask.Flask(__name__)
    app.secret_key = NEW
    app.config["SECRET_KEY_FALLBACKS"] = ["older-key-0123456789", OLD]
    registry = Registry()

    @registry.action
    def like(post_id: int) -> int:
        return post_id

    @app.get("/")
    def index() -> str:
        return "page"

    ActionKit(app, registry=registry, cache=False)
    bound = like.bind(3)
    bound.token = encrypt_args(like.id, (3,), OLD)
    answer = ActionClient(app).call(bound, path="/")
    assert answer.status_code == 200 and answer.get_json()["result"] == 3


# -- what a refused token is told ------------------------------------------------------------------


def _canonical(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _other_version(token: str) -> str:
    """A real token with its version byte changed: the same nonce and sealed bytes."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return _canonical(b"\x02" + raw[1:])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(lambda tok: "AAAAA", "is not base64", id="length"),
        pytest.param(lambda tok: "éééé", "is not base64", id="not-ascii"),
        pytest.param(lambda tok: tok + "=", "not in its canonical URL-safe form", id="padded"),
        pytest.param(
            lambda tok: _canonical(b"\x01" + bytes(27)), "has the wrong format", id="too-short"
        ),
        pytest.param(_other_version, "has the wrong format", id="other-version"),
        pytest.param(
            lambda tok: _canonical(b"\x01" + bytes(28)), "does not verify", id="shortest-sealed"
        ),
        pytest.param(
            lambda tok: encrypt_args("act", (1,), "other key"),
            "does not verify: changed, made for another action, or sealed with another secret key",
            id="other-key",
        ),
        pytest.param(
            lambda tok: security._seal("key", "act", '{"a": 1}'),
            "does not hold a list",
            id="not-a-list",
        ),
    ],
)
def test_a_refused_token_is_told_why(make: t.Callable[[str], str], words: str) -> None:
    """Each way a token can be wrong has its own message (the client's 400 carries it): not
    base64, not the one spelling, too short or of another version (only version 1 opens,
    whatever follows its first byte), sealed with another key, or not holding a list; each
    is one sentence."""
    token = make(encrypt_args("act", (1,), "key"))
    with pytest.raises(BadToken) as raised:
        decrypt_args("act", token, "key")
    message = str(raised.value)
    assert words in message
    assert message[0].isupper() and message.endswith("."), message


def test_every_token_written_opens() -> None:
    """The one-spelling check accepts every token encrypt_args writes, whatever its last
    characters."""
    for n in range(1000):
        token = encrypt_args("every", (n, "x" * (n % 3)), "key")
        assert decrypt_args("every", token, "key") == [n, "x" * (n % 3)]


def test_bound_arguments_that_are_not_json_are_named() -> None:
    """Binding a value that is not JSON raises a TypeError naming the value and what is
    accepted."""
    with pytest.raises(TypeError) as raised:
        encrypt_args("act", ({1, 2},), "key")
    message = str(raised.value)
    assert "Bound arguments must be JSON values (str, int, float" in message
    assert "got ({1, 2},)" in message


@pytest.mark.parametrize(
    ("origin", "allowed", "same"),
    [
        pytest.param("http://localhost", [], True, id="same"),
        pytest.param("ftp://localhost", [], False, id="other-scheme-same-host"),
        pytest.param("http://", ["*"], False, id="no-host-any-allowed"),
        pytest.param("null", ["*"], False, id="null-any-allowed"),
    ],
)
def test_only_web_origins_are_compared(origin: str, allowed: list[str], same: bool) -> None:
    """An Origin is compared only when it is http(s) with a host: another scheme naming the
    page's host, no host, or "null" is refused, even when every host is allowed."""
    environ = {"HTTP_HOST": "localhost", "HTTP_ORIGIN": origin, "wsgi.url_scheme": "http"}
    assert security.is_same_origin(environ, allowed, False) is same


@pytest.mark.parametrize("given", ["https://*.example.com", b"https://app.example.com"])
def test_allowed_origins_given_as_one_string_are_refused(given: t.Any) -> None:
    """``allowed_origins="https://*.example.com"`` (a Flask setting read from the environment
    as text) was its characters, ``*`` among them: every host was allowed. It is refused, for
    the middleware and for Flask's extension."""
    from flask import Flask

    from actionkit.flask import ActionKit

    with pytest.raises(TypeError, match="a list of origins, not the string"):
        ActionMiddleware(lambda e, s: [], allowed_origins=given, secret_key="k" * 32)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k" * 32, ACTIONKIT_ALLOWED_ORIGINS=given)
    with pytest.raises(TypeError, match="a list of origins, not the string"):
        ActionKit(app)
    listed = ActionMiddleware(lambda e, s: [], allowed_origins=[given], secret_key="k" * 32)
    assert listed.allowed_origins == (given,)


@pytest.mark.parametrize(
    ("origin", "request_scheme", "forwarded", "same"),
    [
        pytest.param("https://example.com", "https", None, True, id="https-https"),
        pytest.param("http://example.com", "http", None, True, id="http-http"),
        pytest.param("http://example.com", "https", None, False, id="http-page-to-https"),
        # A proxy that ends TLS and is not trusted: the request looks like http.
        pytest.param("https://example.com", "http", None, True, id="https-page-behind-proxy"),
        pytest.param("http://example.com", "http", "https", False, id="http-page-forwarded"),
        pytest.param("https://example.com", "http", "https", True, id="https-page-forwarded"),
    ],
)
def test_a_page_on_plain_http_cannot_act_on_https(
    origin: str, request_scheme: str, forwarded: str | None, same: bool
) -> None:
    """As Django's CSRF check for https requests: a page of the same host served over plain
    http (which anyone on the network can rewrite) may not run an action over https."""
    environ = {"HTTP_HOST": "example.com", "HTTP_ORIGIN": origin, "wsgi.url_scheme": request_scheme}
    trusted = forwarded is not None
    if trusted:
        environ["HTTP_X_FORWARDED_PROTO"] = forwarded
    assert security.is_same_origin(environ, [], trusted) is same
    referer = {**environ, "HTTP_REFERER": origin + "/form"}
    del referer["HTTP_ORIGIN"]
    assert security.is_same_origin(referer, [], trusted) is same
