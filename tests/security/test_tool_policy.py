"""Catalog section G (TP, the rows that apply today): tool authorization and the upstream
credential, against the real gateway over loopback.

Not applicable yet: TP-04 (safety filters), TP-07 (several upstreams behind one endpoint),
TP-09 (no inputSchema validation stage), TP-13 (no token exchange).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from mcp_bastion.pipeline.listing import MISSING_SCOPES_META

from .support import Stack, call, jsonrpc_error, rpc, stack

HOMOGLYPH = "send_ema\u0456l"  # U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I for the "i"
# A second server on the same recording upstream, at another path: "upstream B".
SECOND = {"name": "rec2", "upstream": "{upstream}2"}
OVERRIDES = {"read_thing": {"scopes": ["tools.read"]}, "send_email": {"scopes": ["mail.send"]}}


@pytest.fixture(scope="module")
def tp() -> Iterator[Stack]:
    with stack(server={"tools": OVERRIDES, "scopes": ["mail.send"]}, extra_servers=[SECOND]) as s:
        yield s


def denied(s: Stack, tool: str, scopes: str, needed: str) -> None:
    mark = s.mark()
    response = s.post(call(tool, "deny-1"), token=s.token(scopes))
    assert response.status_code == 403, response.text
    www = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in www
    assert f'scope="{needed}"' in www
    assert s.tool_calls_since(mark) == []


def forwarded(s: Stack, tool: str, scopes: str) -> None:
    mark = s.mark()
    response = s.post(call(tool, "ok-1"), token=s.token(scopes))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["content"][0]["text"] == f"called {tool}"
    assert [r.json["params"]["name"] for r in s.tool_calls_since(mark)] == [tool]


def minted_claims(seen: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    token = seen.headers["authorization"].removeprefix("Bearer ")
    head, payload = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in token.split(".")[:2])
    return head, payload, token


# --- TP-01 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["write_thing", "drop_thing", "unannotated"])
def test_tp01_read_token_cannot_call_a_write_tool(tp: Stack, tool: str) -> None:
    denied(tp, tool, "tools.read", "tools.write")
    event = tp.gateway.audit.wait_for(lambda e: e.target == tool and e.decision == "deny")
    assert event.method == "tools/call"
    assert event.status == 403
    assert event.subject == "alice"
    assert event.client_id == "test-client"
    assert event.scopes_required == ("tools.write",)
    assert event.token_hash
    forwarded(tp, tool, "tools.write")


# --- TP-02 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "no_such_tool",
        "a" * 129,
        HOMOGLYPH,
        "Read_Thing",
        "READ_THING",
        "read_thing ",
        "read_thing\u200b",
        "read-thing",
    ],
)
def test_tp02_unknown_and_look_alike_names_are_default_deny(tp: Stack, name: str) -> None:
    denied(tp, name, "tools.read", "tools.write")
    forwarded(tp, name, "tools.write")  # allowed to try, with the default (write) scope


def test_tp02_empty_name_is_invalid_params(tp: Stack) -> None:
    mark = tp.mark()
    response = tp.post(call("", "e-1"), token=tp.token("tools.write"))
    assert response.status_code == 400
    assert jsonrpc_error(response) == (-32602, "e-1")
    assert tp.since(mark) == []


@pytest.mark.parametrize("variant", ["Send_Email", "SEND_EMAIL", HOMOGLYPH, "send_email ", "send_emai"])
def test_tp02_overrides_match_exact_case_sensitive_names(tp: Stack, variant: str) -> None:
    forwarded(tp, "send_email", "mail.send")
    # The override does not cover the variant: it needs the default scope, and mail.send is not it.
    denied(tp, variant, "mail.send", "tools.write")


# --- TP-03 ---------------------------------------------------------------------------------


def test_tp03_listed_but_not_callable_tools_are_still_checked_when_called(tp: Stack) -> None:
    # The default list (`tools_list: reachable`) shows what a step-up would unlock, marked with
    # what is missing; being listed grants nothing: each call is decided on its own.
    listed = tp.post(rpc("tools/list"), token=tp.token("tools.read")).json()["result"]["tools"]
    missing = {t["name"]: t["_meta"].get(MISSING_SCOPES_META) for t in listed}
    assert {name for name, lacks in missing.items() if lacks is None} == {
        "read_thing",
        "stream_thing",
        "hang",
    }
    for name in ("write_thing", "drop_thing", "unannotated"):
        assert missing[name] == ["tools.write"]
        denied(tp, name, "tools.read", "tools.write")
    assert "never_listed" not in missing
    denied(tp, "never_listed", "tools.read", "tools.write")


# --- TP-10 ---------------------------------------------------------------------------------


def test_tp10_upstream_gets_a_minted_narrow_token_never_the_clients(tp: Stack) -> None:
    client_token = tp.token("tools.read tools.write mail.send other.scope")
    mark = tp.mark()
    response = tp.post(call("read_thing"), token=client_token, headers={"cookie": "session=abc"})
    assert response.status_code == 200
    seen = tp.since(mark)[-1]
    assert client_token not in json.dumps(seen.headers)
    assert "cookie" not in seen.headers
    head, claims, minted = minted_claims(seen)
    assert head["typ"] == "at+jwt"
    assert head["alg"] == "ES256"
    base = tp.gateway.base_url
    jwks = tp.http.get(f"{base}/.well-known/jwks.json").json()
    verified = jwt.decode(minted, KeySet.import_key_set(jwks), algorithms=["ES256"])  # signed by the gateway
    assert verified.claims == claims
    assert claims["iss"] == base
    assert claims["aud"] == tp.upstream_url
    assert claims["sub"] == "alice"
    assert claims["client_id"] == "test-client"
    assert claims["act"] == {"sub": base}
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert claims["scope"] == "tools.read"  # what this call needs: within user ∩ tool, not the user's all
    for tool, scope in (("write_thing", "tools.write"), ("send_email", "mail.send")):
        mark = tp.mark()
        assert tp.post(call(tool), token=client_token).status_code == 200
        assert minted_claims(tp.since(mark)[-1])[1]["scope"] == scope


# --- TP-11 ---------------------------------------------------------------------------------


def test_tp11_minted_tokens_are_bound_to_one_upstream_and_useless_at_the_gateway(tp: Stack) -> None:
    mark = tp.mark()
    assert tp.post(call("read_thing"), token=tp.token()).status_code == 200
    _, claims_a, minted_a = minted_claims(tp.since(mark)[-1])
    other = tp.gateway.url("rec2")
    mark = tp.mark()
    response = tp.http.post(
        other,
        content=json.dumps(call("read_thing")).encode(),
        headers={
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "authorization": f"Bearer {tp.idp.token(other)}",
        },
    )
    assert response.status_code == 200
    _, claims_b, _ = minted_claims(tp.since(mark)[-1])
    assert claims_a["aud"] == tp.upstream_url
    assert claims_b["aud"] == tp.upstream_url + "2"  # upstream B would refuse A's token on aud
    for url in (tp.url, other):  # replayed at the gateway: not our issuer, not our audience
        mark = tp.mark()
        response = tp.http.post(
            url,
            content=json.dumps(rpc("ping")).encode(),
            headers={
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "authorization": f"Bearer {minted_a}",
            },
        )
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert tp.since(mark) == []


# --- TP-14 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scopes",
    [
        "mcp:*",
        "*",
        "tools",
        "tools.*",
        "tools:read",
        "TOOLS.READ",
        "tools.read.all",
        "tools.readx",
        "admin:*",
    ],
)
def test_tp14_no_wildcard_or_prefix_scopes(tp: Stack, scopes: str) -> None:
    denied(tp, "read_thing", scopes, "tools.read")


def test_tp14_control_configured_hierarchy_only() -> None:
    implies = {
        "admin": ["tools.write", "tools.read"],
        "tools.write": ["tools.read"],
        "tools.*": ["tools.read"],
    }
    with stack(scopes={"implies": implies}) as s:
        forwarded(s, "read_thing", "tools.*")  # configured: it grants read
        denied(s, "write_thing", "tools.*", "tools.write")  # and nothing else
        forwarded(s, "drop_thing", "admin")
