"""Sealed session ids: bound to subject and server, expiring, tamper-evident (TS-03, TS-04)."""

from __future__ import annotations

import base64
import re

import pytest

from mcp_bastion.errors import RequestRejected
from mcp_bastion.mcp.sessions import (
    SessionSealer,
    UnsealedSession,
    subject_digest,
    valid_upstream_session_id,
)

KEY = bytes(range(32))
TTL = 3600
NOW = 1_700_000_000.0
ALICE = subject_digest("https://idp.example", "alice")
BOB = subject_digest("https://idp.example", "bob")
MAX_SEALED_CHARS = 1024  # an Mcp-Session-Id longer than this is malformed (400), unread
OPENED_CACHE_SIZE = 4096  # ids remembered as opened, oldest evicted first


@pytest.fixture
def sealer() -> SessionSealer:
    return SessionSealer(KEY, ttl_seconds=TTL)


def _rejected(
    sealer: SessionSealer, sealed: str, *, subject: bytes = ALICE, server: str = "demo", now: float = NOW
) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        sealer.unseal(sealed, subject, server, now)
    return caught.value


def _not_found(
    sealer: SessionSealer, sealed: str, *, subject: bytes = ALICE, server: str = "demo", now: float = NOW
) -> None:
    error = _rejected(sealer, sealed, subject=subject, server=server, now=now)
    assert (error.status, error.message) == (404, "Session not found")


def test_seal_unseal_roundtrip(sealer: SessionSealer) -> None:
    sealed = sealer.seal("upstream-session-1", ALICE, "demo", NOW)
    assert sealer.unseal(sealed, ALICE, "demo", NOW + 5) == UnsealedSession(
        "upstream-session-1", ALICE, int(NOW)
    )


# Sealed by this format's first release with KEY: "upstream-session-1" for ALICE on "demo" at
# NOW. Replicas of different releases share ids during a rolling upgrade, so this must open.
KNOWN_ANSWER = (
    "AX4juM8o_0aqiLzjoNkqP2AeZC76Ljqvk9cxwGRsL5IR1ZJWFwjBIZj2JMKbD_GXtD7rtAY8lxB7SwDS4rwWnjmZVGOmtCs"
)


def test_an_id_sealed_by_an_earlier_release_still_opens(sealer: SessionSealer) -> None:
    opened = sealer.unseal(KNOWN_ANSWER, ALICE, "demo", NOW + 1)
    assert opened == UnsealedSession("upstream-session-1", ALICE, int(NOW))
    raw = base64.urlsafe_b64decode(KNOWN_ANSWER + "=" * (-len(KNOWN_ANSWER) % 4))
    # version 0x01, 12-byte nonce, then AES-GCM over issued-at (8) + subject digest (16) + id, 16-byte tag
    assert raw[0] == 1
    assert len(raw) == 1 + 12 + 8 + 16 + len("upstream-session-1") + 16


def test_an_empty_upstream_id_seals_into_the_shortest_box_and_opens(sealer: SessionSealer) -> None:
    sealed = sealer.seal("", ALICE, "demo", NOW)
    assert len(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))) == 1 + 12 + 8 + 16 + 16
    assert sealer.unseal(sealed, ALICE, "demo", NOW).upstream_id == ""


def test_any_replica_with_the_key_can_open(sealer: SessionSealer) -> None:
    sealed = sealer.seal("u", ALICE, "demo", NOW)
    assert SessionSealer(KEY, ttl_seconds=TTL).unseal(sealed, ALICE, "demo", NOW).upstream_id == "u"


def test_another_key_cannot_open(sealer: SessionSealer) -> None:
    sealed = sealer.seal("u", ALICE, "demo", NOW)
    _not_found(SessionSealer(bytes(32), ttl_seconds=TTL), sealed)


def test_ts03_other_subject_gets_404(sealer: SessionSealer) -> None:
    _not_found(sealer, sealer.seal("u", ALICE, "demo", NOW), subject=BOB)


