"""Who a plug-in serves: the identity token, per-subject processes, and a shared process's id rewriting."""

from __future__ import annotations

import concurrent.futures

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from mcp_bastion.stdio import IDENTITY_META

from .plugins import plugin_server, stdio_gateway


def test_every_request_carries_an_identity_token_the_gateway_jwks_verifies() -> None:
    with stdio_gateway(plugin_server()) as stack:
        alice = stack.caller("alice")
        token = alice.identity()
        jwks = httpx.get(stack.jwks_url).json()
    # The plug-in verifies it as any resource server would: the gateway's published key.
    claims = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"]).claims
    assert claims["sub"] == "alice"
    assert claims["aud"] == "urn:mcp-bastion:stdio:plug"
    assert claims["iss"] == stack.gw.base_url
    assert claims["exp"] - claims["iat"] == 60
    assert IDENTITY_META == "io.github.mcp-bastion/identity"


def test_a_plugin_quoting_its_identity_token_back_is_redacted() -> None:
    # SL-02: the token is the gateway's credential for this plug-in; it never reaches a client.
    with stdio_gateway(plugin_server()) as stack:
        alice = stack.caller("alice")
        quoted = alice.text("quote_identity")
        token = alice.identity()
    assert token not in quoted
    assert "[redacted]" in quoted


def test_a_client_cannot_forge_the_identity_meta() -> None:
    # The gateway sets the key on every request it writes; a client's own value is replaced.
    with stdio_gateway(plugin_server()) as stack:
        mallory = stack.caller("mallory")
        params = {"name": "whoami", "arguments": {}, "_meta": {IDENTITY_META: "i-am-alice"}}
        answer = mallory.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).json()
        token = answer["result"]["content"][0]["text"][::-1]
        assert _subject(stack.jwks_url, token) == "mallory"


def test_per_subject_processes_are_separate_and_reused() -> None:
    with stdio_gateway(plugin_server()) as stack:
        alice, bob = stack.caller("alice"), stack.caller("bob")
        alice_pid, bob_pid = alice.text("pid"), bob.text("pid")
        assert alice.text("pid", request_id=2) == alice_pid  # the same process for the same subject
    assert alice_pid != bob_pid


def test_two_users_on_a_shared_process_see_only_their_own_answers() -> None:
    # Both use the same request ids at once; the plug-in sees gateway-unique ids, and each
    # answer goes back only to the caller whose call it answers.
    with stdio_gateway(plugin_server(stdio={"process": "shared"})) as stack:
        alice, bob = stack.caller("alice"), stack.caller("bob")
        assert alice.text("pid") == bob.text("pid")  # one process
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = [
                (who.token, i, pool.submit(who.call, "echo", i, text=f"{name}-{i}"))
                for i in range(20)
                for name, who in (("alice", alice), ("bob", bob))
            ]
            whoami = [(who, pool.submit(who.call, "whoami", 7)) for who in (alice, bob) for _ in range(5)]
            for token, i, job in jobs:
                answer = job.result()
                name = "alice" if token == alice.token else "bob"
                assert answer["id"] == i
                assert answer["result"]["content"][0]["text"] == f"{name}-{i}"
            for who, job in whoami:
                token = job.result()["result"]["content"][0]["text"][::-1]
                assert _subject(stack.jwks_url, token) == ("alice" if who is alice else "bob")


def _subject(jwks_url: str, token: str) -> str:
    jwks = KeySet.import_key_set(httpx.get(jwks_url).json())
    return str(jwt.decode(token, jwks, algorithms=["ES256"]).claims["sub"])


def test_a_per_subject_process_is_told_at_start_whom_it_serves_and_a_shared_one_is_not() -> None:
    with stdio_gateway(plugin_server(), plugin_server(name="shared", stdio={"process": "shared"})) as stack:
        started_for = stack.caller("alice").text("started_for")[::-1]
        shared = stack.caller("alice", server="shared").text("started_for")[::-1]
        assert _subject(stack.jwks_url, started_for) == "alice"
    assert shared == "None"
