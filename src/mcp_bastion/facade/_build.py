"""One facade per identity provider that configures ``facade``: the shared authorization-server
core (:mod:`mcp_bastion.devidp`) with the upstream login, and the issuer policy under which the
gateway's verifier accepts the facade's tokens."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from ..asgi import Receive, Scope, Send
from ..audit import AuditSink
from ..auth import IssuerPolicy, RemoteKeySet
from ..config import LoadedConfig
from ..config.model import ClaimMapping, IdentityProviderConfig
from ..devidp import DevIdp, DevIdpSettings, build_devidp
from ..errors import ConfigError
from ._audit import FacadeAudit
from ._id_jag import IdJagVerifier
from ._issuer import facade_issuer
from ._state import FacadeState, MemoryFacadeState
from ._upstream import UpstreamClient, UpstreamLogin

Clock = Callable[[], float]


class Facade:
    """A running facade: the ASGI app for its paths, and how the gateway trusts its tokens."""

    def __init__(
        self, provider: IdentityProviderConfig, idp: DevIdp, http: httpx.AsyncClient, state: FacadeState
    ) -> None:
        self.provider = provider
        self.issuer = idp.settings.issuer
        self.path_prefixes = idp.path_prefixes
        self._idp = idp
        self._http = http
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The gateway's ASGI aliases name plain dicts where Starlette's name MutableMappings:
        # the same messages, typed differently.
        await self._idp.app(scope, receive, cast("Any", send))

    def issuer_policy(self, clock: Clock) -> IssuerPolicy:
        """The verifier's policy for this facade: its own issuer and keys, RFC 9068 tokens with
        the standard claim names, and the provider's leeway and lifetime cap."""
        config = self.provider.model_copy(
            update={
                "name": f"{self.provider.name}-facade",
                "issuer": self.issuer,
                "discovery": False,
                "jwks_uri": f"{self.issuer}/jwks",
                "algorithms": (self._idp.settings.signing_alg,),
                "require_typ": "at+jwt",
                "claims": ClaimMapping(),
                "facade": None,
            }
        )
        jwks = self._idp.jwks()

        async def load() -> Any:
            return jwks  # the facade's own key: in memory, never fetched

        return IssuerPolicy(config, RemoteKeySet(load, clock=clock, ttl=86_400, cooldown=0))

    async def aclose(self) -> None:
        try:
            await self._idp.aclose()
            await self._http.aclose()
        finally:
            await self._state.aclose()


def build_facade(
    loaded: LoadedConfig,
    index: int,
    resources: Mapping[str, tuple[str, ...]],
    clock: Clock,
    sink: AuditSink | None = None,
) -> Facade:
    """The facade of ``identity_providers[index]`` for ``resources`` (URL → scopes); its
    sign-ins, consents, tokens and registrations go to ``sink`` as audit events."""
    config = loaded.config
    provider = config.identity_providers[index]
    settings = provider.facade
    assert settings is not None
    where = f"identity_providers[{index}].facade"
    if not resources:
        raise ConfigError(
            "no server accepts this identity provider, so its facade would have nothing to authorize",
            source=loaded.path or "",
            path=where,
        )
    issuer = facade_issuer(config, provider)
    secret = loaded.secret(f"{where}.client_secret")
    assert secret is not None
    http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
    upstream = UpstreamClient(
        provider=provider,
        issuer=issuer,
        client_id=settings.client_id,
        client_secret=secret,
        scopes=settings.scopes,
        callback_url=f"{issuer}/callback",
        callback_path=f"{urlsplit(issuer).path}/callback",
    )
    idp_settings = DevIdpSettings(
        issuer=issuer,
        resources=resources,
        access_token_ttl=settings.access_token_ttl_seconds,
        refresh_token_ttl=settings.refresh_token_ttl_seconds,
        signing_alg=config.signing.algorithm,
        allow_http_cimd=settings.allow_insecure_http_cimd,
        allow_loopback_cimd=settings.cimd.allow_loopback,
        cimd_ca_file=_ca_file(loaded, index),
        registration_limit_per_minute=settings.registration_limit_per_minute,
        consent_note=f"mcp-bastion: you signed in with {provider.name}.",
    )
    state = _state(loaded, index, idp_settings, clock)
    pass_through = resources if settings.issue == "idp_when_audience_fits" else None
    login = UpstreamLogin(upstream, http, clock, state.logins, pass_through)
    events = FacadeAudit(sink, provider.name, issuer, clock) if sink is not None else None
    assertions = (
        IdJagVerifier(provider, issuer, login.keys, clock, state.replays, events)
        if settings.accept_id_jag
        else None
    )
    idp = build_devidp(
        idp_settings,
        signing_key=_gateway_key(loaded),
        clock=clock,
        login=login,
        assertions=assertions,
        stores=state.stores,
        events=events,
    )
    return Facade(provider, idp, http, state)


def _ca_file(loaded: LoadedConfig, index: int) -> str | None:
    """``facade.cimd.ca_file``, checked now: a bundle that cannot be read is a start-up error."""
    facade = loaded.config.identity_providers[index].facade
    assert facade is not None
    path = facade.cimd.ca_file
    if path is None:
        return None
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the CA bundle ({type(exc).__name__})",
            source=loaded.path or "",
            path=f"identity_providers[{index}].facade.cimd.ca_file",
        ) from None
    return path


def _state(loaded: LoadedConfig, index: int, settings: DevIdpSettings, clock: Clock) -> FacadeState:
    """The facade's state store (``facade.state``): this process's memory, or a shared Redis."""
    provider = loaded.config.identity_providers[index]
    assert provider.facade is not None
    config = provider.facade.state
    if config.store == "memory":
        return MemoryFacadeState(settings, clock)
    redis = config.redis
    assert redis is not None  # the model requires it with store: redis
    try:
        from ._redis_state import RedisFacadeState
    except ModuleNotFoundError:
        raise ConfigError(
            "facade state 'redis' needs the Redis client: install mcp-bastion[redis]",
            source=loaded.path or "",
            path=f"identity_providers[{index}].facade.state",
        ) from None
    return RedisFacadeState(
        redis.url,
        # One facade's keys apart from another's and from the quotas' (the name is a slug).
        prefix=f"{redis.prefix}{provider.name}:",
        timeout=redis.timeout_seconds,
        max_connections=redis.max_connections,
        registration_limit_per_minute=settings.registration_limit_per_minute,
        registration_ttl=config.registration_ttl_seconds,
        clock=clock,
        username=redis.username,
        password=loaded.secret(f"identity_providers[{index}].facade.state.redis.password"),
    )


def _gateway_key(loaded: LoadedConfig) -> Any | None:
    """The gateway's signing key (``signing.key``) when configured; ``None``: a fresh one."""
    text = loaded.secret("signing.key")
    if text is None:
        return None
    try:
        return JWKRegistry.import_key(orjson.loads(text))
    except (JoseError, ValueError, TypeError, KeyError):
        raise ConfigError(
            "the signing key must be a private JWK", source=loaded.path or "", path="signing.key"
        ) from None
