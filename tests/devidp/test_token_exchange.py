"""RFC 8693 token exchange at the development IdP, against a real server on loopback."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from mcp_bastion.devidp import StaticClient

from .conftest import MakeIdp, RunningIdp

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
SECRET = "gateway-secret"


@pytest.fixture
def idp(make_idp: MakeIdp) -> RunningIdp:
    """The gateway (`gw`) serves /mcp and may exchange its users' tokens for /upstream."""
    return make_idp(
        resources=lambda base: {
            f"{base}/mcp": ("notes:read", "notes:write"),
            f"{base}/upstream": ("notes:read", "notes:write"),
            f"{base}/other": ("notes:read",),
        },
        clients=lambda base: (
            StaticClient("gw", SECRET, (), (f"{base}/upstream",), exchange_from=(f"{base}/mcp",)),
            StaticClient("svc", "svc-secret", ("notes:read",), (f"{base}/upstream",)),
        ),
    )


def _user_token(idp: RunningIdp, **overrides: Any) -> str:
    options: dict[str, Any] = {"subject": "alice", "resource": idp.resource, "scopes": ("notes:read",)}
    options.update(overrides)
    return idp.idp.issue_access_token(client_id="mcp-client", **options)


def _exchange(
    idp: RunningIdp, subject_token: str, auth: tuple[str, str] | None = ("gw", SECRET), **form: str | None
) -> httpx.Response:
    data: dict[str, str | None] = {
        "grant_type": GRANT,
        "subject_token": subject_token,
        "subject_token_type": ACCESS,
        "resource": f"{idp.base}/upstream",
        **form,
    }
    fields = {k: v for k, v in data.items() if v is not None}
    return idp.http.post(idp.path("token"), data=fields, auth=auth)


