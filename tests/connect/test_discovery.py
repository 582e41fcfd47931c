"""The challenge of a 401 or 403: Bearer (RFC 6750 §3) first, else DPoP (RFC 9449 §7.1)."""

from __future__ import annotations

from mcp_bastion.connect.discovery import Challenge, parse_challenge

PRM = "https://gw.example.com/.well-known/oauth-protected-resource/mcp"


def test_a_dpop_challenge_names_the_resource_metadata_and_the_nonce_error() -> None:
    # RFC 9449 §9: a resource server demanding a nonce answers with the DPoP scheme only.
    header = f'DPoP error="use_dpop_nonce", resource_metadata="{PRM}", algs="ES256"'
    assert parse_challenge(401, header) == Challenge(401, "use_dpop_nonce", None, PRM)


def test_the_bearer_challenge_wins_when_both_are_offered() -> None:
    header = f'DPoP algs="ES256", Bearer error="insufficient_scope", scope="a b", resource_metadata="{PRM}"'
    assert parse_challenge(403, header) == Challenge(403, "insufficient_scope", "a b", PRM)


def test_other_schemes_and_no_header_give_an_empty_challenge() -> None:
    assert parse_challenge(401, None) == Challenge(401)
    assert parse_challenge(401, 'Basic realm="x"') == Challenge(401)
