"""`connect` with DPoP (RFC 9449) against a real DPoP-only server on loopback, honest and hostile.

The server (:mod:`dpop_server`) verifies every proof itself; the assertions are on what it
saw: which scheme presented the token, which key signed, how many requests a nonce demand
cost, and what reached the token store.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mcp_bastion.connect.dpop import MAX_NONCE_CHARS
from mcp_bastion.connect.tokens import DPOP, TokenStore

from .dpop_server import HONEST_NONCE, running_dpop_server
from .test_hostile import RecordingBrowser, _error_text, _initialize

OK = [{"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}]


async def test_a_dpop_server_gets_bound_tokens_and_a_proof_on_every_request(tmp_path: Path) -> None:
    store = tmp_path / "t.json"
    with running_dpop_server(as_nonce="once", rs_nonce="once") as server:
        written = await _initialize(server.url, store, RecordingBrowser())
    assert written == OK
    # RFC 9449 §8: the token request is signed again with the AS's nonce, once.
    assert [p.get("nonce") for p in server.token_proofs] == [None, HONEST_NONCE]
    assert server.token_forms[0] == server.token_forms[1]  # the same grant, only the proof changed
    # §9: the MCP request likewise: no token yet, then the proof without and with the nonce.
    assert server.mcp_authorizations[0] is None
    assert [p.get("nonce") for p in server.mcp_proofs] == [None, HONEST_NONCE]
    # §7.1: the token only ever went out with the DPoP scheme, never as a Bearer token.
    assert all(a.startswith("DPoP ") for a in server.mcp_authorizations[1:] if a is not None)
    assert "Bearer" not in server.refused
    # One key: it signed the token request and every resource request.
    assert len({p["jkt"] for p in server.token_proofs + server.mcp_proofs}) == 1
    # The private key is kept with the tokens, in the 0600 file.
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    [entry] = json.loads(store.read_text()).values()
    assert entry["tokens"]["token_type"] == DPOP
    assert "d" in entry["dpop_key"]


async def test_a_refreshed_token_is_bound_to_the_same_key_across_runs(tmp_path: Path) -> None:
    # expires_in below the refresh margin: the second run (a new process) must refresh, and
    # the server accepts the refresh only with a proof from the key of the first token.
    store = tmp_path / "t.json"
    with running_dpop_server(expires_in=5) as server:
        assert await _initialize(server.url, store, RecordingBrowser()) == OK
        browser = RecordingBrowser()
        assert await _initialize(server.url, store, browser) == OK
    assert browser.opened == []  # no second login
    first, *later = [form["grant_type"] for form in server.token_forms]
    assert first == "authorization_code"
    assert later
    assert set(later) == {"refresh_token"}
    assert len({p["jkt"] for p in server.token_proofs}) == 1


async def test_a_bound_token_is_never_sent_as_bearer_when_the_server_stops_offering_dpop(
    tmp_path: Path,
) -> None:
    # Without its key's proofs a bound token must not go out as Bearer (RFC 9449 §7.1): the
    # stored DPoP token is set aside and the user logs in again for a Bearer one.
    store = tmp_path / "t.json"
    with running_dpop_server() as server:
        assert await _initialize(server.url, store, RecordingBrowser()) == OK
        [bound] = [t for t, jkt in server.bound.items() if jkt]
        server.offer_dpop = False
        browser = RecordingBrowser()
        assert await _initialize(server.url, store, browser) == OK
    assert len(browser.opened) == 1  # a new login
    assert server.token_proofs[-1] == {"dpop": None}  # and no proof where none is wanted
    assert f"Bearer {bound}" not in server.mcp_authorizations
    assert server.mcp_authorizations[-1] is not None
    assert server.mcp_authorizations[-1].startswith("Bearer bearer-")


async def test_an_endless_nonce_loop_at_the_resource_is_cut_after_one_retry(tmp_path: Path) -> None:
    with running_dpop_server(rs_nonce="endless") as server:
        written = await _initialize(server.url, tmp_path / "t.json", RecordingBrowser())
    assert "keeps demanding a DPoP nonce" in _error_text(written)
    # No token, then the first proof, then one retry with the new nonce: three, not forever.
    assert len(server.mcp_authorizations) == 3


async def test_an_endless_nonce_loop_at_the_token_endpoint_is_cut_after_one_retry(tmp_path: Path) -> None:
    with running_dpop_server(as_nonce="endless") as server:
        written = await _initialize(server.url, tmp_path / "t.json", RecordingBrowser())
    assert "use_dpop_nonce" in _error_text(written)
    assert len(server.token_forms) == 2
    assert TokenStore(tmp_path / "t.json").tokens(server.base, server.url) is None


@pytest.mark.parametrize("side", ["as_nonce", "rs_nonce"])
@pytest.mark.parametrize("nonce", ["garbage", "huge"])
async def test_a_garbage_or_huge_nonce_is_not_signed_nor_retried(
    side: str, nonce: str, tmp_path: Path
) -> None:
    # RFC 9449 §8.1: a nonce is 1*NQCHAR; one that is not, or is over MAX_NONCE_CHARS, is
    # never put into a signed proof (no claim injection, no request bloat) and not retried.
    with running_dpop_server(**{side: nonce}) as server:
        written = await _initialize(server.url, tmp_path / "t.json", RecordingBrowser())
    assert "error" in written[0]
    assert all("nonce" not in p for p in server.token_proofs + server.mcp_proofs)
    if side == "as_nonce":
        assert len(server.token_forms) == 1
    else:
        assert len(server.mcp_proofs) == 1
    assert MAX_NONCE_CHARS < 4096
