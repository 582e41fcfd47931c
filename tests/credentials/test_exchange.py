"""`ExchangedCredential` against a real IdP (oidc-provider with tests/e2e/oidc_provider/exchange.mjs),
with the gateway's clock in the test's hands: what is cached, for whom, for how long, and how
the gateway authenticates to the token endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from joserfc.jwk import ECKey

from mcp_bastion.auth.idp_client import IdpClient
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config.identity import ExchangeConfig, IdpClientConfig
from mcp_bastion.config.model import IdentityProviderConfig, SecretRef
from mcp_bastion.credentials.exchange import ExchangedCredential, IdpCredentialError, carrying_token

from ..e2e.oidc_provider.fixture import OidcProvider, StaticClient, start_oidc_provider

pytestmark = [pytest.mark.e2e, pytest.mark.node]

EXTENSION = str(Path(__file__).parents[1] / "e2e" / "oidc_provider" / "exchange.mjs")
CALLER_RESOURCE = "https://gw.example/files/mcp"  # never contacted: an audience
UPSTREAM = "https://files.upstream.example/mcp"
REFUSING = "https://refusing.upstream.example/mcp"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ASSERTION_KEY = ECKey.generate_key("P-256")
CLIENTS = (
    StaticClient("gw-basic", "basic-secret", grant_types=("client_credentials", EXCHANGE)),
    StaticClient(
        "gw-post", "post-secret", grant_types=(EXCHANGE,), token_endpoint_auth_method="client_secret_post"
    ),
    StaticClient(
        "gw-jwt",
        grant_types=(EXCHANGE,),
        token_endpoint_auth_method="private_key_jwt",
        extra={
            "jwks": {"keys": [dict(ASSERTION_KEY.as_dict(private=False), kid=ASSERTION_KEY.thumbprint())]},
            "token_endpoint_auth_signing_alg": "ES256",
        },
    ),
    StaticClient("alice-app", "alice-secret"),
    StaticClient("bob-app", "bob-secret"),
)
SECRETS = {
    "gw-basic": "basic-secret",
    "gw-post": "post-secret",
    "alice-app": "alice-secret",
    "bob-app": "bob-secret",
}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    resources = {
        CALLER_RESOURCE: ("tools.read", "tools.write"),
        UPSTREAM: ("tools.read",),
        REFUSING: ("tools.read",),
    }
    extra = {"extension": EXTENSION, "exchange": {REFUSING: "invalid_grant"}}
    with start_oidc_provider(resources, clients=CLIENTS, extra_config=extra) as provider:
        yield provider


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def caller(
    idp: OidcProvider, client: str, *, subject: str | None = None, expires_at: float | None = None
) -> Principal:
    """A principal as the authenticate stage makes it, carrying a real token of `client`."""
    answer = httpx.post(
        idp.token_endpoint,
        data={"grant_type": "client_credentials", "resource": CALLER_RESOURCE, "scope": "tools.read"},
        auth=(client, SECRETS[client]),
    )
    assert answer.status_code == 200, answer.text
    principal = Principal(
        subject=subject or client,
        issuer=idp.issuer,
        client_id="shared-mcp-client",  # two users of one MCP client: only the subject differs
        scopes=frozenset({"tools.read"}),
        token_hash="h",
        expires_at=expires_at if expires_at is not None else time.time() + 3000,
    )
    return carrying_token(principal, answer.json()["access_token"])


def credential(
    idp: OidcProvider,
    http: httpx.AsyncClient,
    clock: Clock,
    *,
    client: str = "gw-basic",
    grant: str = "exchange",
    resource: str = UPSTREAM,
    **client_config: Any,
) -> ExchangedCredential:
    provider = IdentityProviderConfig(
        name="idp", issuer=idp.issuer, allow_insecure_http=True, fetch_timeout_seconds=3
    )
    method = client_config.pop("auth_method", "client_secret_basic")
    if method == "private_key_jwt":
        config = IdpClientConfig(
            client_id=client, auth_method=method, private_key=SecretRef(env="X"), assertion_algorithm="ES256"
        )
        secrets: dict[str, Any] = {
            "secret": None,
            "private_key": orjson.dumps(ASSERTION_KEY.as_dict(private=True)).decode(),
        }
    else:
        config = IdpClientConfig(client_id=client, auth_method=method, secret=SecretRef(env="X"))
        secrets = {"secret": SECRETS[client], "private_key": None}
    idp_client = IdpClient(provider, config, http, clock=clock, **secrets)
    return ExchangedCredential(
        grant, idp_client, ExchangeConfig(identity_provider="idp", resource=resource), UPSTREAM, clock=clock
    )


def exchanges(idp: OidcProvider, resource: str = UPSTREAM) -> int:
    counts = httpx.get(f"{idp.issuer}/test/counts").json()
    return int(counts.get(f"token-exchange {resource}", 0))


def sub_of(header: tuple[bytes, bytes] | None) -> str:
    assert header is not None
    payload = header[1].split(b" ", 1)[1].split(b".")[1]
    return str(orjson.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))["sub"])


async def test_two_users_of_one_client_never_share_an_exchanged_token(
    idp: OidcProvider, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    upstream = credential(idp, http, clock)
    alice = caller(idp, "alice-app", subject="alice")
    bob = caller(idp, "bob-app", subject="bob")
    first = await upstream.header(alice, ("tools.read",))
    # Same client, issuer, upstream and scopes: only the subject tells them apart.
    second = await upstream.header(bob, ("tools.read",))
    assert first != second
    assert (sub_of(first), sub_of(second)) == ("alice-app", "bob-app")


async def test_cached_until_shortly_before_expiry(idp: OidcProvider, http: httpx.AsyncClient) -> None:
    clock = Clock()
    upstream = credential(idp, http, clock)
    alice = caller(idp, "alice-app", expires_at=clock.now + 7200)  # outlives what it is exchanged for
    before = exchanges(idp)
    first = await upstream.header(alice, ("tools.read",))
    clock.now += 3600 - 31  # the IdP's tokens live 3600 s; the margin is 30 s
    assert await upstream.header(alice, ("tools.read",)) == first
    assert exchanges(idp) == before + 1
    clock.now += 2
    assert await upstream.header(alice, ("tools.read",)) != first
    assert exchanges(idp) == before + 2


async def test_never_outlives_the_callers_token(idp: OidcProvider, http: httpx.AsyncClient) -> None:
    clock = Clock()
    upstream = credential(idp, http, clock)
    alice = caller(idp, "alice-app", expires_at=clock.now + 10)
    before = exchanges(idp)
    await upstream.header(alice, ("tools.read",))
    await upstream.header(alice, ("tools.read",))
    assert exchanges(idp) == before + 1
    clock.now += 11  # the caller's token has expired: its exchanged token is not reused
    await upstream.header(alice, ("tools.read",))
    assert exchanges(idp) == before + 2


async def test_concurrent_requests_share_one_exchange(idp: OidcProvider, http: httpx.AsyncClient) -> None:
    upstream = credential(idp, http, Clock())
    alice = caller(idp, "alice-app")
    before = exchanges(idp)
    headers = await asyncio.gather(*(upstream.header(alice, ("tools.read",)) for _ in range(10)))
    assert len(set(headers)) == 1
    assert exchanges(idp) == before + 1


async def test_a_failed_exchange_fails_every_waiter_and_is_not_cached(
    idp: OidcProvider, http: httpx.AsyncClient
) -> None:
    upstream = credential(idp, http, Clock(), resource=REFUSING)
    alice = caller(idp, "alice-app")
    before = exchanges(idp, REFUSING)
    results = await asyncio.gather(
        *(upstream.header(alice, ("tools.read",)) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, IdpCredentialError) for r in results)
    assert exchanges(idp, REFUSING) == before + 1  # one flight, shared
    with pytest.raises(IdpCredentialError):
        await upstream.header(alice, ("tools.read",))
    assert exchanges(idp, REFUSING) == before + 2  # not cached


async def test_without_the_callers_token_nothing_is_sent(idp: OidcProvider, http: httpx.AsyncClient) -> None:
    upstream = credential(idp, http, Clock())
    bare = Principal("alice", idp.issuer, "c", frozenset({"tools.read"}), "h", time.time() + 60)
    before = exchanges(idp)
    with pytest.raises(IdpCredentialError) as refused:
        await upstream.header(bare, ("tools.read",))
    assert refused.value.message == "the upstream credential could not be obtained"
    assert exchanges(idp) == before  # no fallback of any kind


@pytest.mark.parametrize(
    ("client", "method"),
    [("gw-basic", "client_secret_basic"), ("gw-post", "client_secret_post"), ("gw-jwt", "private_key_jwt")],
)
async def test_client_authentication_methods(
    idp: OidcProvider, http: httpx.AsyncClient, client: str, method: str
) -> None:
    upstream = credential(idp, http, Clock(), client=client, auth_method=method)
    header = await upstream.header(caller(idp, "alice-app"), ("tools.read",))
    assert sub_of(header) == "alice-app"


async def test_wrong_client_secret_is_an_idp_refusal(idp: OidcProvider, http: httpx.AsyncClient) -> None:
    upstream = credential(idp, http, Clock())
    upstream._idp._secret = "not-the-secret"
    with pytest.raises(IdpCredentialError) as refused:
        await upstream.header(caller(idp, "alice-app"), ("tools.read",))
    assert refused.value.audit_reason == "token exchange refused by the IdP: invalid_client (HTTP 401)"


async def test_a_caller_leaving_does_not_cancel_the_exchange_others_wait_on(
    idp: OidcProvider, http: httpx.AsyncClient
) -> None:
    upstream = credential(idp, http, Clock())
    alice = caller(idp, "alice-app")
    before = exchanges(idp)
    leaving = asyncio.ensure_future(upstream.header(alice, ("tools.read",)))
    staying = asyncio.ensure_future(upstream.header(alice, ("tools.read",)))
    await asyncio.sleep(0)  # both are waiting on the one exchange
    leaving.cancel()  # the first caller's client disconnected
    assert sub_of(await staying) == "alice-app"
    assert leaving.cancelled()
    assert exchanges(idp) == before + 1
