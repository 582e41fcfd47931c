"""Bearer credentials in the Authorization header (RFC 6750 §2.1, TV-19) and our challenges (§3)."""

from __future__ import annotations

import pytest

from mcp_bastion.auth import bearer_token, challenge
from mcp_bastion.errors import InvalidToken, MissingToken

PRM = "https://gw.example/.well-known/oauth-protected-resource/demo/mcp"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("BeArEr abc", "abc"),
        ("Bearer  abc", "abc"),
        ("Bearer abc ", "abc"),
        ("Bearer eyJh.eyJz.c2ln", "eyJh.eyJz.c2ln"),
        ("Bearer a-b_c.d~e+f/g", "a-b_c.d~e+f/g"),
        ("Bearer abc==", "abc=="),
    ],
)
def test_bearer_token_accepted_forms(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer-xyz",
        "Bearerabc",
        "Basic YWxpY2U6c2VjcmV0",
        "Digest username=x",
        "DPoP abc",
        "Token abc",
        "abc",
        "Bearer\tabc",
        " Bearer abc",
    ],
)
def test_not_a_bearer_credential_is_a_missing_token(header: str | None) -> None:
    with pytest.raises(MissingToken) as caught:
        bearer_token(header)
    error = caught.value
    assert (error.status, error.error, error.message) == (401, "", "no bearer token")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ",
        "Bearer   ",
        "Bearer a b",
        "Bearer abc,def",
        "Bearer abc=def",
        "Bearer =abc",
        'Bearer abc"',
        "Bearer <script>",
        "Bearer abc\r\nX-Injected: 1",
        "Bearer abc\x00",
        "Bearer tökén",
        "bearer abc;",
    ],
)
def test_malformed_bearer_credentials_are_invalid_tokens(header: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        bearer_token(header)
    error = caught.value
    assert (error.status, error.error) == (401, "invalid_token")
    assert error.message == "malformed bearer credentials"


@pytest.mark.parametrize(
    ("scopes", "error", "description", "expected"),
    [
        ((), "", "", f'Bearer resource_metadata="{PRM}"'),
        (("tools.read",), "", "", f'Bearer scope="tools.read", resource_metadata="{PRM}"'),
        (
            ("tools.read", "tools.write"),
            "",
            "",
            f'Bearer scope="tools.read tools.write", resource_metadata="{PRM}"',
        ),
        (
            (),
            "invalid_token",
            "token has expired",
            f'Bearer error="invalid_token", error_description="token has expired", resource_metadata="{PRM}"',
        ),
        (
            ("tools.write",),
            "insufficient_scope",
            "need more",
            'Bearer error="insufficient_scope", error_description="need more", '
            f'scope="tools.write", resource_metadata="{PRM}"',
        ),
        ((), "invalid_token", "", f'Bearer error="invalid_token", resource_metadata="{PRM}"'),
    ],
)
def test_challenge_format(scopes: tuple[str, ...], error: str, description: str, expected: str) -> None:
    assert challenge(PRM, scopes, error, description) == expected


@pytest.mark.parametrize(
    ("description", "quoted"),
    [
        ('say "hi"', "say hi"),
        ("back\\slash", "backslash"),
        ('\\"', ""),
        ("line\r\nWWW-Authenticate: Basic", "lineWWW-Authenticate: Basic"),
        ("a\nb\rc\td", "abcd"),
        ("bell\x07esc\x1b[2J", "bellesc[2J"),
        ("del\x7fete \x1f\x20", "delete  "),  # RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E, no DEL
        ("naïve ✓", "nave "),
        ("x" * 500, "x" * 200),
        ("ok: allowed ~ chars !#$%&'()*+,-./[]^_`{|}", "ok: allowed ~ chars !#$%&'()*+,-./[]^_`{|}"),
    ],
)
def test_challenge_error_description_is_quotable(description: str, quoted: str) -> None:
    value = challenge(PRM, (), "invalid_token", description)
    assert value == f'Bearer error="invalid_token", error_description="{quoted}", resource_metadata="{PRM}"'
    assert "\r" not in value
    assert "\n" not in value
    # Exactly the quotes we put there: three quoted parameters.
    assert value.count('"') == 6


def test_description_without_error_code_is_still_escaped() -> None:
    value = challenge(PRM, (), "", 'x"y')
    assert value == f'Bearer error_description="xy", resource_metadata="{PRM}"'
