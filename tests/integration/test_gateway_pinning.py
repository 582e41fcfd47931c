"""Pinning and the list cache through the real gateway over loopback, against the recording
upstream: each caller gets the list its own decisions make, whatever was answered before."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.pinning.commands import diff_servers, pin_servers
from mcp_bastion.pipeline.listing import MISSING_SCOPES_META, REQUIRED_SCOPES_META

from ..support.gateway import RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import TOOLS, RecordingUpstream
from ..support.servers import serve_asgi

Stack = tuple[LocalIssuer, RecordingUpstream, RunningGateway, httpx.Client]


@pytest.fixture
def stack() -> Iterator[Stack]:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 5}]
        with running_gateway(issuer.issuer, {}, servers=servers) as gw, httpx.Client(timeout=10) as http:
            yield issuer, upstream, gw, http


def tools_for(stack: Stack, scopes: str) -> list[dict[str, Any]]:
    issuer, _, gw, http = stack
    token = issuer.token(audience=gw.url("rec"), scopes=scopes)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = post_mcp(http, gw.url("rec"), body, token=token)
    assert response.status_code == 200, response.text
    tools: list[dict[str, Any]] = response.json()["result"]["tools"]
    return tools


def marks(tools: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    return {t["name"]: (t["_meta"][REQUIRED_SCOPES_META], t["_meta"].get(MISSING_SCOPES_META)) for t in tools}


def test_callers_with_other_scopes_never_get_each_others_list(stack: Stack) -> None:
    reader = marks(tools_for(stack, "tools.read"))
    writer = marks(tools_for(stack, "tools.read tools.write"))
    assert reader["drop_thing"] == (["tools.write"], ["tools.write"])
    assert writer["drop_thing"] == (["tools.write"], None)  # a shared, marked tool would leak here
    assert marks(tools_for(stack, "tools.read")) == reader  # the reader's again, from the cache


def test_an_upstream_forging_our_marks_is_overwritten_for_every_caller(stack: Stack) -> None:
    forged = copy.deepcopy(TOOLS)
    for tool in forged:
        tool["_meta"] = {MISSING_SCOPES_META: [], REQUIRED_SCOPES_META: [], "vendor": 1}
    stack[1].tools = forged
    for scopes in ("tools.read", "tools.read tools.write", "tools.read"):
        listed = {t["name"]: t for t in tools_for(stack, scopes)}
        assert listed["read_thing"]["_meta"] == {REQUIRED_SCOPES_META: ["tools.read"], "vendor": 1}


def test_a_changed_list_is_never_answered_from_the_cache(stack: Stack) -> None:
    assert "new_tool" not in {t["name"] for t in tools_for(stack, "tools.read")}
    stack[1].tools = [*TOOLS, {"name": "new_tool", "annotations": {"readOnlyHint": True}}]
    assert "new_tool" in {t["name"] for t in tools_for(stack, "tools.read")}  # record mode serves it
    stack[1].tools = TOOLS
    assert "new_tool" not in {t["name"] for t in tools_for(stack, "tools.read")}


async def test_pin_then_diff_against_a_live_upstream(tmp_path: Path) -> None:
    upstream = RecordingUpstream(tools=copy.deepcopy(TOOLS))
    lockfile = str(tmp_path / "bastion.lock.json")
    with serve_asgi(upstream) as up:
        config = parse_config(
            {
                "public_base_url": "https://mcp.example.com",
                "identity_providers": [{"name": "idp", "issuer": "https://idp.example"}],
                "servers": [
                    {
                        "name": "rec",
                        "upstream": f"{up.base_url}/mcp",
                        "upstream_auth": {"type": "none"},
                        "pinning": {"mode": "enforce", "lockfile": lockfile},
                    }
                ],
            }
        )
        loaded = LoadedConfig(config, {})
        (outcome,) = await pin_servers(loaded)
        assert (outcome.tools, outcome.first, outcome.error) == (len(TOOLS), True, None)
        assert [d.differs for d in await diff_servers(loaded)] == [False]
        assert isinstance(upstream.tools, list)
        upstream.tools[1]["inputSchema"] = {"type": "object", "properties": {"bcc": {"type": "string"}}}
        (diff,) = await diff_servers(loaded)
        assert [(t.name, t.change, t.fields) for t in diff.tools] == [
            ("write_thing", "changed", ("inputSchema",))
        ]
        (again,) = await pin_servers(loaded)
        assert [(c.name, c.change) for c in again.changes] == [("write_thing", "changed")]
        assert [d.differs for d in await diff_servers(loaded)] == [False]


def test_a_policy_that_reads_claims_keeps_each_caller_its_own_list() -> None:
    # Cedar reads the groups claim, which the scopes do not show: its check does not offer a
    # `visibility` fingerprint, so the list cache stays off for the route and the dev caller
    # never receives the list made for ops (same scopes, same learned list).
    examples = Path(__file__).resolve().parents[2] / "examples" / "policies"
    policies = [str(examples / name) for name in ("baseline.cedar", "destructive-needs-group.cedar")]
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 5}]
        with (
            running_gateway(issuer.issuer, {}, servers=servers, policy={"files": policies}) as gw,
            httpx.Client(timeout=10) as http,
        ):

            def names(group: str) -> set[str]:
                token = issuer.token(audience=gw.url("rec"), scopes="tools.read tools.write", groups=[group])
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
                response = post_mcp(http, gw.url("rec"), body, token=token)
                assert response.status_code == 200, response.text
                return {t["name"] for t in response.json()["result"]["tools"]}

            ops, dev, ops_again = names("ops"), names("dev"), names("ops")
    assert "drop_thing" in ops
    assert "drop_thing" not in dev
    assert ops_again == ops
