"""The ceiling: a bare WSGI app answering with the status, headers and bytes of actionkit's page.

The page is rendered once, at import, by the actionkit app in-process (a test client is fine
here: it runs once, outside any measurement), so the body is actionkit's ``GET /posts``.
"""

from __future__ import annotations

import typing as t

from werkzeug.test import Client

from . import actionkit_app

_page = Client(actionkit_app.app).get("/posts", base_url="http://127.0.0.1/")
assert _page.status_code == 200 and _page.data.count(b"<li id=") == 20, _page.status
STATUS = _page.status
PAGE = _page.data
HEADERS = [(k, v) for k, v in _page.headers.items() if k.lower() != "actionkit-cache"]


def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
    start_response(STATUS, HEADERS)
    return [PAGE]
