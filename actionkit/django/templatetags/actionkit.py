"""Template tags for Django templates: ``{% load actionkit %}``.

.. code-block:: html+django

    {% load actionkit %}
    <head>{% actionkit_script increment_like %}</head>

    <form method="post">
      {% csrf_token %}
      {% action_field create_post %}
      {% action_state create_post as state %}
      <input name="title" value="{% action_value state 'title' %}">
      {% action_error state 'title' %}
      <button>Publish</button>
    </form>

    <form method="post">
      {% action_field rename_post post.id %}   {# post.id bound, sealed in the field #}
      ...
    </form>
    <button {% action_button delete_post post.id %}>Delete</button>

Actions are never called by the template language (``Action.do_not_call_in_templates``), so
``{{ create_post.field }}`` and ``{{ create_post.id }}`` work too.
"""

from __future__ import annotations

import typing as t

from django import template
from django.urls import get_script_prefix
from markupsafe import Markup

from ... import jinja
from ...navigation import action_state as _action_state
from ...protocol import STATIC_PREFIX
from ...registry import Action

if t.TYPE_CHECKING:
    from django.utils.safestring import SafeString

register = template.Library()


def _action(tag: str, value: object) -> Action:
    if not isinstance(value, Action):
        raise TypeError(
            f"{{% {tag} %}} takes an action (a function decorated with @action), not {value!r};"
            " is the variable in the template's context?"
        )
    return value


def _safe(markup: Markup) -> SafeString:
    from django.utils.safestring import mark_safe

    return mark_safe(str(markup))


@register.simple_tag(takes_context=True)
def actionkit_script(
    context: template.Context,
    *expose: Action,
    nonce: str | None = None,
    static_url: str | None = None,
    defer: bool = True,
) -> SafeString:
    """``{% actionkit_script increment_like nonce=request.csp_nonce %}``: the client's script
    tags; the actions given are callable from scripts by name
    (``actionkit.actions.increment_like(42)``). The nonce defaults to the context's
    ``csp_nonce`` (Django's Content-Security-Policy context processor)."""
    if nonce is None:
        found = context.get("csp_nonce")
        nonce = str(found) if found else None
    if static_url is None:
        static_url = get_script_prefix().rstrip("/") + STATIC_PREFIX
    return _safe(
        jinja.actionkit_script(
            [_action("actionkit_script", act) for act in expose],
            defer=defer,
            nonce=nonce,
            static_url=static_url,
        )
    )


@register.simple_tag
def action_field(action: Action, *args: t.Any) -> SafeString:
    """``{% action_field rename_post post.id %}``: the hidden input that makes the enclosing
    form run the action, with ``args`` bound (sealed in the field)."""
    act = _action("action_field", action)
    return _safe((act.bind(*args) if args else act).field())


@register.simple_tag
def action_button(action: Action, *args: t.Any) -> SafeString:
    """``<button {% action_button delete_post post.id %}>``: the attributes of a submit button
    that runs the action, with ``args`` bound; one form can hold buttons for several."""
    act = _action("action_button", action)
    return _safe((act.bind(*args) if args else act).button_attrs())


@register.simple_tag
def action_state(action: Action | None = None) -> t.Any:
    """``{% action_state create_post as state %}``: the outcome of the action in the page
    rendered after it (``state.failed``, ``state.result``, ``state.value``), falsy elsewhere.
    Django templates call no method with an argument: ``state.result.title`` gives the
    ``fail()`` data's entry, and ``{% action_error state "title" %}`` or
    ``{% action_value state "title" %}`` the rest."""
    return _action_state(None if action is None else _action("action_state", action))


@register.simple_tag
def action_error(state: t.Any, name: str) -> t.Any:
    """``{% action_error state "title" %}``: the ``fail()`` data's message for a field, or
    ``""``."""
    return (state.error(name) if state else None) or ""


@register.simple_tag
def action_value(state: t.Any, name: str, default: str = "") -> str:
    """``{% action_value state "title" post.title %}``: the submitted value of a field after a
    failed submission, else ``default``."""
    return str(state.value(name, default) if state else default)
