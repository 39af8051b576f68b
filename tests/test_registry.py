from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import types
import typing as t

import pytest
from markupsafe import Markup

from actionkit import Action, DuplicateActionError, Registry, SecretKeyMissing, action, use_server
from actionkit.registry import default_registry, derive_id


def create_post(form: t.Any) -> str:
    return f"created {form}"


def like_post(post_id: t.Any, form: t.Any) -> str:
    return f"liked {post_id}"


def test_decorated_function_stays_callable() -> None:
    """@action returns an Action that still calls the function with its arguments."""
    registry = Registry()
    wrapped = registry.action(create_post)
    assert isinstance(wrapped, Action)
    assert wrapped("x") == "created x"
    assert wrapped.__name__ == "create_post" and wrapped.__wrapped__ is create_post
    assert registry.get(wrapped.id) is wrapped and wrapped.id in registry and len(registry) == 1


def test_derived_id_is_stable_and_hides_the_name() -> None:
    """The derived ID is a hash of module and name: same every time, name not readable."""
    assert derive_id(create_post) == derive_id(create_post)
    assert "create" not in derive_id(create_post)
    assert len(derive_id(create_post)) == 24


def test_ids_agree_across_processes() -> None:
    """Two separate Python processes compute the same ID for the same function."""
    code = textwrap.dedent(
        """
        from tests.test_registry import create_post
        from actionkit.registry import derive_id
        print(derive_id(create_post))
        """
    )
    ids = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert ids == {derive_id(create_post)}


def test_explicit_id() -> None:
    """@action(id=...) gives a public ID; invalid IDs are refused with the valid characters."""
    registry = Registry()
    named = action(id="create-post", registry=registry)(create_post)
    assert named.id == "create-post"
    with pytest.raises(ValueError, match="letters, digits"):
        registry.register(create_post, id="has space")


def test_duplicates_fail_with_a_clear_error() -> None:
    """Two different functions under one ID fail at registration, naming both."""
    registry = Registry()
    registry.register(create_post, id="same")

    def other(form: t.Any) -> None: ...

    with pytest.raises(DuplicateActionError, match="create_post.*other"):
        registry.register(other, id="same")


def test_registering_the_same_definition_again_replaces_it() -> None:
    """A reloaded module registers its functions again without error."""
    registry = Registry()
    first = registry.register(create_post)
    second = registry.register(create_post)
    assert first.id == second.id and len(registry) == 1


def test_async_functions_are_refused() -> None:
    """An 'async def' action is refused: actions run synchronously."""

    async def nope() -> None: ...

    with pytest.raises(TypeError, match="async def"):
        Registry().register(nope)


def test_non_callables_are_refused() -> None:
    """Registering something that is not a function names the value."""
    with pytest.raises(TypeError, match="42"):
        Registry().register(42)  # type: ignore[arg-type]


def test_use_server_registers_public_functions_of_a_module() -> None:
    """use_server() registers the module's own public functions and swaps them for Actions."""
    module = types.ModuleType("fake_actions")
    exec(
        textwrap.dedent(
            """
            from os.path import join  # imported, not defined here
            def create(form): return "c"
            def _helper(): return "h"
            value = 3
            """
        ),
        module.__dict__,
    )
    sys.modules["fake_actions"] = module
    try:
        registry = Registry()
        found = use_server("fake_actions", registry=registry)
        assert sorted(found) == ["create"]
        assert isinstance(module.create, Action) and module.create(None) == "c"
        assert not isinstance(module._helper, Action)
        # Running it twice (a second import path) is harmless.
        assert sorted(registry.use_server(module)) == ["create"]
    finally:
        del sys.modules["fake_actions"]
    with pytest.raises(ValueError, match="not imported"):
        use_server("no_such_module_here")


def test_default_registry_is_used_by_default() -> None:
    """@action without registry= registers in the default registry."""

    def only_here(form: t.Any) -> None: ...

    registered = action(only_here)
    assert default_registry.get(registered.id) is registered


def test_bind_seals_arguments_and_prepends_them() -> None:
    """bind() gives a copy that passes its arguments first and carries them encrypted."""
    registry = Registry()

    @registry.action
    def delete(post_id: int, note: t.Any, form: t.Any) -> tuple[int, t.Any]:
        return post_id, note

    secret = "confidential-value-7f3a9c"
    bound = delete.bind(42)
    assert bound(None, None) == (42, None)
    assert bound.id == delete.id and bound.token
    # What the browser sees holds neither the plaintext JSON nor the value, in any spelling.
    readable = delete.bind(secret)
    raw = base64.urlsafe_b64decode(readable.token + "=" * (-len(readable.token) % 4))
    for shown in (readable.token.encode(), raw):
        assert b'["confidential-value-7f3a9c"]' not in shown and secret.encode() not in shown
    assert bound.bind("x").bound_args == (42, "x")
    assert delete.token == ""


