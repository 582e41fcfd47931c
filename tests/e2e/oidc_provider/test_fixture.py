"""The oidc-provider fixture against the real process: what the gateway can rely on.

Each test records one behaviour of panva's oidc-provider 9 as configured by
``server.mjs``, so gateway tests built on it start from facts, not assumptions.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from tests.e2e.oidc_provider.fixture import (
    OidcProvider,
    OidcProviderStartError,
    SigningAlg,
    StaticClient,
    start_oidc_provider,
)
from tests.e2e.oidc_provider.flows import (
    AuthorizationResponse,
    Pkce,
    authorization_url,
    follow_to_redirect_uri,
)

pytestmark = [pytest.mark.e2e, pytest.mark.node]

# Resource indicators only: nothing listens there, the provider never calls them.
MCP = "http://127.0.0.1:8765/mcp"
FILES = "http://127.0.0.1:8766/files/mcp"
RESOURCES = {MCP: ("mcp:read", "mcp:write"), FILES: ("files:read",)}
# What the MCP SDK registers with DCR (nothing listens there either).
REDIRECT_URI = "http://localhost:33418/callback"


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with start_oidc_provider(RESOURCES) as provider:
        yield provider


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # A fresh cookie jar per test: each test is a new browser as far as the provider knows.
    with httpx.Client(timeout=10) as client:
        yield client


def verify_access_token(idp: OidcProvider, http: httpx.Client, token: str, resource: str) -> jwt.Token:
    """Verify signature and the RFC 9068 claims the gateway will check, against the live JWKS."""
    keys = KeySet.import_key_set(http.get(idp.jwks_uri).json())
    decoded = jwt.decode(token, keys, algorithms=[idp.alg])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": idp.issuer},
        aud={"essential": True, "value": resource},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        client_id={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    return decoded


def client_credentials(
    idp: OidcProvider, http: httpx.Client, **form: str
) -> tuple[httpx.Response, dict[str, Any]]:
    service = idp.client()
    assert service.client_secret is not None
    response = http.post(
        idp.token_endpoint,
        data={"grant_type": "client_credentials", **form},
        auth=(service.client_id, service.client_secret),
    )
    return response, response.json()


def register_public_client(
    idp: OidcProvider,
    http: httpx.Client,
    *,
    redirect_uri: str = REDIRECT_URI,
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    **metadata: str,
) -> str:
    """RFC 7591 registration as the MCP SDK does it: a public client, no secret."""
    response = http.post(
        idp.registration_endpoint,
        json={
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
            "grant_types": list(grant_types),
            "response_types": ["code"],
            "client_name": "fixture test",
            **metadata,
        },
    )
    assert response.status_code == 201, response.text
    assert "client_secret" not in response.json()
    return str(response.json()["client_id"])


def authorize(
    idp: OidcProvider,
    http: httpx.Client,
    client_id: str,
    pkce: Pkce | None,
    *,
    scope: str = "mcp:read",
    resources: tuple[str, ...] = (MCP,),
) -> AuthorizationResponse:
    state = secrets.token_urlsafe(16)
    url = authorization_url(
        idp.authorization_endpoint,
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        pkce=pkce,
        state=state,
        scope=scope,
        resources=resources,
    )
    response = follow_to_redirect_uri(http, url, REDIRECT_URI)
    assert response.state == state
    return response


def redeem_code(
    idp: OidcProvider, http: httpx.Client, client_id: str, code: str, pkce: Pkce, **form: str
) -> httpx.Response:
    return http.post(
        idp.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
            "client_id": client_id,
            **form,
        },
    )


def refresh(idp: OidcProvider, http: httpx.Client, client_id: str, refresh_token: str) -> httpx.Response:
    return http.post(
        idp.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
    )


# --- metadata -------------------------------------------------------------------------


def test_metadata_is_served_at_both_well_known_paths(idp: OidcProvider, http: httpx.Client) -> None:
    oauth = http.get(f"{idp.issuer}/.well-known/oauth-authorization-server")
    openid = http.get(f"{idp.issuer}/.well-known/openid-configuration")
    assert oauth.status_code == openid.status_code == 200
    assert oauth.json() == openid.json()
    assert oauth.json()["issuer"] == idp.issuer  # no trailing slash: compared byte for byte


def test_metadata_has_no_path_suffixed_or_protected_resource_variants(
    idp: OidcProvider, http: httpx.Client
) -> None:
    # An authorization server only: RFC 9728 documents are the gateway's job, and with an
    # issuer without a path there is no RFC 8414 section 3.1 path-inserted form to serve.
    assert http.get(f"{idp.issuer}/.well-known/oauth-protected-resource").status_code == 404
    assert http.get(f"{idp.issuer}/.well-known/oauth-authorization-server/mcp").status_code == 404


def test_metadata_advertises_what_mcp_clients_rely_on(idp: OidcProvider, http: httpx.Client) -> None:
    metadata = http.get(idp.metadata_url).json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    # RFC 9207: the MCP SDK then requires `iss` on the authorization response.
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["response_types_supported"] == ["code"]
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    endpoints = {
        "authorization_endpoint": idp.authorization_endpoint,
        "token_endpoint": idp.token_endpoint,
        "registration_endpoint": idp.registration_endpoint,
        "introspection_endpoint": idp.introspection_endpoint,
        "revocation_endpoint": idp.revocation_endpoint,
        "jwks_uri": idp.jwks_uri,
    }
    assert {name: metadata[name] for name in endpoints} == endpoints
    # The resource scopes are listed (so registrations naming them are accepted), and so is
    # offline_access, which the MCP SDK then adds to its scope request.
    assert metadata["scopes_supported"][:2] == ["openid", "offline_access"]
    assert set(metadata["scopes_supported"][2:]) == {s for scopes in idp.resources.values() for s in scopes}


def test_jwks_publishes_one_public_signing_key(idp: OidcProvider, http: httpx.Client) -> None:
    (key,) = http.get(idp.jwks_uri).json()["keys"]
    assert key["alg"] == idp.alg
    assert key["use"] == "sig"
    assert key["kid"]
    assert "d" not in key


# --- client credentials ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "Ed25519"])
def test_client_credentials_with_resource_is_an_rfc9068_jwt(alg: SigningAlg, http: httpx.Client) -> None:
    # joserfc 1.8 verifies "EdDSA" but warns that RFC 9864 deprecates the name.
    deprecated = pytest.warns(SecurityWarning, match="RFC 9864") if alg == "EdDSA" else nullcontext()
    with start_oidc_provider(RESOURCES, alg=alg, access_token_ttl=600) as idp:
        response, body = client_credentials(idp, http, resource=MCP, scope="mcp:read mcp:write")
        assert response.status_code == 200, body
        with deprecated:
            token = verify_access_token(idp, http, body["access_token"], MCP)
        keys = http.get(idp.jwks_uri).json()["keys"]

    assert body["token_type"] == "Bearer"
    assert body["scope"] == "mcp:read mcp:write"
    assert token.header == {"alg": alg, "typ": "at+jwt", "kid": keys[0]["kid"]}
    service = idp.client().client_id
    # Scope is one space-separated string; with no end user, sub is the client id.
    assert token.claims["scope"] == "mcp:read mcp:write"
    assert token.claims["client_id"] == service
    assert token.claims["sub"] == service
    assert token.claims["aud"] == MCP  # a string, not a one-element list
    assert token.claims["exp"] - token.claims["iat"] == 600
    assert set(token.claims) == {"jti", "sub", "iat", "exp", "scope", "client_id", "iss", "aud"}


def test_client_credentials_scope_is_filtered_to_the_resource(idp: OidcProvider, http: httpx.Client) -> None:
    # Scopes of another resource, or of none, are dropped silently rather than refused.
    _, body = client_credentials(idp, http, resource=MCP, scope="mcp:read files:read mcp:admin")
    assert body["scope"] == "mcp:read"
    assert verify_access_token(idp, http, body["access_token"], MCP).claims["scope"] == "mcp:read"


def test_client_credentials_without_scope_has_no_scope_claim(idp: OidcProvider, http: httpx.Client) -> None:
    _, body = client_credentials(idp, http, resource=MCP)
    assert "scope" not in body
    assert "scope" not in verify_access_token(idp, http, body["access_token"], MCP).claims


def test_unknown_resource_is_invalid_target(idp: OidcProvider, http: httpx.Client) -> None:
    response, body = client_credentials(idp, http, resource="http://127.0.0.1:9/elsewhere")
    assert response.status_code == 400
    assert body["error"] == "invalid_target"


def test_without_resource_the_token_is_opaque_and_introspectable(
    idp: OidcProvider, http: httpx.Client
) -> None:
    _, body = client_credentials(idp, http)
    assert body["access_token"].count(".") == 0
    service = idp.client()
    assert service.client_secret is not None
    introspection = http.post(
        idp.introspection_endpoint,
        data={"token": body["access_token"]},
        auth=(service.client_id, service.client_secret),
    ).json()
    assert introspection["active"] is True
    assert introspection["client_id"] == service.client_id
    assert introspection["iss"] == idp.issuer
    assert "aud" not in introspection


def test_jwt_access_tokens_cannot_be_introspected(idp: OidcProvider, http: httpx.Client) -> None:
    # oidc-provider refuses outright: a gateway must verify JWTs locally against the JWKS.
    _, body = client_credentials(idp, http, resource=MCP)
    service = idp.client()
    assert service.client_secret is not None
    response = http.post(
        idp.introspection_endpoint,
        data={"token": body["access_token"]},
        auth=(service.client_id, service.client_secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_token_type"


# --- authorization code ---------------------------------------------------------------


def test_authorization_code_flow_with_dcr_pkce_resource_and_refresh(
    idp: OidcProvider, http: httpx.Client
) -> None:
    client_id = register_public_client(idp, http)
    pkce = Pkce.new()
    # The scope the MCP SDK would ask for: the resource's scope plus offline_access.
    callback = authorize(idp, http, client_id, pkce, scope="mcp:read offline_access")
    assert callback.iss == idp.issuer  # RFC 9207 iss is on the authorization response
    assert callback.code is not None

    tokens = redeem_code(idp, http, client_id, callback.code, pkce, resource=MCP).json()
    assert tokens["scope"] == "mcp:read"  # offline_access never reaches a resource's token
    first = verify_access_token(idp, http, tokens["access_token"], MCP)
    assert first.claims["sub"] == idp.account
    assert first.claims["client_id"] == client_id
    assert first.claims["scope"] == "mcp:read"

    # Without `resource`, the refresh is for the resource the grant was made for.
    refreshed = refresh(idp, http, client_id, tokens["refresh_token"]).json()
    assert refreshed["refresh_token"] != tokens["refresh_token"]  # rotated
    second = verify_access_token(idp, http, refreshed["access_token"], MCP)
    assert second.claims["sub"] == idp.account
    assert second.claims["jti"] != first.claims["jti"]


def test_refresh_token_is_issued_without_offline_access(idp: OidcProvider, http: httpx.Client) -> None:
    client_id = register_public_client(idp, http)
    pkce = Pkce.new()
    callback = authorize(idp, http, client_id, pkce, scope="mcp:read mcp:write")
    assert callback.code is not None
    tokens = redeem_code(idp, http, client_id, callback.code, pkce, resource=MCP).json()
    assert tokens["scope"] == "mcp:read mcp:write"
    assert "refresh_token" in tokens


def test_client_without_refresh_grant_gets_no_refresh_token(idp: OidcProvider, http: httpx.Client) -> None:
    client_id = register_public_client(idp, http, grant_types=("authorization_code",))
    pkce = Pkce.new()
    # offline_access is dropped from the request, not refused.
    callback = authorize(idp, http, client_id, pkce, scope="mcp:read offline_access")
    assert callback.code is not None
    tokens = redeem_code(idp, http, client_id, callback.code, pkce, resource=MCP).json()
    assert "refresh_token" not in tokens
    assert verify_access_token(idp, http, tokens["access_token"], MCP).claims["scope"] == "mcp:read"


def test_reusing_a_rotated_refresh_token_revokes_the_grant(idp: OidcProvider, http: httpx.Client) -> None:
    client_id = register_public_client(idp, http)
    pkce = Pkce.new()
    callback = authorize(idp, http, client_id, pkce)
    assert callback.code is not None
    old = redeem_code(idp, http, client_id, callback.code, pkce, resource=MCP).json()["refresh_token"]
    new = refresh(idp, http, client_id, old).json()["refresh_token"]

    replay = refresh(idp, http, client_id, old)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # OAuth 2.1 section 4.3.1 reuse detection: the legitimate holder's token dies too.
    assert refresh(idp, http, client_id, new).json()["error"] == "invalid_grant"


def test_authorization_code_is_single_use(idp: OidcProvider, http: httpx.Client) -> None:
    client_id = register_public_client(idp, http)
    pkce = Pkce.new()
    callback = authorize(idp, http, client_id, pkce)
    assert callback.code is not None
    assert redeem_code(idp, http, client_id, callback.code, pkce, resource=MCP).status_code == 200
    again = redeem_code(idp, http, client_id, callback.code, pkce, resource=MCP)
    assert again.json()["error"] == "invalid_grant"


def test_pkce_is_required(idp: OidcProvider, http: httpx.Client) -> None:
    client_id = register_public_client(idp, http)
    # The error comes back to the redirect URI (RFC 6749 section 4.1.2.1), with iss too.
    callback = authorize(idp, http, client_id, pkce=None)
    assert callback.error == "invalid_request"
    assert "PKCE" in callback.params["error_description"]
    assert callback.iss == idp.issuer


def test_wrong_code_verifier_is_refused(idp: OidcProvider, http: httpx.Client) -> None:
    client_id = register_public_client(idp, http)
    pkce = Pkce.new()
    callback = authorize(idp, http, client_id, pkce)
    assert callback.code is not None
    response = redeem_code(idp, http, client_id, callback.code, Pkce.new(), resource=MCP)
    assert response.json()["error"] == "invalid_grant"


def test_several_resources_need_one_named_at_the_token_endpoint(
    idp: OidcProvider, http: httpx.Client
) -> None:
    client_id = register_public_client(idp, http)
    pkce = Pkce.new()
    callback = authorize(idp, http, client_id, pkce, scope="mcp:read files:read", resources=(MCP, FILES))
    assert callback.code is not None
    # Neither resource is picked silently: the client must say which one it wants.
    unnamed = redeem_code(idp, http, client_id, callback.code, pkce)
    assert unnamed.status_code == 400
    assert unnamed.json()["error"] == "invalid_target"

    pkce = Pkce.new()
    callback = authorize(idp, http, client_id, pkce, scope="mcp:read files:read", resources=(MCP, FILES))
    assert callback.code is not None
    named = redeem_code(idp, http, client_id, callback.code, pkce, resource=FILES).json()
    files = verify_access_token(idp, http, named["access_token"], FILES)
    assert files.claims["scope"] == "files:read"
    # The same grant covers the other resource through a refresh naming it.
    other = http.post(
        idp.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": named["refresh_token"],
            "client_id": client_id,
            "resource": MCP,
        },
    ).json()
    assert verify_access_token(idp, http, other["access_token"], MCP).claims["scope"] == "mcp:read"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
@pytest.mark.parametrize("application_type", ["web", "native"])
def test_dcr_accepts_http_loopback_redirect_uris(
    idp: OidcProvider, http: httpx.Client, host: str, application_type: str
) -> None:
    redirect_uri = f"http://{host}:33418/callback"
    client_id = register_public_client(
        idp, http, redirect_uri=redirect_uri, application_type=application_type
    )
    pkce = Pkce.new()
    state = secrets.token_urlsafe(16)
    url = authorization_url(
        idp.authorization_endpoint,
        client_id=client_id,
        redirect_uri=redirect_uri,
        pkce=pkce,
        state=state,
        scope="mcp:read",
        resources=(MCP,),
    )
    callback = follow_to_redirect_uri(http, url, redirect_uri)
    assert callback.code is not None
    assert callback.state == state


# --- the fixture itself ---------------------------------------------------------------


def test_static_clients_are_configurable(http: httpx.Client) -> None:
    clients = [StaticClient("one", "secret-one"), StaticClient("two", "secret-two")]
    with start_oidc_provider({MCP: ["mcp:read"]}, clients=clients) as idp:
        assert idp.client("two").client_secret == "secret-two"
        ok = http.post(
            idp.token_endpoint,
            data={"grant_type": "client_credentials", "resource": MCP},
            auth=("two", "secret-two"),
        )
        wrong = http.post(
            idp.token_endpoint,
            data={"grant_type": "client_credentials", "resource": MCP},
            auth=("two", "secret-one"),
        )
    assert ok.status_code == 200
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


def test_start_failure_surfaces_the_provider_stderr() -> None:
    # A deliberately unsupported alg, to make the Node process fail at start-up.
    with (
        pytest.raises(OidcProviderStartError, match="alg must be one of"),
        start_oidc_provider({MCP: ["mcp:read"]}, alg="HS256"),  # type: ignore[arg-type]
    ):
        pass
