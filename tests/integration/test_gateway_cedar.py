"""Cedar policies in the running gateway, over real sockets: the recording upstream shows what
got through, the audit feed which policy decided, and the official SDK client sees the same.

The three example policies of examples/policies/ are used as written (the working-hours one
with its hours moved, so that "now" is outside them whenever the test runs).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from mcp_bastion.demo.upstreams import build_demo_upstream

from ..support.gateway import RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.sdk_client import bearer_client
from ..support.servers import serve_asgi

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
WORKING_HOURS = "context.time.hour >= 8 &&\n  context.time.hour < 18"


def _after_hours_now(folder: Path) -> str:
    """The working-hours example with its hours six hours from now: outside them all test long."""
    text = (EXAMPLES / "read-only-after-hours.cedar").read_text()
    assert WORKING_HOURS in text
    start = (datetime.datetime.now(datetime.UTC).hour + 6) % 24
    path = folder / "read-only-after-hours.cedar"
    path.write_text(
        text.replace(WORKING_HOURS, f"context.time.hour >= {start} &&\n  context.time.hour < {start + 1}")
    )
    return str(path)


@dataclass
class Stack:
    issuer: LocalIssuer
    upstream: RecordingUpstream
    gateway: RunningGateway
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.gateway.url("files")

    def token(self, groups: list[str], client_id: str = "test-client") -> str:
        return self.issuer.token(
            audience=self.url, scopes="tools.read tools.write", groups=groups, client_id=client_id
        )

    def call(
        self, token: str, name: str, arguments: dict[str, object] | None = None, id: int = 1
    ) -> httpx.Response:
        body = {
            "jsonrpc": "2.0",
            "id": id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments or {}},
        }
        return post_mcp(self.http, self.url, body, token=token)

    def tool_names(self, token: str) -> set[str]:
        answer = post_mcp(
            self.http, self.url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, token=token
        )
        assert answer.status_code == 200, answer.text
        return {tool["name"] for tool in answer.json()["result"]["tools"]}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    files = [str(EXAMPLES / n) for n in ("baseline.cedar", "destructive-needs-group.cedar")]
    files.append(_after_hours_now(tmp_path))
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        overrides = {
            "servers": [
                {
                    "name": "files",
                    "upstream": f"{up.base_url}/mcp",
                    "policy_files": [str(EXAMPLES / "path-under-prefix.cedar")],
                }
            ],
            "policy": {"files": files},
        }
        with running_gateway(issuer.issuer, {}, **overrides) as gw, httpx.Client(timeout=10) as http:
            yield Stack(issuer, upstream, gw, http)


def test_destructive_tools_are_hidden_and_refused_for_non_members_and_never_reach_the_upstream(
    stack: Stack,
) -> None:
    dev = stack.token(["dev"])
    # drop_thing is destructive; unannotated counts as destructive (MCP's default).
    assert stack.tool_names(dev) == {"read_thing", "write_thing", "stream_thing", "hang"}
    answer = stack.call(dev, "drop_thing", id=41)
    assert answer.status_code == 403
    assert answer.json() == {
        "jsonrpc": "2.0",
        "id": 41,
        "error": {"code": -32003, "message": "refused by policy"},
    }
    assert stack.upstream.calls("tools/call") == []
    event = stack.gateway.audit.wait_for(lambda e: e.target == "drop_thing")
    assert (event.decision, event.reason, event.policy_ids) == (
        "deny",
        "refused by policy",
        ("destructive-needs-ops",),
    )


def test_members_of_ops_see_and_call_destructive_tools(stack: Stack) -> None:
    ops = stack.token(["ops"])
    assert {"drop_thing", "unannotated"} <= stack.tool_names(ops)
    answer = stack.call(ops, "drop_thing", id=5)
    assert answer.status_code == 200
    assert answer.json()["result"]["content"][0]["text"] == "called drop_thing"
    assert [r.json["params"]["name"] for r in stack.upstream.calls("tools/call")] == ["drop_thing"]
    event = stack.gateway.audit.wait_for(lambda e: e.target == "drop_thing")
    assert (event.decision, event.policy_ids) == ("allow", ("after-scopes",))  # the permit that allowed it


def test_a_path_argument_outside_the_prefix_is_refused_and_inside_it_forwarded(stack: Stack) -> None:
    dev = stack.token(["dev"])
    refused = stack.call(dev, "write_thing", {"path": "/srv/shared/../../etc/passwd"})
    assert refused.status_code == 403
    allowed = stack.call(dev, "write_thing", {"path": "/srv/shared/report.txt", "body": "x"}, id=2)
    assert allowed.status_code == 200
    forwarded = stack.upstream.calls("tools/call")
    assert [r.json["params"]["arguments"] for r in forwarded] == [
        {"path": "/srv/shared/report.txt", "body": "x"}
    ]
    event = stack.gateway.audit.wait_for(lambda e: e.decision == "deny")
    assert event.policy_ids == ("files-path-under-shared",)


def test_outside_working_hours_the_nightly_agent_sees_and_calls_only_read_tools(stack: Stack) -> None:
    agent = stack.token(["ops"], client_id="nightly-agent")
    assert stack.tool_names(agent) == {"read_thing", "stream_thing", "hang"}
    assert stack.call(agent, "write_thing").status_code == 403
    assert stack.call(agent, "read_thing", id=2).status_code == 200
    event = stack.gateway.audit.wait_for(lambda e: e.target == "write_thing")
    assert event.policy_ids == ("nightly-agent-reads-after-hours",)


def test_each_call_of_a_batch_is_decided_and_audited_with_its_own_policies(stack: Stack) -> None:
    dev = stack.token(["dev"])
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_thing"}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "drop_thing"}},
    ]
    answer = post_mcp(stack.http, stack.url, batch, token=dev, headers={"mcp-protocol-version": "2025-03-26"})
    assert answer.status_code == 403
    assert stack.upstream.calls("tools/call") == []
    stack.gateway.audit.wait_for(lambda e: e.target == "drop_thing")
    events = {e.target: e for e in stack.gateway.audit.events if e.method == "tools/call"}
    assert events["read_thing"].policy_ids == ("after-scopes",)  # allowed on its own, by this permit
    assert events["drop_thing"].policy_ids == ("destructive-needs-ops",)


def test_a_policy_that_fails_to_evaluate_refuses_the_call(tmp_path: Path) -> None:
    (tmp_path / "overflow.cedar").write_text(
        'permit (principal, action, resource);\n@id("overflows")\n'
        'forbid (principal, action == Action::"tools/call", resource) when { 9223372036854775807 + 1 > 0 };\n'
    )
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        server = {
            "name": "files",
            "upstream": f"{up.base_url}/mcp",
            "policy_files": [str(tmp_path / "overflow.cedar")],
        }
        with running_gateway(issuer.issuer, {}, servers=[server]) as gw, httpx.Client(timeout=10) as http:
            stack = Stack(issuer, upstream, gw, http)
            token = stack.token([])
            answer = stack.call(token, "read_thing")
            assert stack.tool_names(token) == set()
    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == "refused: a policy could not be evaluated for this call"
    assert upstream.calls("tools/call") == []
    assert gw.audit.wait_for(lambda e: e.target == "read_thing").policy_ids == ("overflows",)


# --- the official SDK client --------------------------------------------------------------------

GREETING_RULE = """
@id("no-secrets-in-greetings")
forbid (principal, action == Action::"tools/call", resource == Tool::"set_greeting")
when { context.arguments.hasTag("greeting") && context.arguments.getTag("greeting") like "*secret*" };
"""


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_sdk_client_sees_and_calls_what_the_policies_allow(tmp_path: Path, mode: str) -> None:
    (tmp_path / "greetings.cedar").write_text(GREETING_RULE)
    files = [str(EXAMPLES / n) for n in ("baseline.cedar", "destructive-needs-group.cedar")]
    files.append(str(tmp_path / "greetings.cedar"))
    with running_issuer() as issuer, serve_asgi(build_demo_upstream()) as upstream:
        with running_gateway(
            issuer.issuer, {"demo": f"{upstream.base_url}/mcp"}, policy={"files": files}
        ) as gw:
            url = gw.url("demo")
            dev = issuer.token(audience=url, scopes="tools.write", groups=["dev"])
            async with bearer_client(url, dev, mode) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert names == {"echo", "add", "set_greeting"}  # reset_greeting is destructive
                assert not (await client.call_tool("set_greeting", {"greeting": "hello"})).is_error
                with pytest.raises(MCPError, match="refused by policy"):
                    await client.call_tool("set_greeting", {"greeting": "my secret plan"})
                with pytest.raises(MCPError, match="refused by policy"):
                    await client.call_tool("reset_greeting", {})
            ops = issuer.token(audience=url, scopes="tools.write", groups=["ops"])
            async with bearer_client(url, ops, mode) as client:
                assert "reset_greeting" in {tool.name for tool in (await client.list_tools()).tools}
                assert not (await client.call_tool("reset_greeting", {})).is_error
            refused = gw.audit.wait_for(lambda e: e.decision == "deny" and e.target == "set_greeting")
            assert refused.policy_ids == ("no-secrets-in-greetings",)
