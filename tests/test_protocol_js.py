"""The client script speaks the protocol of actionkit/protocol.py."""

from __future__ import annotations

import json
import re
import typing as t

import pytest

from actionkit import protocol
from actionkit.assets import STATIC_DIR
from actionkit.jinja import actionkit_script

SCRIPT = (STATIC_DIR / "actionkit.js").read_text()
# `const NAME = "value";` or `const NAME = 1;` at any indentation.
CONSTANTS: dict[str, object] = {
    name: json.loads(value)
    for name, value in re.findall(r"^\s*const ([A-Z][A-Z0-9_]*) = (\"[^\"]*\"|\d+);$", SCRIPT, re.M)
}
ERROR_CODES = set(t.get_args(protocol.ErrorCode))


@pytest.mark.parametrize(
    "name",
    [
        "PROTOCOL_VERSION",
        "ACTION_ID_HEADER",
        "ACTION_BOUND_HEADER",
        "ACTION_PAGE_HEADER",
        "ACTION_FIELD_PREFIX",
    ],
)
def test_js_defines_the_protocol_constants(name: str) -> None:
    """Each protocol name the client needs is a constant of the script, equal to Python's."""
    assert name in CONSTANTS, f"actionkit.js does not define {name}"
    assert CONSTANTS[name] == getattr(protocol, name)


def test_every_shared_name_agrees() -> None:
    """Any constant of the script named like one of protocol.py has its value."""
    shared = {name for name in CONSTANTS if hasattr(protocol, name)}
    assert shared  # the parse found them
    for name in shared:
        assert CONSTANTS[name] == getattr(protocol, name), name


def test_error_codes_the_script_relies_on_exist() -> None:
    """Each error-code constant of the script (``UNKNOWN_ACTION = "unknown_action"``) is a
    protocol error code spelled as its name; the client has the one that matters to it:
    unknown_action, which reloads the page after a deploy."""
    assert set(protocol.ERROR_STATUS) == ERROR_CODES - {"http_error"}  # (no status of its own)
    codes = {name: value for name, value in CONSTANTS.items() if name.lower() in ERROR_CODES}
    assert codes.get("UNKNOWN_ACTION") == "unknown_action"
    for name, value in codes.items():
        assert value == name.lower(), f"{name} = {value!r} in actionkit.js"


@pytest.mark.parametrize(
    "value",
    [
        protocol.ACTION_ID_HEADER,
        protocol.ACTION_BOUND_HEADER,
        protocol.ACTION_PAGE_HEADER,
        protocol.ACTION_FIELD_PREFIX,
        "unknown_action",
    ],
)
def test_protocol_strings_are_written_once(value: str) -> None:
    """The script spells each protocol string once, in its constant, and uses the constant."""
    assert SCRIPT.count(f'"{value}"') == 1


def test_script_is_served_under_the_static_prefix() -> None:
    """The tags actionkit_script() renders load both files from under STATIC_PREFIX."""
    sources = re.findall(r'src="([^"]+)"', actionkit_script())
    assert len(sources) == 2
    assert all(src.startswith(protocol.STATIC_PREFIX) for src in sources)


def test_one_global() -> None:
    """The script is one block that defines the single global `actionkit`."""
    assert SCRIPT.count("window.actionkit = ") == 1
    assert re.search(r"^\(\(\) => \{\n  \"use strict\";", SCRIPT, re.M)
    assert SCRIPT.rstrip().endswith("})();")