def test_same_subject_at_another_issuer_gets_404(sealer: SessionSealer) -> None:
    other = subject_digest("https://other-idp.example", "alice")
    _not_found(sealer, sealer.seal("u", ALICE, "demo", NOW), subject=other)


def test_other_server_gets_404(sealer: SessionSealer) -> None:
    _not_found(sealer, sealer.seal("u", ALICE, "demo", NOW), server="notes")


@pytest.mark.parametrize(("age", "ok"), [(0, True), (TTL, True), (TTL + 1, False), (10 * TTL, False)])
def test_expiry_boundary(sealer: SessionSealer, age: int, ok: bool) -> None:
    sealed = sealer.seal("u", ALICE, "demo", NOW)
    if ok:
        assert sealer.unseal(sealed, ALICE, "demo", NOW + age).upstream_id == "u"
    else:
        _not_found(sealer, sealed, now=NOW + age)


def _flip(sealed: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("index", [0, 1, 12, 13, 20, 36, -1])
def test_tampered_byte_gets_404(sealer: SessionSealer, index: int) -> None:
    _not_found(sealer, _flip(sealer.seal("upstream-id", ALICE, "demo", NOW), index))


@pytest.mark.parametrize(
    "sealed",
    [
        "A",
        "AAAAA",
        "AAAA",
        "abc",
        "x" * 40,
        "not!base64url",
        "a.b.c",
        "AAAA+/AA",
        # 4n+1 characters: no byte string encodes to that length.
        "A" * 61,
    ],
)
def test_unknown_ids_get_404(sealer: SessionSealer, sealed: str) -> None:
    _not_found(sealer, sealed)


@pytest.mark.parametrize(
    "sealed",
    [
        "",
        "abc\x00def",
        "abc\r\ndef",
        "abc\n",
        "abc\r",
        "\nabc",
        "abc def",
        "abc\tdef",
        "sess-é",
        "sess-\u2028",
        "\x7f",
        "A" * 1025,
        "A" * 10_240,
    ],
)
def test_ts04_malformed_ids_get_400(sealer: SessionSealer, sealed: str) -> None:
    error = _rejected(sealer, sealed)
    assert (error.status, error.message) == (400, "Mcp-Session-Id is malformed")


def test_an_id_at_the_length_cap_is_read_and_one_past_it_is_not(sealer: SessionSealer) -> None:
    _not_found(sealer, "A" * 1024)  # well-formed, opens to nothing
    assert _rejected(sealer, "A" * 1025).status == 400


def test_a_real_id_with_a_trailing_newline_is_malformed(sealer: SessionSealer) -> None:
    sealed = sealer.seal("u", ALICE, "demo", NOW)
    error = _rejected(sealer, sealed + "\n")
    assert error.status == 400


def test_issued_ids_are_visible_ascii_and_differ(sealer: SessionSealer) -> None:
    ids = {sealer.seal("same", ALICE, "demo", NOW) for _ in range(200)}
    assert len(ids) == 200  # a fresh random nonce per seal
    for sealed in ids:
        assert re.fullmatch(r"[\x21-\x7e]+", sealed)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", sealed)
        assert len(sealed) <= MAX_SEALED_CHARS
        # 12-byte nonce + 16-byte tag beyond the payload: far over 128 bits no one can guess.
        assert len(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))) >= 1 + 12 + 24 + 16


def test_longest_upstream_id_still_fits(sealer: SessionSealer) -> None:
    sealed = sealer.seal("u" * 256, ALICE, "demo", NOW)
    assert len(sealed) <= MAX_SEALED_CHARS
    assert sealer.unseal(sealed, ALICE, "demo", NOW).upstream_id == "u" * 256


@pytest.mark.parametrize("key", [b"", b"k" * 16, b"k" * 31, b"k" * 33])
def test_key_must_be_32_bytes(key: bytes) -> None:
    with pytest.raises(ValueError, match="session key must be 32 bytes"):
        SessionSealer(key, ttl_seconds=TTL)


