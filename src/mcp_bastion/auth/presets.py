"""IdP presets: each enterprise IdP's access tokens, as they are rather than as RFC 9068 says.

`preset` fills the claim mapping (config/identity.py) and, since none of these IdPs sends
`typ: at+jwt` by default, replaces that check with the IdP's own access-token marker, so an
ID token or refresh token still cannot pass as an access token (TV-11):

| preset | access token when | scopes | audience | machine client when |
|---|---|---|---|---|
| entra | `scp` or `roles` present | `scp` + `roles` | `aud` (GUID or `api://`) | no `scp` (app-only) |
| okta | `scp` present | `scp` | `aud` (`api://default`) | `sub` = `cid` |
| cognito | `token_use` = `access` | `scope` | `client_id` (no `aud`) | `sub` = `client_id` |
| keycloak | `typ` claim = `Bearer` | `scope` | `aud` (audience mapper) | `preferred_username` = `service-account-<azp>` |
| auth0 | `scope` or `permissions` present | `scope` + `permissions` | `aud` (array) | `gty` = `client-credentials` |

Without a preset (generic RFC 9068 tokens) a machine client is a token whose `sub` is its
client id. Audiences the IdP uses instead of a server's resource URL (`audiences:`) map to
that server only. A machine client's token is accepted only at the servers listed in
`machine_clients`, with the client id as subject; elsewhere it is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ..config.model import IdentityProviderConfig
from ..errors import InvalidToken
from .entra import V1Check
from .jwt import _audiences, _principal, _scopes
from .principal import Principal

__all__ = ["PresetProfile", "profile_for"]

Marker = Callable[[dict[str, Any]], bool]


def _has(*names: str) -> Marker:
    return lambda claims: any(name in claims for name in names)


def _keycloak_machine(claims: dict[str, Any]) -> bool:
    azp = claims.get("azp")
    return isinstance(azp, str) and claims.get("preferred_username") == f"service-account-{azp}"


_ACCESS: dict[str | None, Marker] = {
    "entra": _has("scp", "roles"),
    "okta": _has("scp"),
    "cognito": lambda claims: claims.get("token_use") == "access",
    "keycloak": lambda claims: claims.get("typ") == "Bearer",
    "auth0": _has("scope", "permissions"),
    None: lambda claims: True,  # generic: `typ: at+jwt` was checked in the header
}
_MACHINE: dict[str | None, Marker] = {
    "entra": lambda claims: "scp" not in claims,
    "okta": lambda claims: claims.get("sub") == claims.get("cid"),
    "cognito": lambda claims: claims.get("sub") == claims.get("client_id"),
    "keycloak": _keycloak_machine,
    "auth0": lambda claims: claims.get("gty") == "client-credentials",
    None: lambda claims: claims.get("sub") is not None and claims.get("sub") in _client_ids(claims),
}
_UNION_SCOPES = frozenset({"entra", "auth0"})  # both claims grant; other presets read one


def _client_ids(claims: dict[str, Any]) -> set[Any]:
    return {claims.get("client_id"), claims.get("azp"), claims.get("cid"), claims.get("appid")} - {None}


class PresetProfile:
    """A `ClaimsProfile` (auth/jwt.py) for one IdP: its preset, audience aliases, machine clients."""

    def __init__(self, provider: IdentityProviderConfig, resources: Mapping[str, str]) -> None:
        self._preset = provider.preset
        self._resources = frozenset(resources.values())
        aliases: dict[str, set[str]] = {}
        for server, values in provider.audiences.items():
            if server in resources:
                for value in values:
                    aliases.setdefault(value, set()).add(resources[server])
        self._aliases = {value: frozenset(urls) for value, urls in aliases.items()}
        self._machine_at = frozenset(resources[s] for s in provider.machine_clients if s in resources)
        self._is_access = _ACCESS[self._preset]
        self._is_machine = _MACHINE[self._preset]
        self._v1 = V1Check(provider)

    def audiences(self, claims: dict[str, Any]) -> frozenset[str]:
        if not self._is_access(claims):
            raise InvalidToken("token is not an access token")  # an ID or refresh token (TV-11)
        self._v1.check(claims)
        if self._preset == "cognito":
            # Cognito access tokens carry no `aud`: the app client id says whom it was issued to.
            client = claims.get("client_id")
            named = frozenset((client,)) if isinstance(client, str) else frozenset()
        else:
            named = _audiences(claims)
        usable: set[str] = set(named & self._resources)
        for value in named:
            usable |= self._aliases.get(value, frozenset())
        if self._is_machine(claims):
            usable &= self._machine_at  # a token without a user goes only where one is allowed
        return frozenset(usable)

    def principal(
        self, claims: dict[str, Any], config: IdentityProviderConfig, digest: bytes, exp: float
    ) -> Principal:
        principal = _principal(claims, config, digest, exp)
        if self._preset in _UNION_SCOPES:
            granted: set[str] = set()
            for name in config.claims.scopes:
                granted |= _scopes(claims, (name,))
            principal = dataclasses.replace(principal, scopes=frozenset(granted))
        if self._is_machine(claims):
            if principal.client_id is None:
                raise InvalidToken("token has no client id")
            principal = dataclasses.replace(principal, subject=principal.client_id)  # the client is who calls
        return principal


def profile_for(provider: IdentityProviderConfig, resources: Mapping[str, str]) -> PresetProfile | None:
    """The profile an IdP needs, or None when its tokens are plain RFC 9068 ones (the fast path)."""
    if provider.preset is None and not provider.audiences and not provider.machine_clients:
        return None
    return PresetProfile(provider, resources)
