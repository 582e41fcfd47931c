"""Enterprise identity wired from the config (docs/identity.md): the gateway's IdP clients,
the token exchange credentials, the claims profiles of IdP presets, and introspection.

`build_gateway` (app.py) asks this module for three things: the credential of a server
whose `upstream_auth` is `exchange`, `obo` or `client_credentials`; the claims profile of
each IdP; and the verifier, wrapped to introspect opaque tokens when an IdP does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .auth.fetch import check_fetch_url
from .auth.idp_client import IdpClient
from .auth.introspection import Introspecting, IntrospectionVerifier, JwtOrOpaque
from .auth.jwt import ClaimsProfile
from .auth.presets import profile_for
from .auth.verifier import TokenVerifier
from .config import LoadedConfig
from .config.model import IdentityProviderConfig, ServerConfig
from .credentials.exchange import ExchangedCredential
from .errors import ConfigError, KeySourceError
from .urls import resource_url

__all__ = ["EnterpriseIdentity"]


class EnterpriseIdentity:
    def __init__(self, loaded: LoadedConfig, clock: Callable[[], float]) -> None:
        self._loaded = loaded
        self._clock = clock
        config = loaded.config
        self._source = loaded.path or ""
        self._http: httpx.AsyncClient | None = None
        self._clients: dict[str, IdpClient] = {}
        self._profiles: dict[str, ClaimsProfile | None] = {}
        servers = {s.name: s for s in config.servers}
        for i, provider in enumerate(config.identity_providers):
            for key in ("audiences", "machine_clients"):
                unknown = [n for n in getattr(provider, key) if n not in servers]
                if unknown:
                    raise ConfigError(
                        f"names servers that are not defined: {', '.join(map(repr, unknown))}",
                        source=self._source,
                        path=f"identity_providers[{i}].{key}",
                    )
            resources = {
                s.name: resource_url(config.public_base_url, s.name)
                for s in config.servers
                if not s.identity_providers or provider.name in s.identity_providers
            }
            self._profiles[provider.issuer] = profile_for(provider, resources)
        for server in config.servers:
            trusted = [
                p.name
                for p in config.identity_providers
                if p.introspection is not None
                and (not server.identity_providers or p.name in server.identity_providers)
            ]
            if len(trusted) > 1:
                # An opaque token names no issuer: it would go to one IdP chosen by order,
                # and another IdP's token would be sent to the wrong one.
                raise ConfigError(
                    f"trusts several identity providers that introspect ({', '.join(trusted)}): "
                    "an opaque token must have exactly one place to go; list one in identity_providers",
                    source=self._source,
                    path=f"servers[{config.servers.index(server)}].identity_providers",
                )

    def _idp_client(self, name: str, where: str) -> IdpClient:
        known = self._clients.get(name)
        if known is not None:
            return known
        providers = self._loaded.config.identity_providers
        index = next((i for i, p in enumerate(providers) if p.name == name), None)
        if index is None:
            raise ConfigError(f"{name!r} is not a defined identity provider", source=self._source, path=where)
        provider = providers[index]
        if provider.client is None:
            raise ConfigError(
                f"identity provider {name!r} has no `client`: the gateway must authenticate to its token endpoint",
                source=self._source,
                path=where,
            )
        for key in ("token_endpoint", "introspection_endpoint"):
            url = getattr(provider.client, key)
            try:
                if url is not None:
                    check_fetch_url(url, allow_insecure_http=provider.allow_insecure_http)
            except KeySourceError as exc:
                # Refused at start-up rather than on every call: https only (http on loopback
                # with allow_insecure_http), no credentials in the URL.
                raise ConfigError(
                    exc.message, source=self._source, path=f"identity_providers[{index}].client.{key}"
                ) from None
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        try:
            client = IdpClient(
                provider,
                provider.client,
                self._http,
                secret=self._loaded.secret(f"identity_providers[{index}].client.secret"),
                private_key=self._loaded.secret(f"identity_providers[{index}].client.private_key"),
                clock=self._clock,
            )
        except ValueError as exc:
            raise ConfigError(
                str(exc), source=self._source, path=f"identity_providers[{index}].client.private_key"
            ) from None
        self._clients[name] = client
        return client

    def credential(self, server: ServerConfig, index: int) -> ExchangedCredential:
        auth = server.upstream_auth
        assert auth.exchange is not None  # the model requires it for these types
        assert server.upstream is not None  # a `command:` server only takes minted tokens
        where = f"servers[{index}].upstream_auth.exchange.identity_provider"
        idp = self._idp_client(auth.exchange.identity_provider, where)
        return ExchangedCredential(auth.type, idp, auth.exchange, server.upstream, clock=self._clock)

    def profile(self, provider: IdentityProviderConfig) -> ClaimsProfile | None:
        return self._profiles.get(provider.issuer)

    def verifier(self, jwt: TokenVerifier) -> TokenVerifier:
        """`jwt`, or `jwt` beside introspection when some IdP accepts opaque tokens."""
        introspecting: dict[str, Introspecting] = {}
        for provider in self._loaded.config.identity_providers:
            if provider.introspection is not None:
                client = self._idp_client(provider.name, f"identity_providers[{provider.name}].client")
                introspecting[provider.issuer] = Introspecting(
                    client, provider.introspection, self._profiles.get(provider.issuer)
                )
        if not introspecting:
            return jwt
        opaque = IntrospectionVerifier(
            introspecting, clock=self._clock, max_token_bytes=self._loaded.config.limits.max_token_bytes
        )
        return JwtOrOpaque(jwt, opaque)

    async def aclose(self) -> Any:
        if self._http is not None:
            await self._http.aclose()
