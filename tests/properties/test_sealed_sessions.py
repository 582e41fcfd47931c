"""Properties of sealed session ids: any string a client sends is refused (400 malformed, 404 not
found) unless it is a box this key sealed for this subject and server within the TTL; and what
was sealed comes back unchanged.
"""

from __future__ import annotations

import base64
import string

from hypothesis import given
from hypothesis import strategies as st

from mcp_bastion.errors import RequestRejected
from mcp_bastion.mcp.sessions import (
    MAX_SEALED_CHARS,
    MAX_UPSTREAM_ID_CHARS,
    SessionSealer,
    UnsealedSession,
    subject_digest,
)

from .strategies import budget, latin1_text, outcome

KEY = bytes(range(32))
TTL = 3600
NOW = 1_700_000_000.0
ALICE = subject_digest("https://idp.example", "alice")
BOB = subject_digest("https://idp.example", "bob")
SEALER = SessionSealer(KEY, ttl_seconds=TTL)
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
B64URL = string.ascii_letters + string.digits + "-_"

upstream_ids = st.text(alphabet=VISIBLE, min_size=1, max_size=MAX_UPSTREAM_ID_CHARS)
servers = st.sampled_from(["demo", "notes", "a-b_c"])
sealed_ids = st.one_of(
    latin1_text,
    st.text(max_size=60),
    st.text(alphabet=B64URL, max_size=120),
    st.binary(min_size=40, max_size=90).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()),
    st.binary(min_size=40, max_size=90).map(
        lambda b: base64.urlsafe_b64encode(b"\x01" + b).rstrip(b"=").decode()
    ),
    st.text(alphabet=VISIBLE, min_size=MAX_SEALED_CHARS - 2, max_size=MAX_SEALED_CHARS + 2),
)


def _raw(sealed: str) -> bytes:
    return base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))


def _malformed(sealed: str) -> bool:
    return not sealed or len(sealed) > MAX_SEALED_CHARS or not all(c in VISIBLE for c in sealed)


@given(sealed=sealed_ids, server=servers)
@budget(500)
def test_a_forged_session_id_is_malformed_or_not_found(sealed: str, server: str) -> None:
    result = outcome(RequestRejected, SEALER.unseal, sealed, ALICE, server, NOW)
    assert isinstance(result, RequestRejected)  # nobody without the key makes a box
    assert result.status == (400 if _malformed(sealed) else 404)


@given(
    upstream_id=upstream_ids,
    server=servers,
    age=st.floats(0, TTL),
    issued=st.floats(1.0, 4e9),
)
@budget(300)
def test_a_sealed_id_opens_to_what_was_sealed(
    upstream_id: str, server: str, age: float, issued: float
) -> None:
    sealed = SEALER.seal(upstream_id, ALICE, server, issued)
    assert 0 < len(sealed) <= MAX_SEALED_CHARS
    assert all(c in B64URL for c in sealed)  # visible ASCII (transports §Session Management)
    opened = SEALER.unseal(sealed, ALICE, server, int(issued) + age)
    assert opened == UnsealedSession(upstream_id, ALICE, int(issued))
    # Another replica with the same key opens it too; nobody else does.
    assert SessionSealer(KEY, ttl_seconds=TTL).unseal(sealed, ALICE, server, int(issued) + age) == opened


@given(upstream_id=upstream_ids, server=servers, late=st.floats(TTL + 1, 10 * TTL))
@budget(200)
def test_a_sealed_id_is_not_found_for_another_user_server_key_or_after_the_ttl(
    upstream_id: str, server: str, late: float
) -> None:
    sealed = SEALER.seal(upstream_id, ALICE, server, NOW)
    for attempt in (
        lambda: SEALER.unseal(sealed, BOB, server, NOW),
        lambda: SEALER.unseal(sealed, ALICE, server + "x", NOW),
        lambda: SEALER.unseal(sealed, ALICE, server, NOW + late),
        lambda: SessionSealer(bytes(32), ttl_seconds=TTL).unseal(sealed, ALICE, server, NOW),
    ):
        refused = outcome(RequestRejected, attempt)
        assert isinstance(refused, RequestRejected)
        assert refused.status == 404


@given(
    upstream_id=upstream_ids,
    position=st.integers(min_value=0),
    replacement=st.sampled_from(B64URL + "=.+/ \x00"),
)
@budget(300)
def test_a_tampered_sealed_id_never_opens_to_anything_else(
    upstream_id: str, position: int, replacement: str
) -> None:
    sealed = SEALER.seal(upstream_id, ALICE, "demo", NOW)
    position %= len(sealed)
    tampered = sealed[:position] + replacement + sealed[position + 1 :]
    result = outcome(RequestRejected, SEALER.unseal, tampered, ALICE, "demo", NOW)
    if isinstance(result, RequestRejected):
        assert result.status in (400, 404)
    else:
        # Only a re-spelling of the same bytes (spare bits of the last base64 character) opens,
        # and then to the very same session.
        assert _raw(tampered) == _raw(sealed)
        assert result.upstream_id == upstream_id
