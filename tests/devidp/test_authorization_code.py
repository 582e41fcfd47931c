"""The authorization code grant with PKCE, end to end on a real server."""

from __future__ import annotations

import pytest

from .conftest import REDIRECT, MakeIdp, RunningIdp, pkce_pair, query_of


def test_full_code_flow_issues_an_audience_bound_rfc9068_token(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    response = running.authorize(client_id)
    assert response.status_code == 302
    query = query_of(response)
    assert query["state"] == "state-123"
    assert query["iss"] == running.issuer  # RFC 9207
    token_response = running.redeem(client_id, query["code"])
    assert token_response.status_code == 200
    assert token_response.headers["cache-control"] == "no-store"
    body = token_response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "notes:read"
    assert body["refresh_token"]
    claims = running.claims(body["access_token"])
    now = int(running.clock())
    assert claims == {
        "iss": running.issuer,
        "sub": "alice",
        "aud": running.resource,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "jti": claims["jti"],
        "client_id": client_id,
        "scope": "notes:read",
    }


def test_redirect_keeps_the_registered_query(running: RunningIdp) -> None:
    client_id = running.register(redirect_uris=["http://127.0.0.1/cb?app=1"])["client_id"]
    response = running.authorize(client_id, redirect_uri="http://127.0.0.1/cb?app=1")
    assert response.headers["location"].startswith("http://127.0.0.1/cb?app=1&code=")


def test_no_scope_requested_grants_all_resource_scopes(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id, scope=None)
    body = running.redeem(client_id, code).json()
    assert body["scope"] == "notes:read notes:write"


def test_unknown_scopes_are_dropped_and_offline_access_accepted(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id, scope="notes:write admin offline_access")
    body = running.redeem(client_id, code).json()
    assert body["scope"] == "notes:write"
    assert "refresh_token" in body


def test_only_unknown_scopes_is_invalid_scope(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    query = query_of(running.authorize(client_id, scope="admin"))
    assert query["error"] == "invalid_scope"
    assert query["iss"] == running.issuer
    assert query["state"] == "state-123"


def test_no_refresh_token_without_the_refresh_grant_type(running: RunningIdp) -> None:
    client_id = running.register(grant_types=["authorization_code"])["client_id"]
    body = running.code_flow(client_id)
    assert "refresh_token" not in body
    refreshed = running.token(
        grant_type="refresh_token", refresh_token="x", client_id=client_id, resource=running.resource
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_users_limit_the_granted_scopes(make_idp: MakeIdp) -> None:
    running = make_idp(users={"alice": ("notes:read",)})
    client_id = running.register()["client_id"]
    code = running.get_code(client_id, scope="notes:read notes:write")
    assert running.redeem(client_id, code).json()["scope"] == "notes:read"
    query = query_of(running.authorize(client_id, scope="notes:write"))
    assert query["error"] == "invalid_scope"


# -- AS-05, AS-06: PKCE ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("challenge_method", "challenge"),
    [
        ("plain", "x" * 43),
        (None, "x" * 43),  # absent means plain (RFC 7636 §4.3)
        ("s256", "x" * 43),
        ("S256", None),
        ("S256", "short"),
        ("S256", "x" * 44),
        ("S256", "x" * 42 + "="),
    ],
)
def test_as05_as06_bad_pkce_at_authorize_is_invalid_request(
    running: RunningIdp, challenge_method: str | None, challenge: str | None
) -> None:
    client_id = running.register()["client_id"]
    params = running.authorize_params(
        client_id, code_challenge_method=challenge_method, code_challenge=challenge
    )
    response = running.http.get("/idp/authorize", params=params)
    query = query_of(response)
    assert query["error"] == "invalid_request"
    assert query["state"] == "state-123"
    assert query["iss"] == running.issuer
    assert "code" not in query


def test_as05_plain_challenge_is_refused(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    verifier, _ = pkce_pair()
    query = query_of(
        running.authorize(client_id, code_challenge=verifier[:43], code_challenge_method="plain")
    )
    assert query["error"] == "invalid_request"


@pytest.mark.parametrize(
    "verifier",
    [None, "wrong" * 10, "a" * 42, "a" * 129, "a" * 42 + "!", "a" * 42 + " ", "é" * 43],
    ids=["missing", "wrong", "42-chars", "129-chars", "illegal-bang", "illegal-space", "non-ascii"],
)
def test_as06_bad_verifier_at_token_is_invalid_grant(running: RunningIdp, verifier: str | None) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    response = running.redeem(client_id, code, code_verifier=verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_as06_verifier_of_another_request_is_invalid_grant(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    other_verifier, _ = pkce_pair()
    assert running.redeem(client_id, code, code_verifier=other_verifier).json()["error"] == "invalid_grant"


# -- AS-07: code reuse ---------------------------------------------------------------


@pytest.mark.parametrize("later", [1, 30])
def test_as07_code_reuse_is_invalid_grant_and_revokes_the_refresh_family(
    running: RunningIdp, later: int
) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    first = running.redeem(client_id, code)
    assert first.status_code == 200
    running.clock.advance(later)
    second = running.redeem(client_id, code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    refreshed = running.token(
        grant_type="refresh_token",
        refresh_token=first.json()["refresh_token"],
        client_id=client_id,
        resource=running.resource,
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_as07_a_failed_first_presentation_still_consumes_the_code(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    assert running.redeem(client_id, code, code_verifier="x" * 43).json()["error"] == "invalid_grant"
    assert running.redeem(client_id, code).json()["error"] == "invalid_grant"


# -- AS-09: binding ------------------------------------------------------------------


def test_as09_code_of_client_a_redeemed_by_client_b(running: RunningIdp) -> None:
    client_a = running.register()["client_id"]
    client_b = running.register()["client_id"]
    code = running.get_code(client_a)
    response = running.redeem(client_b, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_as09_different_redirect_uri_at_token(running: RunningIdp) -> None:
    client_id = running.register(redirect_uris=[REDIRECT, "http://127.0.0.1/other"])["client_id"]
    code = running.get_code(client_id)
    assert (
        running.redeem(client_id, code, redirect_uri="http://127.0.0.1/other").json()["error"]
        == "invalid_grant"
    )


def test_as09_missing_redirect_uri_at_token(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    assert running.redeem(client_id, code, redirect_uri=None).json()["error"] == "invalid_grant"


def test_as09_loopback_port_must_match_at_token(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id, redirect_uri="http://127.0.0.1:50001/callback")
    response = running.redeem(client_id, code, redirect_uri="http://127.0.0.1:50002/callback")
    assert response.json()["error"] == "invalid_grant"


def test_as09_different_resource_at_token(make_idp: MakeIdp) -> None:
    running = make_idp(
        resources=lambda base: {f"{base}/mcp": ("notes:read",), f"{base}/other": ("notes:read",)}
    )
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    response = running.redeem(client_id, code, resource=f"{running.base}/other")
    assert response.json()["error"] == "invalid_target"


def test_as09_code_past_its_ttl(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    running.clock.advance(61)
    assert running.redeem(client_id, code).json()["error"] == "invalid_grant"


def test_code_just_inside_its_ttl(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    running.clock.advance(59)
    assert running.redeem(client_id, code).status_code == 200


def test_unknown_code(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    running.get_code(client_id)
    assert running.redeem(client_id, "not-a-code").json()["error"] == "invalid_grant"


# -- AS-11: unsupported types --------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "id_token", "code token", "code id_token"])
def test_as11_response_type_other_than_code(running: RunningIdp, response_type: str) -> None:
    client_id = running.register()["client_id"]
    query = query_of(running.authorize(client_id, response_type=response_type))
    assert query["error"] == "unsupported_response_type"
    assert query["iss"] == running.issuer


def test_missing_response_type(running: RunningIdp) -> None:
    client_id = running.register()["client_id"]
    assert query_of(running.authorize(client_id, response_type=None))["error"] == "invalid_request"


@pytest.mark.parametrize(
    "grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"]
)
def test_as11_unsupported_grant_type(running: RunningIdp, grant_type: str) -> None:
    response = running.token(grant_type=grant_type, username="alice", password="pw", client_id="x")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_missing_grant_type(running: RunningIdp) -> None:
    assert running.token(client_id="x").json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"request": "eyJ..."}, "request_not_supported"),
        ({"request_uri": "urn:x"}, "request_uri_not_supported"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
def test_unsupported_request_features(running: RunningIdp, extra: dict[str, str], error: str) -> None:
    client_id = running.register()["client_id"]
    assert query_of(running.authorize(client_id, **extra))["error"] == error


# -- AS-13: resource indicators ------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [
        None,
        "RESOURCE#frag",
        "/mcp",
        "mcp",
        "https://unknown.example/mcp",
        "RESOURCE/",
        ["RESOURCE", "RESOURCE"],
    ],
    ids=["missing", "fragment", "relative-path", "relative", "unknown", "trailing-slash", "twice"],
)
def test_as13_bad_resource_at_authorize_is_invalid_target(running: RunningIdp, resource: object) -> None:
    client_id = running.register()["client_id"]
    value = _substitute(resource, running.resource)
    query = query_of(running.authorize(client_id, resource=value))
    assert query["error"] == "invalid_target"
    assert query["state"] == "state-123"


@pytest.mark.parametrize(
    "resource",
    [None, "RESOURCE#frag", "/mcp", "https://unknown.example/mcp", ["RESOURCE", "RESOURCE"]],
    ids=["missing", "fragment", "relative", "unknown", "twice"],
)
def test_as13_bad_resource_at_token_is_invalid_target(running: RunningIdp, resource: object) -> None:
    client_id = running.register()["client_id"]
    code = running.get_code(client_id)
    response = running.redeem(client_id, code, resource=_substitute(resource, running.resource))
    assert response.json()["error"] == "invalid_target"
    # The refused request did not consume the code.
    assert running.redeem(client_id, code).status_code == 200


def test_as13_issued_aud_equals_resource_byte_for_byte(make_idp: MakeIdp) -> None:
    running = make_idp(resources=lambda base: {f"{base}/mcp/": ("notes:read",)})
    client_id = running.register()["client_id"]
    resource = f"{running.base}/mcp/"
    code = running.get_code(client_id, resource=resource)
    body = running.redeem(client_id, code, resource=resource).json()
    assert running.claims(body["access_token"])["aud"] == resource
    wrong = running.authorize(client_id, resource=f"{running.base}/mcp")
    assert query_of(wrong)["error"] == "invalid_target"


def _substitute(value: object, resource: str) -> object:
    if isinstance(value, list):
        return [item.replace("RESOURCE", resource) for item in value]
    if isinstance(value, str):
        return value.replace("RESOURCE", resource)
    return value
