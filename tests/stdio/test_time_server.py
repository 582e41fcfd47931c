"""`mcp-server-time` (PyPI, written by others) as a `command:` server of the gateway `serve` runs,
through the official SDK client in both eras: scopes from its annotations, the audit event."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from mcp_bastion.pipeline.listing import REQUIRED_SCOPES_META

from ..support.sdk_client import bearer_client
from .plugins import stdio_gateway


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_mcp_server_time_as_a_command_server(mode: str) -> None:
    command = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    assert command is not None, "mcp-server-time is in the test extra"
    with stdio_gateway({"name": "time", "command": [command]}) as stack:
        url = stack.gw.url("time")
        token = stack.issuer.token(audience=url, subject="alice", scopes="tools.read")
        async with bearer_client(url, token, mode) as client:
            tools = (await client.list_tools()).tools
            result = await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})
        event = stack.gw.audit.wait_for(lambda e: e.method == "tools/call")
    # readOnlyHint: true in its annotations: tools.read is enough, and the list says so.
    assert {t.name: (t.meta or {}).get(REQUIRED_SCOPES_META) for t in tools} == {
        "get_current_time": ["tools.read"],
        "convert_time": ["tools.read"],
    }
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["timezone"] == "Europe/Paris"
    assert (event.target, event.decision, event.subject) == ("get_current_time", "allow", "alice")
