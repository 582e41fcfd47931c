"""From a message to a call: the method and its named target."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bastion.errors import ProtocolError
from mcp_bastion.mcp.calls import MAX_NAME_CHARS, Call, call_of
from mcp_bastion.mcp.jsonrpc import INVALID_PARAMS, Message


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Message("request", 1, "tools/call", {"name": "echo"}), Call("tools/call", "echo", 1)),
        (Message("request", "p", "prompts/get", {"name": "greet"}), Call("prompts/get", "greet", "p")),
        (
            Message("request", 2, "resources/read", {"uri": "file:///a.txt", "name": "ignored"}),
            Call("resources/read", "file:///a.txt", 2),
        ),
        (Message("request", 3, "tools/list", None), Call("tools/list", None, 3)),
        (Message("request", 3, "tools/list", {"name": "x"}), Call("tools/list", None, 3)),
        (
            Message("notification", None, "notifications/initialized", None),
            Call("notifications/initialized", None, None),
        ),
        (Message("response", 9, "", None), Call("", None, 9)),
        # Names are taken as they are: no case folding, no trimming.
        (Message("request", 1, "tools/call", {"name": " Echo "}), Call("tools/call", " Echo ", 1)),
        (
            Message("request", 1, "tools/call", {"name": "n" * MAX_NAME_CHARS}),
            Call("tools/call", "n" * MAX_NAME_CHARS, 1),
        ),
    ],
)
def test_call_of(message: Message, expected: Call) -> None:
    call = call_of(message)
    assert call[:3] == expected[:3]
    assert call.params is message.params  # for policies; the very object parsed, not a copy


@pytest.mark.parametrize(
    ("method", "field", "params"),
    [
        ("tools/call", "name", None),
        ("tools/call", "name", {}),
        ("tools/call", "name", {"name": ""}),
        ("tools/call", "name", {"name": None}),
        ("tools/call", "name", {"name": 5}),
        ("tools/call", "name", {"name": ["echo"]}),
        ("tools/call", "name", {"name": {"x": 1}}),
        ("tools/call", "name", {"uri": "echo"}),
        ("tools/call", "name", {"name": "n" * (MAX_NAME_CHARS + 1)}),
        ("prompts/get", "name", {"uri": "p"}),
        ("resources/read", "uri", {"name": "file:///a"}),
        ("resources/read", "uri", {"uri": ""}),
    ],
)
def test_named_methods_need_a_string_target(method: str, field: str, params: dict[str, Any] | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        call_of(Message("request", "rid", method, params))
    error = caught.value
    assert error.code == INVALID_PARAMS
    assert error.status == 400
    assert error.request_id == "rid"
    assert f'{method} needs a non-empty string "{field}"' in error.message
