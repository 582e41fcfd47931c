"""The authenticate stage against a fake TokenVerifier: what it asks, and when.

The stage's own rules: the token comes only from the Authorization header (TV-19), is
checked for this route's resource and only its issuers (a token for another server of the
same gateway is not accepted here), a verified-before header skips verification, and a
server with auth off is anonymous whatever the client sends.
"""

from __future__ import annotations

import pytest

from mcp_bastion.auth.principal import ANONYMOUS, Principal
from mcp_bastion.errors import InvalidToken, MissingToken
from mcp_bastion.pipeline.authenticate import Authenticate

from .fakes import ISSUER, POST_HEADERS, RESOURCE, config, exchange, gateway, principal, route

ALICE = principal("tools.read")


class FakeVerifier:
    """Remembers one header value (if told to); verifies by handing back `answer`."""

    def __init__(self, *, remembers: str | None = None, answer: Principal | Exception = ALICE) -> None:
        self._remembers = remembers
        self._answer = answer
        self.remembered_calls: list[tuple[str, str, frozenset[str]]] = []
        self.verify_calls: list[tuple[str, str, frozenset[str]]] = []

    def remembered(
        self, authorization: str, resource: str, allowed_issuers: frozenset[str]
    ) -> Principal | None:
        self.remembered_calls.append((authorization, resource, allowed_issuers))
        return principal("tools.write", subject="remembered") if authorization == self._remembers else None

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        self.verify_calls.append((token, resource, allowed_issuers))
        if isinstance(self._answer, Exception):
            raise self._answer
        return self._answer


def _with(authorization: str | None) -> dict[str, str]:
    headers = dict(POST_HEADERS)
    if authorization is not None:
        headers["authorization"] = authorization
    return headers


async def test_a_remembered_header_is_not_verified_again() -> None:
    verifier = FakeVerifier(remembers="Bearer abc.def.ghi")
    ex = exchange(route(), headers=_with("Bearer abc.def.ghi"))
    await Authenticate(verifier)(ex)
    assert ex.principal is not None
    assert ex.principal.subject == "remembered"
    # Asked with the header as sent, for this route's resource and issuers: a remembered
    # principal of another server's audience must not be handed back here.
    assert verifier.remembered_calls == [("Bearer abc.def.ghi", RESOURCE, frozenset({ISSUER}))]
    assert verifier.verify_calls == []


async def test_an_unknown_header_is_verified_with_the_token_resource_and_issuers() -> None:
    verifier = FakeVerifier()
    ex = exchange(route(), headers=_with("bearer  abc.def-ghi_~+/=="))
    await Authenticate(verifier)(ex)
    assert ex.principal is ALICE
    assert len(verifier.remembered_calls) == 1
    # The scheme is case-insensitive (RFC 9110 §11.1) and only the b64token goes to the verifier.
    assert verifier.verify_calls == [("abc.def-ghi_~+/==", RESOURCE, frozenset({ISSUER}))]


async def test_only_the_servers_own_identity_providers_are_allowed() -> None:
    cfg = config(
        {"name": "demo", "upstream": "http://upstream.test/mcp", "identity_providers": ["other"]},
        identity_providers=[
            {"name": "corp", "issuer": ISSUER},
            {"name": "other", "issuer": "https://other-idp.example"},
        ],
    )
    target = gateway(cfg).routes["/demo/mcp"]
    verifier = FakeVerifier()
    await Authenticate(verifier)(exchange(target, headers=_with("Bearer tok")))
    assert verifier.verify_calls == [("tok", RESOURCE, frozenset({"https://other-idp.example"}))]


async def test_auth_off_is_anonymous_and_never_asks_the_verifier() -> None:
    verifier = FakeVerifier()
    ex = exchange(route(auth=False), headers=_with("Bearer someone-elses-token"))
    await Authenticate(verifier)(ex)
    assert ex.principal is ANONYMOUS
    assert verifier.remembered_calls == []
    assert verifier.verify_calls == []


@pytest.mark.parametrize(
    "authorization",
    [
        None,  # no header at all (RFC 6750 §3.1: the challenge carries no error code)
        "Basic YWxpY2U6c2VjcmV0",  # another scheme is no bearer token either
        "Bearer",  # the scheme alone
    ],
)
async def test_no_bearer_token_is_missing_token(authorization: str | None) -> None:
    verifier = FakeVerifier()
    ex = exchange(route(), headers=_with(authorization))
    with pytest.raises(MissingToken):
        await Authenticate(verifier)(ex)
    assert verifier.verify_calls == []
    assert ex.principal is None


@pytest.mark.parametrize("authorization", ["Bearer a b", "Bearer tok\x00en", 'Bearer "tok"'])
async def test_malformed_bearer_credentials_are_invalid_without_verifying(authorization: str) -> None:
    verifier = FakeVerifier()
    with pytest.raises(InvalidToken):
        await Authenticate(verifier)(exchange(route(), headers=_with(authorization)))
    assert verifier.verify_calls == []


async def test_a_verifier_refusal_leaves_no_principal() -> None:
    verifier = FakeVerifier(answer=InvalidToken("invalid token"))
    ex = exchange(route(), headers=_with("Bearer tok"))
    with pytest.raises(InvalidToken):
        await Authenticate(verifier)(ex)
    assert ex.principal is None