def test_bind_gives_the_same_copy_for_the_same_arguments_key_and_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page binds the same IDs on every render: bind() keeps its copies by the arguments,
    their types and the key, so equal arguments of other types, other keys and Bound
    validation still get their own; the memory is bounded."""
    from actionkit import registry as registry_module
    from actionkit import security

    registry = Registry()

    @registry.action
    def like(post_id: t.Any, note: t.Any = None, form: t.Any = None) -> t.Any:
        return post_id

    one = like.bind(1)
    assert like.bind(1) is one and one.bind("x") is like.bind(1, "x")
    assert like.bind(True) is not one and like.bind(True).bound_args == (True,)
    assert like.bind(1.0).token != one.token
    assert like.bind([1]) is not like.bind([1])  # lists are not kept
    monkeypatch.setattr(security, "_process_key", "another-key-of-16-chars")
    other = like.bind(1)
    assert other is not one and other.token != one.token
    monkeypatch.setattr(registry_module, "_MARKUP_CACHE_SIZE", 3)
    for n in range(10):
        assert like.bind(n).bound_args == (n,)
    assert len(like._copies) <= 3


def test_bind_without_a_key_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without any secret key, bind() fails with an error naming the ways to set one."""
    from actionkit import security

    monkeypatch.delenv("ACTIONKIT_SECRET_KEY")
    monkeypatch.setattr(security, "_process_key", None)
    with pytest.raises(SecretKeyMissing, match="ACTIONKIT_SECRET_KEY"):
        Registry().register(like_post).bind(1)


def test_bind_refuses_values_that_are_not_json() -> None:
    """Only JSON values can be bound; anything else is refused with the value named."""
    with pytest.raises(TypeError, match="JSON values"):
        Registry().register(like_post).bind(object())


def test_field_and_button_attrs_render_safe_markup() -> None:
    """field() and button_attrs() are Markup naming the action and its token."""
    registry = Registry()
    act = registry.register(like_post, id="create")
    assert act.field() == Markup('<input type="hidden" name="$ACTION_ID_create" value="">')
    assert act.button_attrs() == Markup(
        'type="submit" name="$ACTION_ID_create" value="" formmethod="post"'
    )
    bound = act.bind("<script>")
    assert "<script>" not in bound.field() and bound.token in bound.field()
    assert act.__html__() == "create"


def test_field_and_button_attrs_are_built_once_per_action_and_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The markup of a bound action is remembered by (action ID, token): rendering it again
    gives the same Markup as building it afresh; distinct tokens, or actions, give distinct
    fields; the memory is bounded."""
    from actionkit import registry as registry_module

    registry = Registry()
    act = registry.register(like_post, id="memo")
    other = registry.register(lambda form: form, id="memo-other")
    one, two = act.bind(1), act.bind(2)
    first = one.field()
    assert act.bind(1).field() is first
    assert first == Markup(f'<input type="hidden" name="$ACTION_ID_memo" value="{one.token}">')
    assert one.button_attrs() == Markup(
        f'type="submit" name="$ACTION_ID_memo" value="{one.token}" formmethod="post"'
    )
    assert act.bind(1).button_attrs() is one.button_attrs()
    assert one.token != two.token and two.field() != first and two.token in two.field()
    assert two.button_attrs() != one.button_attrs()
    assert other.field() != act.field() and "$ACTION_ID_memo-other" in other.field()
    monkeypatch.setattr(registry_module, "_MARKUP_CACHE_SIZE", 2)
    monkeypatch.setattr(registry_module, "_fields", {})
    for n in range(5):
        assert act.bind(n).token in act.bind(n).field()
    assert len(registry_module._fields) <= 2


def test_repr_and_equality() -> None:
    """Actions and registries have readable reprs; bound copies differ from the action."""
    registry = Registry()
    act = registry.register(like_post, id="create")
    assert repr(act) == "<Action 'like_post' id='create'>"
    assert "bound=(1,)" in repr(act.bind(1))
    assert act == registry["create"] and act != act.bind(1) and act != "create"
    assert hash(act) == hash(act.bind(1))
    assert repr(registry) == "<Registry of 1 action(s): like_post>"
    assert list(registry) == [act]


def test_closures_of_one_factory_are_refused() -> None:
    """Two closures made by one factory share a qualified name: the second is refused with a
    message naming id= and bind(), instead of silently running the first one's body."""
    registry = Registry()

    def make(n: int) -> Action:
        def act(form: t.Any) -> int:
            return n

        return registry.register(act)

    first = make(1)
    with pytest.raises(DuplicateActionError, match=r"id=.*bind\(\)") as refused:
        make(2)
    assert registry.get(first.id) is first and first(None) == 1
    # An app factory called once per test meets this too; id= would not help it: the message
    # names what does.
    assert "module level" in str(refused.value) and "registry=Registry()" in str(refused.value)


