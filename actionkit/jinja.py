"""Template helpers for Jinja2: the client script tag, forms that run actions, action state.

Works with any :class:`jinja2.Environment` (the Flask extension calls :func:`install` on
``app.jinja_env``):

.. code-block:: python

    from actionkit.jinja import install
    install(env)

.. code-block:: html+jinja

    <head>{{ actionkit_script(expose=[increment_like]) }}</head>

    {% call action_form(create_post, class="card") %}
      {% set state = action_state(create_post) %}
      <input name="title" value="{{ state.value('title') if state else '' }}">
      {% if state and state.error('title') %}
        <p class="error">{{ state.error('title') }}</p>
      {% endif %}
      <button data-pending-text="Saving…">Create</button>
    {% endcall %}

    <button {{ delete_post.bind(post.id).button_attrs() }}>Delete</button>

Actions are plain values: pass them to macros and included templates like anything else.
"""

from __future__ import annotations

import json
import typing as t

from markupsafe import Markup

from .assets import assets
from .context import action_state

if t.TYPE_CHECKING:
    import jinja2

    from .registry import Action


def actionkit_script(expose: t.Iterable[Action] = (), *, defer: bool = True) -> Markup:
    """The ``<script>`` tags of the client (idiomorph, then actionkit.js).

    :param expose: actions scripts may call by name: ``actionkit.actions.increment_like(42)``.
        Bound copies keep their bound arguments.
    """
    table = {action.name: {"id": action.id, "token": action.token} for action in expose}
    files = assets()
    attr = " defer" if defer else ""
    return Markup(
        '<script src="{}"{}></script><script src="{}"{} data-actions="{}"></script>'
    ).format(
        files.url("idiomorph.js"),
        Markup(attr),
        files.url("actionkit.js"),
        Markup(attr),
        json.dumps(table, separators=(",", ":")),
    )


def action_form(
    action: Action, caller: t.Callable[[], str] | None = None, **attrs: t.Any
) -> Markup:
    """A ``<form method="post">`` running ``action``, for ``{% call action_form(action) %}``.

    Keyword arguments become attributes: ``class_`` or ``class`` → ``class``, ``data_reset=
    "false"`` → ``data-reset="false"``; ``True`` gives a bare attribute, ``False``/``None``
    none.
    """
    rendered = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        if value is True:
            rendered.append(Markup(" {}").format(name))
        else:
            rendered.append(Markup(' {}="{}"').format(name, value))
    if "enctype" not in attrs:
        rendered.append(Markup(' enctype="multipart/form-data"'))
    body = caller() if caller is not None else ""
    return Markup('<form method="post"{}>{}{}</form>').format(
        Markup("").join(rendered), action.field(), Markup(body)
    )


def install(env: jinja2.Environment) -> None:
    """Add ``actionkit_script``, ``action_form`` and ``action_state`` to ``env``'s globals."""
    env.globals.update(
        actionkit_script=actionkit_script, action_form=action_form, action_state=action_state
    )


__all__ = ["action_form", "action_state", "actionkit_script", "install"]
