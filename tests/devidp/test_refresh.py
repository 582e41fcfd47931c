"""Refresh tokens: rotation on every use, reuse detection revoking the family."""

from __future__ import annotations

import httpx

from .conftest import MakeIdp, RunningIdp


def _refresh(running: RunningIdp, client_id: str, refresh_token: str, **extra: str | None) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "resource": running.resource,
        **extra,
    }
    return running.token(**form)


def test_refresh_rotates_the_token(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    first = running.code_flow(client_id)
    running.clock.advance(100)
    response = _refresh(running, client_id, first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    claims = running.claims(second["access_token"])
    assert claims["sub"] == "alice"
    assert claims["aud"] == running.resource
    assert claims["iat"] == int(running.clock())
    third = _refresh(running, client_id, second["refresh_token"])
    assert third.status_code == 200


def test_reuse_of_a_rotated_token_revokes_the_family(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    first = running.code_flow(client_id)
    second = _refresh(running, client_id, first["refresh_token"]).json()
    replay = _refresh(running, client_id, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The legitimate holder's current token is revoked too.
    assert _refresh(running, client_id, second["refresh_token"]).json()["error"] == "invalid_grant"


def test_other_families_survive_a_revocation(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    family_a = running.code_flow(client_id)
    family_b = running.code_flow(client_id)
    _refresh(running, client_id, family_a["refresh_token"])
    _refresh(running, client_id, family_a["refresh_token"])
    assert _refresh(running, client_id, family_b["refresh_token"]).status_code == 200


def test_refresh_by_another_client_is_refused_and_revokes(running: RunningIdp) -> None:
    owner = running.register()["client_id"]
    thief = running.register()["client_id"]
    tokens = running.code_flow(owner)
    assert _refresh(running, thief, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert _refresh(running, owner, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_may_narrow_but_not_widen_scope(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id, scope="notes:read notes:write")
    tokens = running.redeem(client_id, code).json()
    widened = _refresh(running, client_id, tokens["refresh_token"], scope="notes:read admin")
    assert widened.json()["error"] == "invalid_scope"
    narrowed = _refresh(running, client_id, tokens["refresh_token"], scope="notes:read").json()
    assert narrowed["scope"] == "notes:read"
    # The rotated refresh token keeps the original grant (RFC 6749 §6).
    full = _refresh(running, client_id, narrowed["refresh_token"]).json()
    assert full["scope"] == "notes:read notes:write"


def test_refresh_requires_the_same_resource(make_idp: MakeIdp) -> None:
    running = make_idp(
        resources=lambda base: {f"{base}/mcp": ("notes:read",), f"{base}/other": ("notes:read",)}
    )
    client_id = running.register()["client_id"]
    tokens = running.code_flow(client_id)
    other = _refresh(running, client_id, tokens["refresh_token"], resource=f"{running.base}/other")
    assert other.json()["error"] == "invalid_target"
    missing = _refresh(running, client_id, tokens["refresh_token"], resource=None)
    assert missing.json()["error"] == "invalid_target"
    # A refused request does not spend the token.
    assert _refresh(running, client_id, tokens["refresh_token"]).status_code == 200


def test_refresh_token_expires(make_idp: MakeIdp) -> None:
    running = make_idp(refresh_token_ttl=1000)
    client_id = running.register()["client_id"]
    tokens = running.code_flow(client_id)
    running.clock.advance(1000)
    assert _refresh(running, client_id, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_unknown_and_missing_refresh_tokens(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    assert _refresh(running, client_id, "nope").json()["error"] == "invalid_grant"
    response = running.token(grant_type="refresh_token", client_id=client_id, resource=running.resource)
    assert response.json()["error"] == "invalid_request"
