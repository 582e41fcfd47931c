"""IdP presets through the real gateway: tokens shaped like each IdP's, signed by a test key
served on a loopback JWKS (tests/support/issuer.py), checked end to end.

Each preset is asked three things: does a real access token of that IdP pass (its own
audience form, scope claim, no `typ: at+jwt`), is that IdP's ID token (or refresh token)
refused now that `typ` is not checked (TV-11), and is a token without a user (client
credentials) refused unless the server accepts machine clients, and then audited with the
client as its subject.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ..support.gateway import RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import serve_asgi

JWT_HEADER = {"typ": "JWT"}  # what these IdPs put in the header (not RFC 9068's at+jwt)


@dataclass
class Stack:
    issuer: LocalIssuer
    gateway: RunningGateway
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.gateway.url("files")

    def call(self, token: str, tool: str = "read_thing") -> httpx.Response:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
        return post_mcp(self.http, self.url, body, token=token)

    def token(self, **claims: Any) -> str:
        # LocalIssuer adds RFC 9068 claims; None removes one an IdP does not send.
        named = {"aud": "audience", "sub": "subject", "scope": "scopes"}
        arguments = {named.get(k, k): v for k, v in claims.items()}
        arguments.setdefault("audience", None)
        return self.issuer.token(header=JWT_HEADER, **arguments)

    def subject_of_last_call(self) -> str | None:
        event = self.gateway.audit.wait_for(lambda e: e.method == "tools/call" and e.decision == "allow")
        return event.subject


def stack_for(preset: str, *, machine: bool, **provider: Any) -> Any:
    @pytest.fixture
    def fixture() -> Iterator[Stack]:
        upstream = RecordingUpstream()
        with running_issuer() as issuer, serve_asgi(upstream) as up:
            idp = {"name": "idp", "issuer": issuer.issuer, "allow_insecure_http": True, "preset": preset}
            idp.update(provider)
            if machine:
                idp["machine_clients"] = ["files"]
            overrides = {
                "identity_providers": [idp],
                "servers": [{"name": "files", "upstream": f"{up.base_url}/mcp"}],
            }
            with running_gateway(issuer.issuer, {}, **overrides) as gw, httpx.Client(timeout=10) as http:
                yield Stack(issuer, gw, http)

    return fixture


# --- Entra ID: GUID or api:// audiences, `scp` (delegated) and `roles` (app), no at+jwt ----------

ENTRA_APP = "api://mcp-files"
ENTRA_GUID = "6e0f1c2a-0b1d-4c55-9a53-2d1b7b0c9e11"
entra = stack_for("entra", machine=False, audiences={"files": [ENTRA_APP, ENTRA_GUID]})
entra_machines = stack_for("entra", machine=True, audiences={"files": [ENTRA_APP]})


def entra_token(stack: Stack, **claims: Any) -> str:
    body: dict[str, Any] = {
        "aud": ENTRA_APP,
        "scope": None,
        "client_id": None,
        "scp": "tools.read",
        "azp": "client-app-guid",
        "tid": "tenant-guid",
        "ver": "2.0",
    }
    body.update(claims)
    return stack.token(**body)


def test_entra_user_token_with_app_id_uri_audience_is_accepted(entra: Stack) -> None:
    assert entra.call(entra_token(entra)).status_code == 200
    assert entra.subject_of_last_call() == "alice"


def test_entra_guid_audience_is_accepted(entra: Stack) -> None:
    assert entra.call(entra_token(entra, aud=ENTRA_GUID)).status_code == 200


def test_entra_roles_grant_scopes_too(entra: Stack) -> None:
    # A user assigned the app role tools.write may call a write tool with only tools.read in scp.
    assert entra.call(entra_token(entra, roles=["tools.write"]), "write_thing").status_code == 200
    assert entra.call(entra_token(entra), "write_thing").status_code == 403


def test_entra_id_token_is_refused(entra: Stack) -> None:
    # An ID token has the app's audience but neither scp nor roles: not an access token.
    response = entra.call(entra_token(entra, scp=None, nonce="n-1"))
    assert response.status_code == 401
    assert "not an access token" in response.headers["www-authenticate"]


def test_entra_other_audience_is_refused(entra: Stack) -> None:
    assert entra.call(entra_token(entra, aud="api://another-app")).status_code == 401


def test_entra_app_only_token_is_refused_without_machine_clients(entra: Stack) -> None:
    token = entra_token(entra, scp=None, roles=["tools.read"], sub="sp-object-id", idtyp="app")
    assert entra.call(token).status_code == 401


def test_entra_app_only_token_is_the_client_when_allowed(entra_machines: Stack) -> None:
    token = entra_token(entra_machines, scp=None, roles=["tools.read"], sub="sp-object-id", idtyp="app")
    assert entra_machines.call(token).status_code == 200
    assert entra_machines.subject_of_last_call() == "client-app-guid"


# --- Entra ID v1.0 tokens (`entra.accept_v1`): sts.windows.net issuer, `appid`, ver 1.0 --------

ENTRA_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
entra_v1 = stack_for(
    "entra",
    machine=False,
    audiences={"files": [ENTRA_APP, ENTRA_GUID]},
    entra={"accept_v1": True, "tenant_id": ENTRA_TENANT},
)
entra_v2_only = stack_for(
    "entra", machine=False, audiences={"files": [ENTRA_APP]}, entra={"tenant_id": ENTRA_TENANT}
)


def entra_v1_token(stack: Stack, tenant: str = ENTRA_TENANT, **claims: Any) -> str:
    # What Entra ID issues for an API whose manifest leaves accessTokenAcceptedVersion unset.
    body: dict[str, Any] = {
        "iss": f"https://sts.windows.net/{tenant}/",
        "aud": ENTRA_APP,
        "scope": None,
        "client_id": None,
        "scp": "tools.read",
        "appid": "client-app-guid",
        "appidacr": "0",
        "tid": tenant,
        "ver": "1.0",
        "unique_name": "alice@contoso.example",
    }
    body.update(claims)
    return stack.token(**body)


def test_entra_v1_token_is_accepted_with_accept_v1(entra_v1: Stack) -> None:
    assert entra_v1.call(entra_v1_token(entra_v1)).status_code == 200
    event = entra_v1.gateway.audit.wait_for(lambda e: e.method == "tools/call" and e.decision == "allow")
    assert event.subject == "alice"
    assert event.client_id == "client-app-guid"  # from `appid`, there is no `azp` in v1.0
    assert event.issuer == entra_v1.issuer.issuer  # the configured (v2.0) issuer names the provider
    # The GUID audience too; and v2.0 tokens keep working beside them.
    assert entra_v1.call(entra_v1_token(entra_v1, aud=ENTRA_GUID)).status_code == 200
    assert entra_v1.call(entra_token(entra_v1)).status_code == 200


def test_entra_v1_token_of_another_tenant_is_refused(entra_v1: Stack) -> None:
    # Another tenant's issuer is no alias of anything: an untrusted issuer.
    response = entra_v1.call(entra_v1_token(entra_v1, tenant=OTHER_TENANT))
    assert response.status_code == 401
    assert "issuer is not trusted" in response.headers["www-authenticate"]
    # This tenant's issuer but another tenant's `tid`: refused too.
    mixed = entra_v1.call(entra_v1_token(entra_v1, tid=OTHER_TENANT))
    assert mixed.status_code == 401
    assert "another tenant" in mixed.headers["www-authenticate"]


def test_entra_v1_issuer_on_a_token_that_is_not_v1_is_refused(entra_v1: Stack) -> None:
    assert entra_v1.call(entra_v1_token(entra_v1, ver="2.0")).status_code == 401
    assert entra_v1.call(entra_v1_token(entra_v1, ver=None)).status_code == 401


def test_entra_v1_id_token_and_other_audience_are_refused(entra_v1: Stack) -> None:
    # The preset's own checks still hold for v1.0: no scp/roles is no access token (TV-11).
    assert entra_v1.call(entra_v1_token(entra_v1, scp=None, nonce="n-1")).status_code == 401
    assert entra_v1.call(entra_v1_token(entra_v1, aud="api://another-app")).status_code == 401


def test_entra_v1_token_is_refused_without_accept_v1(entra_v2_only: Stack) -> None:
    response = entra_v2_only.call(entra_v1_token(entra_v2_only))
    assert response.status_code == 401
    assert "issuer is not trusted" in response.headers["www-authenticate"]


# --- Okta: custom authorization server audience, `scp` array, `cid` ------------------------

okta = stack_for("okta", machine=False, audiences={"files": ["api://default"]})
okta_machines = stack_for("okta", machine=True, audiences={"files": ["api://default"]})


def okta_token(stack: Stack, **claims: Any) -> str:
    body: dict[str, Any] = {
        "aud": "api://default",
        "scope": None,
        "client_id": None,
        "scp": ["tools.read", "openid"],
        "cid": "0oa-client",
        "uid": "00u-user",
        "sub": "alice@example.com",
    }
    body.update(claims)
    return stack.token(**body)


def test_okta_user_token_is_accepted(okta: Stack) -> None:
    assert okta.call(okta_token(okta)).status_code == 200
    assert okta.subject_of_last_call() == "alice@example.com"


def test_okta_scp_array_is_read(okta: Stack) -> None:
    assert okta.call(okta_token(okta), "write_thing").status_code == 403
    assert okta.call(okta_token(okta, scp=["tools.write"]), "write_thing").status_code == 200


def test_okta_id_token_is_refused(okta: Stack) -> None:
    assert okta.call(okta_token(okta, scp=None, aud="0oa-client")).status_code == 401
    assert okta.call(okta_token(okta, scp=None)).status_code == 401


def test_okta_client_credentials_token_needs_machine_clients(okta: Stack, okta_machines: Stack) -> None:
    assert okta.call(okta_token(okta, sub="0oa-client", uid=None)).status_code == 401
    assert okta_machines.call(okta_token(okta_machines, sub="0oa-client", uid=None)).status_code == 200
    assert okta_machines.subject_of_last_call() == "0oa-client"


# --- Cognito: access tokens without `aud`; `client_id` and `token_use` --------------------

cognito = stack_for("cognito", machine=False, audiences={"files": ["app-client-1"]})
cognito_machines = stack_for("cognito", machine=True, audiences={"files": ["app-client-1"]})


def cognito_token(stack: Stack, **claims: Any) -> str:
    body: dict[str, Any] = {
        "aud": None,
        "client_id": "app-client-1",
        "token_use": "access",
        "scope": "tools.read",
        "username": "alice",
        "sub": "3f1c-user-uuid",
    }
    body.update(claims)
    return stack.token(**body)


def test_cognito_access_token_is_accepted_by_its_app_client(cognito: Stack) -> None:
    assert cognito.call(cognito_token(cognito)).status_code == 200
    assert cognito.subject_of_last_call() == "3f1c-user-uuid"


def test_cognito_access_token_of_another_app_client_is_refused(cognito: Stack) -> None:
    assert cognito.call(cognito_token(cognito, client_id="app-client-2")).status_code == 401


def test_cognito_id_token_is_refused(cognito: Stack) -> None:
    # Cognito ID tokens carry `aud` = the app client and token_use "id".
    token = cognito_token(cognito, token_use="id", aud="app-client-1", client_id=None)
    assert cognito.call(token).status_code == 401


def test_cognito_client_credentials_token_needs_machine_clients(
    cognito: Stack, cognito_machines: Stack
) -> None:
    assert cognito.call(cognito_token(cognito, sub="app-client-1", username=None)).status_code == 401
    token = cognito_token(cognito_machines, sub="app-client-1", username=None)
    assert cognito_machines.call(token).status_code == 200
    assert cognito_machines.subject_of_last_call() == "app-client-1"


# --- Keycloak: `typ: Bearer` in the payload, `azp`, audience mapper, service accounts ---------

keycloak = stack_for("keycloak", machine=False)
keycloak_machines = stack_for("keycloak", machine=True)


def keycloak_token(stack: Stack, **claims: Any) -> str:
    body: dict[str, Any] = {
        "aud": [stack.url, "account"],  # an audience mapper adds the resource beside "account"
        "client_id": None,
        "typ": "Bearer",
        "azp": "mcp-client",
        "scope": "openid tools.read",
        "preferred_username": "alice",
        "realm_access": {"roles": ["offline_access"]},
        "sub": "f81d4fae-user",
    }
    body.update(claims)
    return stack.token(**body)


def test_keycloak_access_token_is_accepted(keycloak: Stack) -> None:
    assert keycloak.call(keycloak_token(keycloak)).status_code == 200
    event = keycloak.gateway.audit.wait_for(lambda e: e.method == "tools/call")
    assert (event.subject, event.client_id) == ("f81d4fae-user", "mcp-client")


def test_keycloak_id_and_refresh_tokens_are_refused(keycloak: Stack) -> None:
    assert keycloak.call(keycloak_token(keycloak, typ="ID")).status_code == 401
    assert keycloak.call(keycloak_token(keycloak, typ="Refresh")).status_code == 401


def test_keycloak_token_without_the_audience_mapper_is_refused(keycloak: Stack) -> None:
    assert keycloak.call(keycloak_token(keycloak, aud="account")).status_code == 401


def test_keycloak_service_account_needs_machine_clients(keycloak: Stack, keycloak_machines: Stack) -> None:
    claims = {"preferred_username": "service-account-mcp-client", "sub": "sa-uuid"}
    assert keycloak.call(keycloak_token(keycloak, **claims)).status_code == 401
    assert keycloak_machines.call(keycloak_token(keycloak_machines, **claims)).status_code == 200
    assert keycloak_machines.subject_of_last_call() == "mcp-client"


def test_keycloak_user_named_like_another_clients_service_account_is_a_user(keycloak: Stack) -> None:
    # Only service-account-<azp> marks a machine: a user called service-account-x is a user.
    token = keycloak_token(keycloak, preferred_username="service-account-other")
    assert keycloak.call(token).status_code == 200
    assert keycloak.subject_of_last_call() == "f81d4fae-user"


# --- Auth0: `aud` arrays, RBAC `permissions`, `gty: client-credentials` ------------------------

AUTH0_API = "https://files.api.example"
auth0 = stack_for("auth0", machine=False, audiences={"files": [AUTH0_API]})
auth0_machines = stack_for("auth0", machine=True, audiences={"files": [AUTH0_API]})


def auth0_token(stack: Stack, **claims: Any) -> str:
    body: dict[str, Any] = {
        "aud": [AUTH0_API, f"{stack.issuer.issuer}/userinfo"],
        "client_id": None,
        "azp": "auth0-client",
        "scope": "openid profile",
        "permissions": ["tools.read"],
        "sub": "auth0|alice",
    }
    body.update(claims)
    return stack.token(**body)


def test_auth0_permissions_grant_like_scopes(auth0: Stack) -> None:
    assert auth0.call(auth0_token(auth0)).status_code == 200
    assert auth0.call(auth0_token(auth0), "write_thing").status_code == 403
    assert auth0.call(auth0_token(auth0, permissions=["tools.write"]), "write_thing").status_code == 200


def test_auth0_id_token_is_refused(auth0: Stack) -> None:
    token = auth0_token(auth0, aud="auth0-client", scope=None, permissions=None)
    assert auth0.call(token).status_code == 401


def test_auth0_client_credentials_token_needs_machine_clients(auth0: Stack, auth0_machines: Stack) -> None:
    claims = {
        "gty": "client-credentials",
        "sub": "auth0-client@clients",
        "scope": "tools.read",
        "permissions": None,
    }
    assert auth0.call(auth0_token(auth0, **claims)).status_code == 401
    assert auth0_machines.call(auth0_token(auth0_machines, **claims)).status_code == 200
    assert auth0_machines.subject_of_last_call() == "auth0-client"
