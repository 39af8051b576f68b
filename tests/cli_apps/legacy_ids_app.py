"""An action that keeps working under the ID of an earlier release: the function is registered
twice by stacking ``@action``, so its module attribute is the outer ``Action``."""

from __future__ import annotations

import typing as t

from actionkit import ActionMiddleware, Registry

registry = Registry()


@registry.action(id="save-v1")
@registry.action
def save(form: t.Any) -> None: ...


app = ActionMiddleware(lambda environ, start: [], registry=registry, cache=False)