def _refused(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def test_exchange_names_the_user_the_upstream_and_the_actor(idp: RunningIdp) -> None:
    response = _exchange(idp, _user_token(idp), requested_token_type=ACCESS)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["issued_token_type"] == ACCESS
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "notes:read"
    assert "refresh_token" not in body
    claims = idp.claims(body["access_token"])
    assert claims["sub"] == "alice"
    assert claims["aud"] == f"{idp.base}/upstream"
    assert claims["act"] == {"sub": "gw"}  # RFC 8693 §4.1
    assert claims["client_id"] == "gw"
    assert claims["iss"] == idp.issuer


def test_metadata_advertises_the_grant_only_when_a_client_may_use_it(
    idp: RunningIdp, make_idp: MakeIdp
) -> None:
    meta = idp.http.get("/.well-known/oauth-authorization-server/idp").json()
    assert GRANT in meta["grant_types_supported"]
    plain = make_idp()
    assert (
        GRANT
        not in plain.http.get("/.well-known/oauth-authorization-server/idp").json()["grant_types_supported"]
    )
    _refused(_exchange(plain, _user_token(plain), auth=None, client_id="x"), "unsupported_grant_type")


def test_lifetime_is_short_and_never_past_the_subject_token(idp: RunningIdp) -> None:
    assert _exchange(idp, _user_token(idp, ttl=3600)).json()["expires_in"] == 300
    assert _exchange(idp, _user_token(idp, ttl=40)).json()["expires_in"] == 40


def test_audience_alone_or_equal_to_resource(idp: RunningIdp) -> None:
    upstream = f"{idp.base}/upstream"
    assert _exchange(idp, _user_token(idp), resource=None, audience=upstream).status_code == 200
    assert _exchange(idp, _user_token(idp), audience=upstream).status_code == 200
    _refused(_exchange(idp, _user_token(idp), audience=f"{idp.base}/other"), "invalid_target")
    _refused(_exchange(idp, _user_token(idp), resource=None), "invalid_request")


@pytest.mark.parametrize(
    "target",
    [
        "https://unregistered.example/mcp",  # not a resource of this IdP
        "OTHER",  # registered, but not one this client may obtain tokens for
    ],
)
def test_unregistered_or_unallowed_audience_is_invalid_target(idp: RunningIdp, target: str) -> None:
    value = f"{idp.base}/other" if target == "OTHER" else target
    _refused(_exchange(idp, _user_token(idp), resource=value), "invalid_target")
    _refused(_exchange(idp, _user_token(idp), resource=None, audience=value), "invalid_target")


def test_scope_escalation_is_refused(idp: RunningIdp) -> None:
    token = _user_token(idp, scopes=("notes:read",))
    # The user holds notes:read only: asking for notes:write is an escalation, not a narrowing.
    _refused(_exchange(idp, token, scope="notes:read notes:write"), "invalid_scope")
    _refused(_exchange(idp, token, scope="notes:write"), "invalid_scope")
    wide = _user_token(idp, scopes=("notes:read", "notes:write"))
    assert _exchange(idp, wide, scope="notes:write").json()["scope"] == "notes:write"
    assert _exchange(idp, wide).json()["scope"] == "notes:read notes:write"


def test_token_from_another_issuer_is_refused(idp: RunningIdp, make_idp: MakeIdp) -> None:
    stranger = make_idp()
    foreign = stranger.idp.issue_access_token(
        subject="alice", resource=idp.resource, scopes=("notes:read",), extra_claims={"iss": idp.issuer}
    )
    _refused(_exchange(idp, foreign), "invalid_request")  # signed with another key
    # Our own key, but naming another issuer (a token minted for a different deployment).
    renamed = _user_token(idp, extra_claims={"iss": stranger.issuer})
    response = _exchange(idp, renamed)
    _refused(response, "invalid_request")
    assert "issuer" in response.json()["error_description"]


def test_token_with_a_wrong_signature_is_refused(idp: RunningIdp) -> None:
    header, payload, signature = _user_token(idp).split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "notes:read notes:write"  # the attacker widens their own token
    forged_payload = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    _refused(_exchange(idp, f"{header}.{forged_payload}.{signature}"), "invalid_request")
    _refused(_exchange(idp, "not-a-jwt"), "invalid_request")


def test_expired_or_not_yet_valid_token_is_refused(idp: RunningIdp) -> None:
    token = _user_token(idp, ttl=60)
    idp.clock.advance(60)
    response = _exchange(idp, token)
    _refused(response, "invalid_request")
    assert "expired" in response.json()["error_description"]
    early = _user_token(idp, extra_claims={"nbf": int(idp.clock()) + 600})
    _refused(_exchange(idp, early), "invalid_request")


def test_subject_token_must_be_for_the_clients_own_audience(idp: RunningIdp) -> None:
    # A user's token for another service: the gateway could only have stolen it.
    _refused(_exchange(idp, _user_token(idp, resource=f"{idp.base}/other")), "invalid_request")


def test_an_id_token_shaped_jwt_is_not_a_subject_token(idp: RunningIdp) -> None:
    raw = idp.idp._key.sign(
        {"iss": idp.issuer, "sub": "alice", "aud": idp.resource, "exp": int(idp.clock()) + 60}, "JWT"
    )
    _refused(_exchange(idp, raw), "invalid_request")


def test_unauthenticated_or_unallowed_client_is_refused(idp: RunningIdp) -> None:
    token = _user_token(idp)
    _refused(_exchange(idp, token, auth=None), "invalid_client", 401)  # no credentials at all
    _refused(_exchange(idp, token, auth=None, client_id="gw"), "invalid_client", 401)  # id, no secret
    _refused(_exchange(idp, token, auth=("gw", "wrong")), "invalid_client", 401)
    # A confidential client not configured for exchange.
    _refused(_exchange(idp, token, auth=("svc", "svc-secret")), "unauthorized_client")
    # A public (registered) client: no authentication, so no user's authority to trade.
    public = idp.register()["client_id"]
    _refused(_exchange(idp, token, auth=None, client_id=public), "invalid_client", 401)


def test_huge_subject_token_is_refused_before_parsing(idp: RunningIdp) -> None:
    response = _exchange(idp, "a." + "b" * 20_000 + ".c")
    _refused(response, "invalid_request")
    assert "too long" in response.json()["error_description"]


@pytest.mark.parametrize(
    "form",
    [
        {"subject_token_type": None},
        {"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"},
        {"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
        {"actor_token": "x", "actor_token_type": ACCESS},
    ],
)
def test_malformed_requests_are_invalid_request(idp: RunningIdp, form: dict[str, str | None]) -> None:
    _refused(_exchange(idp, _user_token(idp), **form), "invalid_request")


def test_missing_subject_token_is_invalid_request(idp: RunningIdp) -> None:
    data = {"grant_type": GRANT, "subject_token_type": ACCESS, "resource": f"{idp.base}/upstream"}
    _refused(idp.http.post(idp.path("token"), data=data, auth=("gw", SECRET)), "invalid_request")


def test_an_exchanged_token_keeps_the_prior_actor_nested(idp: RunningIdp) -> None:
    token = _user_token(idp, extra_claims={"act": {"sub": "earlier"}})
    claims = idp.claims(_exchange(idp, token).json()["access_token"])
    assert claims["act"] == {"sub": "gw", "act": {"sub": "earlier"}}
