"""The ceiling: a bare WSGI app returning the bytes of the rendered page."""

from __future__ import annotations

import typing as t

from . import common

_db = common.connect()
PAGE = (
    common.environment()
    .get_template("posts.html")
    .render(
        posts=common.posts(_db),
        script="",
        create_url="/posts",
        create_field="",
        like_url=lambda post_id: "/posts",
        like_field=lambda post_id: "",
    )
    .encode()
)
_db.close()
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))]


def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
    start_response("200 OK", HEADERS)
    return [PAGE]
