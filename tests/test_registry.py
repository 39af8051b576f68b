from __future__ import annotations

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
    def delete(post_id: int, form: t.Any) -> tuple[int, t.Any]:
        return post_id, form

    bound = delete.bind(42)
    assert bound(None) == (42, None)
    assert bound.id == delete.id and bound.token and "42" not in bound.token
    assert bound.bind("x").bound_args == (42, "x")
    assert delete.token == ""


def test_bind_without_a_key_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without any secret key, bind() fails with an error naming the ways to set one."""
    from actionkit import security

    monkeypatch.delenv("ACTIONKIT_SECRET_KEY")
    monkeypatch.setattr(security, "_process_key", None)
    with pytest.raises(SecretKeyMissing, match="ACTIONKIT_SECRET_KEY"):
        Registry().register(create_post).bind(1)


def test_bind_refuses_values_that_are_not_json() -> None:
    """Only JSON values can be bound; anything else is refused with the value named."""
    with pytest.raises(TypeError, match="JSON values"):
        Registry().register(create_post).bind(object())


def test_field_and_button_attrs_render_safe_markup() -> None:
    """field() and button_attrs() are Markup naming the action and its token."""
    registry = Registry()
    act = registry.register(create_post, id="create")
    assert act.field() == Markup('<input type="hidden" name="$ACTION_ID_create" value="">')
    assert act.button_attrs() == Markup(
        'type="submit" name="$ACTION_ID_create" value="" formmethod="post"'
    )
    bound = act.bind("<script>")
    assert "<script>" not in bound.field() and bound.token in bound.field()
    assert act.__html__() == "create"


def test_repr_and_equality() -> None:
    """Actions and registries have readable reprs; bound copies differ from the action."""
    registry = Registry()
    act = registry.register(create_post, id="create")
    assert repr(act) == "<Action 'create_post' id='create'>"
    assert "bound=(1,)" in repr(act.bind(1))
    assert act == registry["create"] and act != act.bind(1) and act != "create"
    assert hash(act) == hash(act.bind(1))
    assert repr(registry) == "<Registry of 1 action(s): create_post>"
    assert list(registry) == [act]
