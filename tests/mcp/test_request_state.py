"""RequestStateSealer: what opens, and everything that must not (mrtr.mdx, Server Requirements)."""

from __future__ import annotations

import pytest

from mcp_bastion.errors import ProtocolError, UpstreamError
from mcp_bastion.mcp.request_state import MAX_STATE_BYTES, PREFIX, RequestStateSealer, bind
from mcp_bastion.mcp.sessions import SessionSealer, subject_digest

KEY = bytes(range(32))
ALICE = subject_digest("https://idp", "alice")
BOB = subject_digest("https://idp", "bob")
CALL = bind("github", "tools/call", "create_issue")
NOW = 1_800_000_000.0


def _sealer(ttl: int = 600) -> RequestStateSealer:
    return RequestStateSealer(KEY, ttl_seconds=ttl)


def test_a_sealed_state_opens_for_the_same_caller_request_and_time_window() -> None:
    sealed = _sealer().seal("state ✓ with unicode", ALICE, CALL, NOW)
    assert sealed.startswith(PREFIX)
    assert "state" not in sealed
    assert _sealer().unseal(sealed, ALICE, CALL, NOW + 600) == "state ✓ with unicode"


def test_two_seals_of_one_state_differ() -> None:
    # A fresh nonce each time: equal states are not recognisable across answers.
    assert _sealer().seal("s", ALICE, CALL, NOW) != _sealer().seal("s", ALICE, CALL, NOW)


@pytest.mark.parametrize(
    ("subject", "binding", "now"),
    [
        (BOB, CALL, NOW),  # another principal
        (ALICE, bind("github", "tools/call", "delete_repo"), NOW),  # another tool
        (ALICE, bind("github", "prompts/get", "create_issue"), NOW),  # another method
        (ALICE, bind("gitlab", "tools/call", "create_issue"), NOW),  # another server
        (ALICE, CALL, NOW + 601),  # past the TTL
        (ALICE, CALL, NOW - 1),  # from the future (a clock step back, or a forged time)
    ],
)
def test_a_state_opens_for_nothing_else(subject: bytes, binding: bytes, now: float) -> None:
    sealed = _sealer().seal("s", ALICE, CALL, NOW)
    with pytest.raises(ProtocolError) as refused:
        _sealer().unseal(sealed, subject, binding, now)
    assert refused.value.code == -32602
    assert refused.value.message == "Invalid params: requestState is not valid for this request"


@pytest.mark.parametrize(
    "sealed",
    [
        "",
        PREFIX,
        "mcpb2.AAAA",
        PREFIX + "!!!!",
        PREFIX + "A",
        PREFIX + "A" * 40,
        "x" * 200_000,
        "plain-state",
    ],
)
def test_malformed_states_are_refused_alike(sealed: str) -> None:
    with pytest.raises(ProtocolError):
        _sealer().unseal(sealed, ALICE, CALL, NOW)


def test_a_state_sealed_under_another_key_does_not_open() -> None:
    other = RequestStateSealer(bytes(32), ttl_seconds=600).seal("s", ALICE, CALL, NOW)
    with pytest.raises(ProtocolError):
        _sealer().unseal(other, ALICE, CALL, NOW)


def test_a_session_id_sealed_with_the_same_key_is_no_request_state() -> None:
    # Derived keys: a sealed session id (same sessions.key) can never pass as a request state.
    session = SessionSealer(KEY, ttl_seconds=600).seal("upstream-session", ALICE, "github", NOW)
    with pytest.raises(ProtocolError):
        _sealer().unseal(PREFIX + session[1:], ALICE, CALL, NOW)


def test_an_oversized_upstream_state_is_the_upstreams_failure() -> None:
    with pytest.raises(UpstreamError):
        _sealer().seal("x" * (MAX_STATE_BYTES + 1), ALICE, CALL, NOW)


def test_during_a_rotation_states_sealed_with_the_previous_key_still_open() -> None:
    before = RequestStateSealer(bytes(32), ttl_seconds=600).seal("s-old", ALICE, CALL, NOW)
    rotated = RequestStateSealer(KEY, ttl_seconds=600, previous=(bytes(32),))
    assert rotated.unseal(before, ALICE, CALL, NOW) == "s-old"
    with pytest.raises(ProtocolError):
        rotated.unseal(before, BOB, CALL, NOW)  # opened, and still bound to its caller
    after = rotated.seal("s-new", ALICE, CALL, NOW)
    with pytest.raises(ProtocolError):
        RequestStateSealer(bytes(32), ttl_seconds=600).unseal(after, ALICE, CALL, NOW)
    assert _sealer().unseal(after, ALICE, CALL, NOW) == "s-new"
