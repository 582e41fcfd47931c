"""RFC 8414 metadata, OIDC discovery, JWKS, the served paths and CORS."""

from __future__ import annotations

import pytest

from mcp_bastion.devidp import DevIdpSettings, build_devidp

from .conftest import MakeIdp, RunningIdp


def test_metadata_is_served_path_inserted_and_path_appended(running: RunningIdp) -> None:
    for path in (
        "/.well-known/oauth-authorization-server/idp",
        "/idp/.well-known/oauth-authorization-server",
    ):
        response = running.http.get(path)
        assert response.status_code == 200
        document = response.json()
        assert document["issuer"] == running.issuer
        assert response.headers["cache-control"] == "no-store"


def test_metadata_members(running: RunningIdp) -> None:
    document = running.http.get("/.well-known/oauth-authorization-server/idp").json()
    issuer = running.issuer
    assert document["authorization_endpoint"] == f"{issuer}/authorize"
    assert document["token_endpoint"] == f"{issuer}/token"
    assert document["registration_endpoint"] == f"{issuer}/register"
    assert document["jwks_uri"] == f"{issuer}/jwks"
    assert document["response_types_supported"] == ["code"]
    assert set(document["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_basic",
        "client_secret_post",
    }
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["client_id_metadata_document_supported"] is True
    assert document["scopes_supported"] == ["notes:read", "notes:write"]
    assert "offline_access" not in document["scopes_supported"]


def test_scopes_supported_is_the_union_of_resource_scopes(make_idp: MakeIdp) -> None:
    running = make_idp(resources=lambda base: {f"{base}/mcp": ("b", "a"), f"{base}/other": ("c", "a")})
    document = running.http.get("/.well-known/oauth-authorization-server/idp").json()
    assert document["scopes_supported"] == ["a", "b", "c"]


def test_oidc_discovery_at_both_locations(running: RunningIdp) -> None:
    for path in ("/idp/.well-known/openid-configuration", "/.well-known/openid-configuration/idp"):
        document = running.http.get(path).json()
        assert document["issuer"] == running.issuer
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert document["subject_types_supported"] == ["public"]
        assert document["id_token_signing_alg_values_supported"] == ["ES256"]


def test_issuer_without_path(make_idp: MakeIdp) -> None:
    running = make_idp(issuer_path="")
    assert running.idp.path_prefixes == (
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/authorize",
        "/token",
        "/register",
        "/jwks",
        "/consent",
        "/revoke",
    )
    document = running.http.get("/.well-known/oauth-authorization-server").json()
    assert document["issuer"] == running.issuer == running.base
    assert document["token_endpoint"] == f"{running.base}/token"
    assert running.http.get("/.well-known/openid-configuration").status_code == 200
    assert running.http.get("/jwks").status_code == 200
    client = running.register()
    assert running.code_flow(client["client_id"])["access_token"]


def test_path_prefixes_with_issuer_path(running: RunningIdp) -> None:
    assert running.idp.path_prefixes == (
        "/idp/",
        "/.well-known/oauth-authorization-server/idp",
        "/.well-known/openid-configuration/idp",
    )


def test_unknown_paths_are_404(running: RunningIdp) -> None:
    assert running.http.get("/idp/nope").status_code == 404
    assert running.http.get("/.well-known/oauth-authorization-server").status_code == 404


def test_jwks_endpoint_matches_jwks_method(running: RunningIdp) -> None:
    published = running.http.get("/idp/jwks").json()
    assert published == running.idp.jwks()
    (key,) = published["keys"]
    assert key["kty"] == "EC"
    assert key["alg"] == "ES256"
    assert key["use"] == "sig"
    assert "d" not in key


def test_cors_on_public_endpoints_only(running: RunningIdp) -> None:
    origin = {"Origin": "http://localhost:6274"}
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    assert running.http.get("/idp/jwks", headers=origin).headers["access-control-allow-origin"] == "*"
    response = running.http.options("/idp/token", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert running.http.options("/idp/token").status_code == 204
    assert running.http.options("/idp/consent", headers=preflight).status_code == 405
    authorize = running.http.get("/idp/authorize", headers=origin)
    assert "access-control-allow-origin" not in authorize.headers


def test_token_endpoint_refuses_get(running: RunningIdp) -> None:
    assert running.http.get("/idp/token", params={"grant_type": "client_credentials"}).status_code == 405


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
def test_other_signing_algorithms(make_idp: MakeIdp, alg: str) -> None:
    running = make_idp(signing_alg=alg)
    client = running.register()
    tokens = running.code_flow(client["client_id"])
    assert running.claims(tokens["access_token"])["aud"] == running.resource
    assert running.http.get("/idp/.well-known/openid-configuration").json()[
        "id_token_signing_alg_values_supported"
    ] == [alg]


def test_build_without_serving_gives_jwks() -> None:
    idp = build_devidp(
        DevIdpSettings(issuer="http://127.0.0.1:1/idp", resources={"http://127.0.0.1:1/mcp": ()})
    )
    assert idp.jwks()["keys"][0]["crv"] == "P-256"