def test_decode_key() -> None:
    text = base64.b64encode(KEY).decode()
    assert SessionSealer.decode_key(text) == KEY
    assert SessionSealer.decode_key(f"  {text}\n") == KEY


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        base64.b64encode(b"k" * 16).decode(),
        "QUJD",
        # The right 32 bytes with stray characters in between: a damaged key file, not a key.
        base64.b64encode(KEY).decode()[:20] + "!*" + base64.b64encode(KEY).decode()[20:],
        base64.urlsafe_b64encode(b"\xfb" * 32).decode(),  # the URL-safe alphabet is not the key's
    ],
)
def test_decode_key_refuses_bad_keys(text: str) -> None:
    with pytest.raises(ValueError, match="32 random bytes, base64-encoded"):
        SessionSealer.decode_key(text)


def test_subject_digest_separates_issuer_and_subject() -> None:
    assert subject_digest("a", "bc") != subject_digest("ab", "c")
    assert len(subject_digest("a", "b")) == 16


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("abc-123", True),
        ("a", True),
        ("!~", True),
        ("u" * 256, True),
        ("u" * 257, False),
        ("", False),
        ("a b", False),
        ("abc\n", False),
        ("a\r\nb", False),
        ("sess-é", False),
        ("a\x00", False),
    ],
)
def test_valid_upstream_session_id(value: str, ok: bool) -> None:
    assert valid_upstream_session_id(value) is ok


def test_an_id_opened_before_is_still_checked_for_subject_server_and_age(sealer: SessionSealer) -> None:
    """Opened ids are remembered (no decryption per request); the checks still run every time."""
    sealed = sealer.seal("u", ALICE, "demo", NOW)
    assert sealer.unseal(sealed, ALICE, "demo", NOW).upstream_id == "u"  # now remembered
    _not_found(sealer, sealed, subject=BOB)
    _not_found(sealer, sealed, server="other")
    _not_found(sealer, sealed, now=NOW + TTL + 1)
    assert sealer.unseal(sealed, ALICE, "demo", NOW + TTL).upstream_id == "u"


def test_an_id_opened_before_is_not_decrypted_again(sealer: SessionSealer) -> None:
    # The id comes with every request of a session: one AES-GCM open per id, not per request.
    sealed = sealer.seal("u", ALICE, "demo", NOW)
    real = sealer._openers[0]
    opened: list[bytes] = []

    class Counting:
        def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
            opened.append(aad)
            return real.decrypt(nonce, data, aad)

    sealer._openers = (Counting(),)  # type: ignore[assignment]
    for _ in range(3):
        assert sealer.unseal(sealed, ALICE, "demo", NOW).upstream_id == "u"
    assert opened == [b"demo"]
    _not_found(sealer, sealed, server="notes")  # another server: opened (and refused) on its own
    assert opened == [b"demo", b"notes"]


def test_remembered_ids_are_bounded(sealer: SessionSealer) -> None:
    ids = [sealer.seal(f"u{i}", ALICE, "demo", NOW) for i in range(OPENED_CACHE_SIZE + 10)]
    for sealed in ids:
        sealer.unseal(sealed, ALICE, "demo", NOW)
    assert len(sealer._opened) == OPENED_CACHE_SIZE
    assert sealer.unseal(ids[0], ALICE, "demo", NOW).upstream_id == "u0"  # evicted, opened again


def test_during_a_rotation_ids_sealed_with_the_previous_key_still_open() -> None:
    old = SessionSealer(bytes(32), ttl_seconds=TTL)
    rotated = SessionSealer(KEY, ttl_seconds=TTL, previous=(bytes(32),))
    before = old.seal("u-old", ALICE, "demo", NOW)
    assert rotated.unseal(before, ALICE, "demo", NOW).upstream_id == "u-old"
    # New ids are sealed with the current key only: a replica still on the old key cannot open
    # them, so the previous key can be dropped once every replica has the new one.
    after = rotated.seal("u-new", ALICE, "demo", NOW)
    _not_found(old, after)
    assert SessionSealer(KEY, ttl_seconds=TTL).unseal(after, ALICE, "demo", NOW).upstream_id == "u-new"
    # A previous key opens, it does not relax: another user still gets 404.
    _not_found(rotated, before, subject=BOB)
