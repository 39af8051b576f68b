"""A WSGI application without actionkit."""

from __future__ import annotations

import typing as t


def application(environ: t.Any, start_response: t.Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
