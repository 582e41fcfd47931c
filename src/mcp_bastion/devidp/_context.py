"""Everything the endpoints share, assembled once by :func:`build_devidp`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ._authorization_request import PendingAuthorization
from ._clients import ClientLookup
from ._endpoints import IdpLocation
from ._events import IdpEvents, NoEvents
from ._rfc9068 import AccessTokenIssuer
from ._settings import DevIdpSettings
from ._stores import ClientStore, CodeStore, PendingStore, RateLimiter, RefreshStore


@dataclass(frozen=True)
class IdpContext:
    """The IdP's configuration, clock, stores and token issuer."""

    settings: DevIdpSettings
    location: IdpLocation
    clock: Callable[[], float]
    clients: ClientLookup
    client_store: ClientStore
    codes: CodeStore
    refresh_tokens: RefreshStore
    pending: PendingStore[PendingAuthorization]
    registrations: RateLimiter
    access_tokens: AccessTokenIssuer
    events: IdpEvents = field(default_factory=NoEvents)
