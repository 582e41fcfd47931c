"""What the IdP returns parses with the official MCP Python SDK's OAuth models."""

from __future__ import annotations

from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthMetadata, OAuthToken

from .conftest import REDIRECT, RunningIdp


def test_sdk_parses_metadata_registration_and_tokens(running: RunningIdp) -> None:
    metadata = OAuthMetadata.model_validate(
        running.http.get("/.well-known/oauth-authorization-server/idp").json()
    )
    assert str(metadata.issuer).rstrip("/") == running.issuer
    assert metadata.code_challenge_methods_supported == ["S256"]
    request = OAuthClientMetadata(redirect_uris=[REDIRECT], client_name="sdk")  # type: ignore[list-item]
    registered = running.http.post("/idp/register", json=request.model_dump(mode="json", exclude_none=True))
    assert registered.status_code == 201, registered.text
    info = OAuthClientInformationFull.model_validate(registered.json())
    assert info.token_endpoint_auth_method == "none"
    assert info.client_secret is None
    token = OAuthToken.model_validate(running.code_flow(info.client_id))
    assert token.token_type == "Bearer"
