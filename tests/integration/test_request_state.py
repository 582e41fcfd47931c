"""Sealed requestState (2026-07-28 multi round-trip requests) through the real gateway.

The upstream's own state never reaches the client; the client's echo of the sealed form is
opened and swapped back, and a tampered, foreign, mismatched or expired one never reaches
the upstream (mrtr.mdx, "Server Requirements": attacker-controlled input bound to the
principal, a short TTL and the originating request).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from mcp_bastion.mcp.request_state import PREFIX

from ..support.gateway import RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import UPSTREAM_STATE, RecordingUpstream
from ..support.servers import serve_asgi

MODERN = "2026-07-28"


@dataclass
class Stack:
    issuer: LocalIssuer
    upstream: RecordingUpstream
    gateway: RunningGateway
    http: httpx.Client

    def call(
        self, tool: str, *, rid: int, state: str | None = None, subject: str = "alice"
    ) -> httpx.Response:
        params: dict[str, object] = {
            "name": tool,
            "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN},
        }
        if state is not None:
            params["requestState"] = state
        body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
        token = self.issuer.token(audience=self.gateway.url("rec"), scopes="tools.write", subject=subject)
        headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": tool}
        return post_mcp(self.http, self.gateway.url("rec"), body, token=token, headers=headers)

    def forwarded_states(self) -> list[object]:
        return [r.json["params"].get("requestState") for r in self.upstream.calls("tools/call")]


@pytest.fixture
def stack() -> Iterator[Stack]:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp"}]
        secrets = {"sessions.key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
        with (
            running_gateway(
                issuer.issuer, {}, secrets, servers=[*servers], sessions={"key": {"env": "K"}}
            ) as gw,
            httpx.Client(timeout=10) as http,
        ):
            yield Stack(issuer, upstream, gw, http)


def _sealed_state(stack: Stack, rid: int = 1) -> str:
    first = stack.call("ask_thing", rid=rid)
    assert first.status_code == 200
    result = first.json()["result"]
    assert result["resultType"] == "input_required"
    state = result["requestState"]
    assert isinstance(state, str)
    return state


def test_the_client_sees_a_sealed_state_and_the_upstream_gets_its_own_back(stack: Stack) -> None:
    sealed = _sealed_state(stack)
    assert sealed.startswith(PREFIX)
    assert UPSTREAM_STATE not in sealed
    retry = stack.call("ask_thing", rid=2, state=sealed)
    assert retry.status_code == 200
    assert retry.json()["result"]["content"][0]["text"] == f"resumed with {UPSTREAM_STATE}"
    assert stack.forwarded_states() == [None, UPSTREAM_STATE]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s[:-2] + ("AA" if s[-2:] != "AA" else "BB"),  # a flipped ciphertext byte
        lambda s: s[len(PREFIX) :],  # no prefix
        lambda s: UPSTREAM_STATE,  # the raw state an attacker guessed
        lambda s: "",
    ],
)
def test_a_tampered_state_is_refused_and_never_reaches_the_upstream(stack: Stack, tamper: object) -> None:
    sealed = _sealed_state(stack)
    response = stack.call("ask_thing", rid=3, state=tamper(sealed))  # type: ignore[operator]
    assert response.status_code == 400
    assert response.json()["id"] == 3
    assert response.json()["error"]["code"] == -32602
    assert stack.forwarded_states() == [None]


def test_another_users_state_is_refused(stack: Stack) -> None:
    sealed = _sealed_state(stack)
    response = stack.call("ask_thing", rid=4, state=sealed, subject="mallory")
    assert response.status_code == 400
    assert stack.forwarded_states() == [None]


def test_a_state_presented_on_another_tool_is_refused(stack: Stack) -> None:
    sealed = _sealed_state(stack)
    response = stack.call("drop_thing", rid=5, state=sealed)
    assert response.status_code == 400
    assert stack.upstream.calls("tools/call")[-1].json["params"]["name"] == "ask_thing"


def test_a_state_may_not_be_escaped_or_repeated_in_the_body(stack: Stack) -> None:
    # Another parser might read the other copy: the gateway swaps exactly one, or refuses.
    sealed = _sealed_state(stack)
    params = {
        "name": "ask_thing",
        "arguments": {"copy": sealed},
        "requestState": sealed,
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN},
    }
    body = {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": params}
    token = stack.issuer.token(audience=stack.gateway.url("rec"), scopes="tools.write")
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "ask_thing"}
    response = post_mcp(stack.http, stack.gateway.url("rec"), body, token=token, headers=headers)
    assert response.status_code == 400
    assert stack.forwarded_states() == [None]
