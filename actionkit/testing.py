"""Test helpers: submit and call actions by object with Werkzeug's test client.

.. code-block:: python

    from actionkit.testing import ActionClient

    def test_create_post(app):
        client = ActionClient(app)
        response = client.submit(create_post, {"title": "Hello"}, path="/posts")
        assert response.status_code == 303

        response = client.call(increment_like, 42, page="/posts")
        assert response.json["result"] == 1
"""

from __future__ import annotations

import typing as t

from pydantic_core import to_jsonable_python
from werkzeug.datastructures import MultiDict
from werkzeug.test import Client, TestResponse

from .protocol import ACTION_BOUND_HEADER, ACTION_ID_HEADER, ACTION_PAGE_HEADER

if t.TYPE_CHECKING:
    from .registry import Action


class ActionClient(Client):
    """A Werkzeug :class:`~werkzeug.test.Client` that also knows how to run actions.

    Given a Flask application set up with :class:`~actionkit.flask.ActionKit`, it is Flask's
    own test client (``session_transaction()``, the app context), which ``app.test_client()``
    also gives: both can ``submit()`` and ``call()``.
    """

    def __new__(cls, application: t.Any = None, *args: t.Any, **kwargs: t.Any) -> ActionClient:
        # The Flask extension makes its client (Flask's, with these methods) the app's own;
        # an app's own client class (set after the extension) gets these methods too.
        app_client = getattr(application, "test_client_class", None)
        if cls is ActionClient and isinstance(app_client, type) and issubclass(app_client, Client):
            return super().__new__(with_actions(app_client))
        return super().__new__(cls)

    def submit(
        self,
        action: Action,
        data: t.Mapping[str, t.Any] | t.Iterable[tuple[str, t.Any]] | None = None,
        *,
        path: str = "/",
        js: bool = False,
        headers: t.Mapping[str, str] | None = None,
        **kwargs: t.Any,
    ) -> TestResponse:
        """Post a form that runs ``action``, as a browser does.

        :param data: the form's fields; file fields as ``(file, filename)`` or a ``FileStorage``
            (the body is then multipart).
        :param path: the page the form is on, which the form posts to.
        :param js: submit as the client script does (``Action-Id``/``Action-Page`` headers, a
            JSON answer) instead of as a browser without JavaScript; multipart, as the script
            sends a form with ``enctype="multipart/form-data"`` (it sends any other form
            urlencoded: pass ``content_type="application/x-www-form-urlencoded"``).
        """
        # The action's hidden field comes first, where a form's own field usually stands; a
        # file given as a (file, filename) tuple stays one value.
        fields: MultiDict[str, t.Any] = MultiDict([(action.field_name, action.token)])
        if isinstance(data, MultiDict):  # every value of a repeated field, as Client.post()
            pairs: t.Iterable[tuple[str, t.Any]] = data.items(multi=True)
        else:
            pairs = data.items() if isinstance(data, t.Mapping) else (data or ())
        for key, value in pairs:
            for item in value if isinstance(value, list) else [value]:
                fields.add(key, item)
        all_headers = dict(headers or {})
        if js:
            all_headers.setdefault(ACTION_ID_HEADER, action.id)
            all_headers.setdefault(ACTION_PAGE_HEADER, path)
            kwargs.setdefault("content_type", "multipart/form-data")
        return self.post(path, data=fields, headers=all_headers, **kwargs)

    def call(
        self,
        action: Action,
        *args: t.Any,
        path: str = "/",
        page: str | None = None,
        headers: t.Mapping[str, str] | None = None,
        **kwargs: t.Any,
    ) -> TestResponse:
        """Call ``action(*args)`` as the client script's ``actionkit.call()`` does.

        :param page: the page the call is made from (``Action-Page``), rendered into the answer
            when the action changed something; defaults to ``path``.
        """
        all_headers = {ACTION_ID_HEADER: action.id, ACTION_PAGE_HEADER: page or path}
        if action.token:
            all_headers[ACTION_BOUND_HEADER] = action.token
        all_headers.update(headers or {})
        # As the client script sends them (ISO 8601 dates, numbers of Decimals as text), not as
        # a framework's JSON provider would (Flask: HTTP dates, which a ``date`` refuses).
        return self.post(path, json=to_jsonable_python(list(args)), headers=all_headers, **kwargs)


_MIXED: dict[type[Client], type[ActionClient]] = {}


def with_actions(client_class: type[Client]) -> type[ActionClient]:
    """``client_class`` (a framework's test client, an application's own subclass of it) with
    :meth:`ActionClient.submit` and :meth:`ActionClient.call`."""
    if issubclass(client_class, ActionClient):
        return client_class
    mixed = _MIXED.get(client_class)
    if mixed is None:
        mixed = type(f"{client_class.__name__}WithActions", (client_class, ActionClient), {})
        _MIXED[client_class] = mixed
    return mixed
