"""The token store: 0600, atomic, keyed by issuer and resource, tolerant of a damaged file."""

from __future__ import annotations

import stat
from pathlib import Path

from mcp_bastion.connect.tokens import ClientRegistration, StoredTokens, TokenStore

ISSUER = "https://idp.example.com"
RESOURCE = "https://gw.example.com/notes/mcp"


def test_tokens_are_kept_0600_per_issuer_and_resource(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sub" / "tokens.json")
    store.save(
        ISSUER, RESOURCE, tokens=StoredTokens("at", "rt", 10.0, "read"), client=ClientRegistration("c")
    )

    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.tokens(ISSUER, RESOURCE) == StoredTokens("at", "rt", 10.0, "read")
    assert store.client(ISSUER, RESOURCE) == ClientRegistration("c")
    # A token is never offered to another resource or by another issuer (RFC 8707 audience).
    assert store.tokens(ISSUER, "https://gw.example.com/other/mcp") is None
    assert store.tokens("https://evil.example.com", RESOURCE) is None
    assert [p.name for p in store.path.parent.iterdir()] == ["tokens.json"]  # no temporary left


def test_a_key_cannot_be_forged_by_spaces_in_urls(tmp_path: Path) -> None:
    # "issuer resource" joined by a space: percent-encoding keeps the two parts apart.
    store = TokenStore(tmp_path / "tokens.json")
    store.save("https://a.example x", "y", tokens=StoredTokens("at"))
    assert store.tokens("https://a.example", "x y") is None


def test_forgetting_tokens_keeps_the_registration(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.save(ISSUER, RESOURCE, tokens=StoredTokens("at"), client=ClientRegistration("c"))
    store.forget_tokens(ISSUER, RESOURCE)
    assert store.tokens(ISSUER, RESOURCE) is None
    assert store.client(ISSUER, RESOURCE) == ClientRegistration("c")


def test_a_damaged_file_is_treated_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    for damaged in ("{not json", "[1, 2]", '{"k": {"tokens": {"unexpected": 1}}}'):
        path.write_text(damaged)
        assert TokenStore(path).tokens(ISSUER, RESOURCE) is None


def test_freshness_keeps_a_margin_before_expiry() -> None:
    assert StoredTokens("at", expires_at=1000.0).fresh(900.0)
    assert not StoredTokens("at", expires_at=1000.0).fresh(980.0)
    assert StoredTokens("at").fresh(1e12)  # no expires_in: used until the server refuses it
