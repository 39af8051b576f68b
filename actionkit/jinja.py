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

    {{ cache_tag("posts") }}  {# the page opts in to the cache, as from the view #}

Actions are plain values: pass them to macros and included templates like anything else
(Next.js's "passing actions as props").
"""

from __future__ import annotations

import functools
import json
import typing as t

from markupsafe import Markup

from . import context
from .assets import assets
from .cache.api import cache_life, cache_tag
from .navigation import action_state
from .protocol import STATIC_PREFIX, STATIC_ROOT_KEY
from .registry import Action

if t.TYPE_CHECKING:
    import jinja2

Exposed: t.TypeAlias = t.Iterable[Action] | t.Mapping[str, Action]


def actionkit_script(
    expose: Exposed = (),
    *,
    defer: bool = True,
    nonce: str | None = None,
    static_url: str | None = None,
) -> Markup:
    """The ``<script>`` tags of the client: idiomorph, then actionkit.js.

    :param expose: actions that scripts may call by name, as
        ``await actionkit.actions.increment_like(42)``: a list (each under its function's name)
        or a mapping of names to actions. Bound copies keep their bound arguments, sealed.
    :param defer: load without blocking the page (the default); the tags can go in ``<head>``.
    :param nonce: the ``nonce`` attribute for a Content-Security-Policy.
    :param static_url: the URL under which ``/_actionkit/`` is reachable. By default that path
        below the current request's ``SCRIPT_NAME``, so an app mounted at ``/app`` gets
        ``/app/_actionkit/...``.
    """
    table = {name: {"id": act.id, "token": act.token} for name, act in _exposed(expose)}
    files = assets()
    prefix = _static_url() if static_url is None else static_url.rstrip("/") + "/"
    extra = Markup("")
    if defer:
        extra += Markup(" defer")
    if nonce is not None:
        extra += Markup(' nonce="{}"').format(nonce)
    return Markup(
        '<script src="{}"{}></script>\n<script src="{}"{} data-actions="{}"></script>'
    ).format(
        prefix + files.url("idiomorph.js").removeprefix(STATIC_PREFIX),
        extra,
        prefix + files.url("actionkit.js").removeprefix(STATIC_PREFIX),
        extra,
        json.dumps(table, separators=(",", ":")),
    )


def _exposed(expose: Exposed) -> list[tuple[str, Action]]:
    pairs: list[tuple[str | None, object]] = (
        [(str(name), act) for name, act in expose.items()]
        if isinstance(expose, t.Mapping)
        else [(None, act) for act in expose]
    )
    checked = []
    for name, act in pairs:
        if not isinstance(act, Action):
            raise TypeError(
                "actionkit_script(expose=...) takes actions (functions decorated with @action),"
                f" not {act!r}."
            )
        checked.append((act.name if name is None else name, act))
    return checked


def _static_url() -> str:
    ctx = context.current()
    environ: t.Mapping[str, t.Any] = ctx.environ if ctx is not None else {}
    script_name = str(environ.get(STATIC_ROOT_KEY, environ.get("SCRIPT_NAME", "")))
    return script_name.rstrip("/") + STATIC_PREFIX


def action_form(
    action: Action, /, caller: t.Callable[[], str] | None = None, **attrs: t.Any
) -> Markup:
    """A ``<form method="post">`` running ``action``, for ``{% call action_form(action) %}``.

    Keyword arguments become attributes: ``class`` (or ``class_``) → ``class``,
    ``data_reset="false"`` → ``data-reset="false"``, ``action="/posts"`` posts to another page;
    ``True`` gives a bare attribute, ``False``/``None`` none. The form is
    ``multipart/form-data`` unless ``enctype`` says otherwise, so file inputs work without
    JavaScript too.
    """
    if not isinstance(action, Action):
        raise TypeError(f"action_form() takes an action (decorated with @action), not {action!r}.")
    if "method" in attrs:
        raise TypeError('action_form() always renders method="post"; only POST runs actions.')
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


def _template_cache_tag(*tags: str) -> str:
    cache_tag(*tags)
    return ""  # (None would show as "None")


def _template_cache_life(seconds: float, stale: float | None = None) -> str:
    cache_life(seconds, stale)
    return ""


def install(env: jinja2.Environment, *, static_url: str | None = None) -> jinja2.Environment:
    """Add ``actionkit_script``, ``action_form``, ``action_state``, and ``cache_tag`` and
    ``cache_life`` (which show nothing) to ``env``'s globals.

    :param static_url: where the client script is served when that is not ``/_actionkit/``
        below the application (see :func:`actionkit_script`).
    """
    script = (
        actionkit_script
        if static_url is None
        else functools.partial(actionkit_script, static_url=static_url)
    )
    env.globals.update(actionkit_script=script, action_form=action_form, action_state=action_state)
    # (names an application may have given globals of its own)
    env.globals.setdefault("cache_tag", _template_cache_tag)
    env.globals.setdefault("cache_life", _template_cache_life)
    return env


__all__ = ["action_form", "action_state", "actionkit_script", "install"]
