"""RFC 7009 revocation: a refresh token's family ends; the answer never reveals other clients' tokens."""

from __future__ import annotations

import httpx

from .conftest import RunningIdp


def _revoke(running: RunningIdp, client_id: str, token: str) -> httpx.Response:
    return running.http.post(running.path("revoke"), data={"token": token, "client_id": client_id})


def _refresh(running: RunningIdp, client_id: str, refresh_token: str) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "resource": running.resource,
    }
    return running.token(**form)


def test_revoked_refresh_token_and_its_rotations_stop_working(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    first = running.code_flow(client_id)
    second = _refresh(running, client_id, first["refresh_token"]).json()
    # Revoking the *old* (rotated-away) token still ends the family it belongs to.
    response = _revoke(running, client_id, first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    refused = _refresh(running, client_id, second["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_another_clients_token_is_not_revoked_and_the_answer_is_the_same(running: RunningIdp) -> None:
    owner, other = running.register()["client_id"], running.register()["client_id"]
    tokens = running.code_flow(owner)
    # §2.2: 200 either way, so a client cannot probe for other clients' tokens.
    assert _revoke(running, other, tokens["refresh_token"]).status_code == 200
    assert _revoke(running, other, "no-such-token").status_code == 200
    assert _refresh(running, owner, tokens["refresh_token"]).status_code == 200


def test_revocation_requires_client_authentication_and_a_token(running: RunningIdp) -> None:
    response = running.http.post(running.path("revoke"), data={"token": "x"})
    assert response.status_code == 401
    client_id = running.register()["client_id"]
    missing = running.http.post(running.path("revoke"), data={"client_id": client_id})
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


def test_metadata_names_the_revocation_endpoint(running: RunningIdp) -> None:
    document = running.http.get("/.well-known/oauth-authorization-server/idp").json()
    assert document["revocation_endpoint"] == f"{running.issuer}/revoke"
