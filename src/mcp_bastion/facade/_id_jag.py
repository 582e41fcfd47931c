"""Enterprise-Managed Authorization: the facade's check of an Identity Assertion JWT
Authorization Grant (ID-JAG), presented with the JWT bearer grant (RFC 7523).

The enterprise IdP has already decided that this user may use this MCP client with this
resource, and says so in a JWT it signs (``typ: oauth-id-jag+jwt``). The facade accepts it
when it is the configured IdP's (signature, ``iss``), addressed to the facade (``aud``),
issued for the client presenting it (``client_id``), for the resource requested
(``resource``, required here: the IdP binds the grant to one resource), within its times
and lifetime cap, and never seen before (``jti``, kept until the assertion expires).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..auth.keys import RemoteKeySet
from ..config.model import IdentityProviderConfig
from ..devidp import JWT_BEARER, Assertion, IdpEvent, IdpEvents
from ..devidp._scopes import parse_scope
from ..errors import OAuthError
from ._id_token import check_times, checked_subject
from ._jws import JwtRejected, verified_claims
from ._state import MemoryReplaySet, ReplaySet

log = logging.getLogger("mcp_bastion.facade")

ID_JAG_TYPE = "oauth-id-jag+jwt"
#: A `jti` longer than this is not an identifier but a payload.
MAX_JTI_CHARS = 256


class IdJagVerifier:
    """The facade's :class:`~mcp_bastion.devidp.AssertionVerifier` for one IdP."""

    def __init__(
        self,
        provider: IdentityProviderConfig,
        audience: str,
        keys: RemoteKeySet,
        clock: Callable[[], float],
        replays: ReplaySet | None = None,
        events: IdpEvents | None = None,
    ) -> None:
        self._events = events
        self._provider = provider
        self._audience = audience
        self._keys = keys
        self._clock = clock
        self._seen: ReplaySet = replays or MemoryReplaySet(clock)

    async def verify(self, assertion: str, client_id: str, resource: str) -> Assertion:
        try:
            claims = await verified_claims(
                assertion, self._provider, self._keys, what="ID-JAG", typ=ID_JAG_TYPE
            )
            granted, jti, until = self._grant(claims, client_id, resource)
            # Replay protection: one atomic check-and-record in the replay set, which replicas
            # share with `facade.state.store: redis`; kept until the assertion expires.
            if not await self._seen.first_use(jti, until):
                raise JwtRejected("ID-JAG jti was already used")
        except JwtRejected as exc:
            log.info("facade: ID-JAG refused for client %s: %s", client_id[:200], exc.message)
            # The reason is the facade's own words (JwtRejected never quotes the assertion).
            self._record(False, f"invalid_grant: {exc.message}", client_id, None, resource)
            raise OAuthError("invalid_grant", "the identity assertion was not accepted") from None
        self._record(True, "ok", client_id, granted.subject, resource)
        return granted

    def _record(self, allowed: bool, reason: str, client_id: str, subject: str | None, resource: str) -> None:
        if self._events is not None:
            status = 200 if allowed else 400
            event = IdpEvent("assertion", allowed, JWT_BEARER, reason, status, client_id, subject, resource)
            self._events.record(event)

    def _grant(self, claims: dict[str, Any], client_id: str, resource: str) -> tuple[Assertion, str, float]:
        if not _names(claims.get("aud"), self._audience, single=True):
            raise JwtRejected("ID-JAG audience is not this facade")
        if claims.get("client_id") != client_id:
            raise JwtRejected("ID-JAG was issued for another client")  # a stolen assertion
        if not _names(claims.get("resource"), resource, single=False):
            raise JwtRejected("ID-JAG does not name the requested resource")
        now = self._clock()
        expires = check_times(claims, self._provider, now, "ID-JAG")
        if expires - float(claims["iat"]) > self._provider.max_token_lifetime_seconds:
            raise JwtRejected("ID-JAG lives longer than the provider's lifetime cap")
        subject = checked_subject(claims, "ID-JAG")
        scope = claims.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise JwtRejected("ID-JAG scope is not a string")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise JwtRejected("ID-JAG has no usable jti")
        until = expires + self._provider.leeway_seconds
        return Assertion(subject, None if scope is None else parse_scope(scope)), jti, until


def _names(value: Any, wanted: str, *, single: bool) -> bool:
    """Whether a claim (a string, or a list of strings) names ``wanted``; ``single``: only it."""
    if isinstance(value, str):
        return value == wanted
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value == [wanted] if single else wanted in value
    return False