def test_two_lambdas_and_a_name_defined_twice_are_refused() -> None:
    """Lambdas share the name <lambda>; a function defined twice under one name is two
    functions: neither replaces the other silently."""
    registry = Registry()
    registry.register(lambda: 1)
    with pytest.raises(DuplicateActionError):
        registry.register(lambda: 2)

    def twice() -> int:
        return 1

    registry.register(twice)

    def twice() -> int:  # noqa: F811
        return 2

    with pytest.raises(DuplicateActionError):
        registry.register(twice)


def test_two_lambdas_on_one_line_are_refused() -> None:
    """Two lambdas written on one line share its number too: the second is refused, not run in
    place of the first under its ID."""
    registry = Registry()
    with pytest.raises(DuplicateActionError):
        registry.register(lambda: "first"), registry.register(lambda: "second")
    assert [a.fn() for a in registry] == ["first"]


def test_a_reloaded_module_replaces_its_lambda_actions(tmp_path: t.Any) -> None:
    """A module imported again (its lambda's body edited too, as a reloader sees it) has its
    lambda where it was on the line: it replaces the old one."""
    registry = Registry()
    namespace = {"registry": registry}
    for body in ("1", "1", "2 + 40"):
        old = namespace.get("act")
        source = f"act = registry.register(lambda: {body})\n"
        exec(compile(source, str(tmp_path / "lambdas.py"), "exec"), namespace)
        assert namespace["act"] is not old and registry.get(namespace["act"].id) is namespace["act"]
    assert namespace["act"]() == 42


def test_the_same_function_registered_again_is_the_same_action() -> None:
    """Registering one function twice (use_server after @action) gives back its action."""
    registry = Registry()

    def act() -> None: ...

    assert registry.register(act) is registry.register(act)


def test_a_reloaded_module_replaces_its_actions(tmp_path: t.Any) -> None:
    """A module imported again (a reloader) compiles the same definitions anew: they replace
    the old ones under the same IDs."""
    import importlib
    import sys

    (tmp_path / "reloaded_actions.py").write_text(
        "from actionkit import Registry\nregistry = Registry()\n\n"
        "@registry.action\ndef act():\n    return 1\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("reloaded_actions")
        registry, old = module.registry, module.act
        module.registry = registry  # keep the registry across the reload
        source = (tmp_path / "reloaded_actions.py").read_text()
        code = compile(source.replace("registry = Registry()", ""), module.__file__, "exec")
        exec(code, module.__dict__)
        assert module.act is not old and registry.get(old.id) is module.act
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("reloaded_actions", None)


def test_an_action_in_a_class_body_fails_at_import() -> None:
    """@action on a method is refused when the class is defined, with a clear message."""
    registry = Registry()
    with pytest.raises(TypeError, match="method .*Posts.create.*module level"):

        class Posts:
            @registry.action
            def create(self, form: t.Any) -> None: ...


def test_under_must_be_a_path() -> None:
    """under= takes a path; anything else is refused with the expected form."""
    with pytest.raises(ValueError, match="starting with '/'"):
        Registry().register(lambda: None, id="x", under="admin")
    scoped = Registry().register(lambda: None, id="y", under="/admin/")
    assert scoped.under == "/admin/" and scoped.bind().under == "/admin/"


def test_two_lambdas_on_one_line_are_refused_without_columns(tmp_path: t.Any) -> None:
    """Where Python keeps no columns (-X no_debug_ranges), lambdas on one line are still
    told apart by their code."""
    script = tmp_path / "lambdas.py"
    script.write_text(
        "from actionkit import DuplicateActionError, Registry\n"
        "r = Registry()\n"
        "try:\n"
        "    a, b = r.register(lambda: 'first'), r.register(lambda: 'second')\n"
        "except DuplicateActionError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "no_debug_ranges", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))},
    )
    assert done.stdout.strip() == "refused", done.stderr
