from __future__ import annotations

import re

import pytest

from actionkit import protocol
from actionkit.assets import STATIC_DIR

SCRIPT = (STATIC_DIR / "actionkit.js").read_text()


@pytest.mark.parametrize(
    ("js_name", "python_value"),
    [
        pytest.param("ACTION_ID_HEADER", protocol.ACTION_ID_HEADER, id="id-header"),
        pytest.param("ACTION_BOUND_HEADER", protocol.ACTION_BOUND_HEADER, id="bound-header"),
        pytest.param("ACTION_PAGE_HEADER", protocol.ACTION_PAGE_HEADER, id="page-header"),
        pytest.param("ACTION_FIELD_PREFIX", protocol.ACTION_FIELD_PREFIX, id="field-prefix"),
        pytest.param("UNKNOWN_ACTION", "unknown_action", id="unknown-action"),
    ],
)
def test_js_and_python_agree(js_name: str, python_value: str) -> None:
    """The client script's protocol constants are the server's."""
    match = re.search(rf'const {js_name} = "([^"]*)";', SCRIPT)
    assert match is not None, f"{js_name} is not defined in actionkit.js"
    assert match[1] == python_value


def test_error_codes_have_statuses() -> None:
    """Every error code of the protocol has its HTTP status, but ``http_error``: the code of
    an error status without one of its own (``abort(409)``)."""
    assert set(protocol.ERROR_STATUS) == set(protocol.ErrorCode.__args__) - {"http_error"}
    assert protocol.error_code(409) == "http_error"
    for code, status in protocol.ERROR_STATUS.items():
        if code not in ("unknown_action", "cross_origin", "action_failed"):
            assert protocol.error_code(status) == code
    assert protocol.ERROR_STATUS["unknown_action"] == 404
    assert (
        "HTTP_" + protocol.ACTION_ID_HEADER.upper().replace("-", "_") == protocol.ENVIRON_ACTION_ID
    )
