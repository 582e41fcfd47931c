"""The official MCP SDK client through the gateway's safety filters to a real SDK upstream,
both protocol eras: a credential the tool echoes comes back redacted, a call the filters
refuse is an MCP error naming no match, a withheld tool is neither listed nor callable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from mcp_bastion.demo.upstreams import build_demo_upstream
from mcp_bastion.pipeline.screen import REFUSED
from mcp_bastion.safety.withheld import WITHHELD_REASON

from ..support.gateway import RunningGateway, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.sdk_client import bearer_client
from ..support.servers import serve_asgi

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
FILTERS: list[dict[str, Any]] = [
    {
        "id": "no-ssn",
        "type": "regex",
        "screen": ["arguments"],
        "action": "deny",
        "patterns": {"ssn": r"\d{3}-\d{2}-\d{4}"},
    },
    {"id": "secrets", "type": "secrets"},
    # A custom definition rule: the demo's tools are clean, so this one stands in for poisoning.
    {"id": "poisoning", "type": "poisoning", "patterns": {"greeting-tools": "(?i)change the greeting"}},
]


@pytest.fixture
def stack() -> Iterator[tuple[LocalIssuer, RunningGateway]]:
    with running_issuer() as issuer, serve_asgi(build_demo_upstream()) as upstream:
        server = {"name": "demo", "upstream": f"{upstream.base_url}/mcp", "filters": FILTERS}
        with running_gateway(issuer.issuer, {}, servers=[server]) as gw:
            yield issuer, gw


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_sdk_client_sees_filters_at_work(
    stack: tuple[LocalIssuer, RunningGateway], mode: str
) -> None:
    issuer, gw = stack
    token = issuer.token(audience=gw.url("demo"), scopes="tools.write")
    async with bearer_client(gw.url("demo"), token, mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        echoed = await client.call_tool("echo", {"text": f"my key is {AWS_KEY}"})
        with pytest.raises(MCPError) as refused:
            await client.call_tool("echo", {"text": "ssn 123-45-6789"})
        with pytest.raises(MCPError) as withheld:
            await client.call_tool("set_greeting", {"greeting": "hi"})
    # set_greeting's description says "Change the greeting": withheld; the others are not.
    assert names == {"echo", "add", "reset_greeting"}
    assert not echoed.is_error
    assert echoed.content[0].text == "my key is [redacted:aws-access-key-id]"  # type: ignore[union-attr]
    assert AWS_KEY not in str(echoed.structured_content)
    assert refused.value.error.message == REFUSED
    assert "123-45-6789" not in str(refused.value.error)
    assert withheld.value.error.message == WITHHELD_REASON
    event = gw.audit.wait_for(
        lambda e: e.method == "tools/call" and "result:secrets:redact:aws-access-key-id" in e.filters
    )
    assert event.filters == ("arguments:no-ssn:allow", "result:secrets:redact:aws-access-key-id")
