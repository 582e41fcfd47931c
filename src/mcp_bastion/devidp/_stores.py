"""The IdP's state behind small async interfaces, with in-memory implementations.

Every entry expires on the injected clock. The protocols are what a Redis-backed store
would implement; each operation that must be atomic (redeeming a code, rotating a refresh
token) is one method, so a networked store can make it one round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ..errors import BastionError
from ._clients import RegisteredClient
from ._policy import MAX_STORED_ENTRIES

if TYPE_CHECKING:
    from ._authorization_request import PendingAuthorization

Clock = Callable[[], float]
K = TypeVar("K")
V = TypeVar("V")

_SWEEP_EVERY = 256


class StateUnavailable(BastionError):
    """A shared store could not answer (down, timed out). The IdP fails closed: the request is
    answered ``503 temporarily_unavailable`` and nothing is decided without the store."""


class ExpiringMap(Generic[K, V]):
    """A dict whose entries vanish at their expiry time; optionally capped (oldest evicted)."""

    def __init__(self, clock: Clock, max_items: int | None = MAX_STORED_ENTRIES) -> None:
        self._clock = clock
        self._max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}
        self._writes = 0

    def get(self, key: K) -> V | None:
        """The live value of ``key``, or ``None``."""
        entry = self._items.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._items[key]
            return None
        return entry[1]

    def expiry(self, key: K) -> float | None:
        """When ``key`` expires, if it is live."""
        return self._items[key][0] if self.get(key) is not None else None

    def set(self, key: K, value: V, expires_at: float) -> None:
        """Store ``value`` until ``expires_at``."""
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._sweep()
        self._items.pop(key, None)
        self._items[key] = (expires_at, value)
        if self._max_items is not None and len(self._items) > self._max_items:
            del self._items[next(iter(self._items))]

    def pop(self, key: K) -> V | None:
        """Remove ``key`` and return its live value, if any."""
        value = self.get(key)
        self._items.pop(key, None)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def _sweep(self) -> None:
        now = self._clock()
        for key in [key for key, (expires_at, _) in self._items.items() if expires_at <= now]:
            del self._items[key]


# -- authorization codes -----------------------------------------------------------------


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code stands for; every field is checked at redemption."""

    client_id: str
    redirect_uri: str
    resource: str
    scopes: tuple[str, ...]
    subject: str
    code_challenge: str
    #: The refresh-token family the first redemption starts; revoked if the code is replayed.
    family_id: str
    refresh_allowed: bool
    #: An :class:`~._login.UpstreamToken` sealed with the code itself (:mod:`._seal`).
    sealed_upstream: bytes | None = None


@dataclass(frozen=True)
class CodeRedemption:
    """The outcome of presenting a code: its grant, and whether this was its first use."""

    grant: CodeGrant
    first_use: bool


class CodeStore(Protocol):
    """Authorization codes, keyed by their digest."""

    async def save(self, code_digest: str, grant: CodeGrant, expires_at: float) -> None: ...

    async def redeem(self, code_digest: str, retain_until: float) -> CodeRedemption | None:
        """Mark the code used (keeping it until ``retain_until``); ``None`` if unknown or expired."""
        ...


class MemoryCodeStore:
    """In-memory :class:`CodeStore`."""

    def __init__(self, clock: Clock) -> None:
        self._codes: ExpiringMap[str, CodeRedemption] = ExpiringMap(clock)

    async def save(self, code_digest: str, grant: CodeGrant, expires_at: float) -> None:
        self._codes.set(code_digest, CodeRedemption(grant, first_use=True), expires_at)

    async def redeem(self, code_digest: str, retain_until: float) -> CodeRedemption | None:
        entry = self._codes.get(code_digest)
        if entry is None:
            return None
        if entry.first_use:
            # Kept after use so that a replay can still be recognised and answered by
            # revoking what the first redemption issued (RFC 6749 §4.1.2).
            self._codes.set(code_digest, replace(entry, first_use=False), retain_until)
        return entry


# -- refresh tokens ----------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token stands for. One family per authorization; rotation stays in it."""

    family_id: str
    client_id: str
    subject: str
    resource: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class RefreshEntry:
    """A stored refresh token: its grant and whether it was already rotated away."""

    grant: RefreshGrant
    used: bool = False


class RefreshStore(Protocol):
    """Refresh tokens keyed by digest, and revoked families."""

    async def save(self, token_digest: str, grant: RefreshGrant, expires_at: float) -> None: ...

    async def find(self, token_digest: str) -> RefreshEntry | None:
        """The token's entry; ``None`` if unknown, expired, or its family was revoked."""
        ...

    async def mark_used(self, token_digest: str) -> bool:
        """Atomically mark the token rotated; ``False`` if it already was (a lost race)."""
        ...

    async def revoke_family(self, family_id: str, until: float) -> None: ...


class MemoryRefreshStore:
    """In-memory :class:`RefreshStore`."""

    def __init__(self, clock: Clock) -> None:
        self._tokens: ExpiringMap[str, RefreshEntry] = ExpiringMap(clock)
        self._revoked: ExpiringMap[str, bool] = ExpiringMap(clock)

    async def save(self, token_digest: str, grant: RefreshGrant, expires_at: float) -> None:
        self._tokens.set(token_digest, RefreshEntry(grant), expires_at)

    async def find(self, token_digest: str) -> RefreshEntry | None:
        entry = self._tokens.get(token_digest)
        if entry is None or self._revoked.get(entry.grant.family_id):
            return None
        return entry

    async def mark_used(self, token_digest: str) -> bool:
        entry = self._tokens.get(token_digest)
        expires_at = self._tokens.expiry(token_digest)
        if entry is None or expires_at is None or entry.used:
            return False
        self._tokens.set(token_digest, replace(entry, used=True), expires_at)
        return True

    async def revoke_family(self, family_id: str, until: float) -> None:
        self._revoked.set(family_id, True, until)


# -- pending consents, clients, rate limits ----------------------------------------------


class PendingStore(Protocol[V]):
    """Authorization requests waiting on the consent page, keyed by request id."""

    async def save(self, request_id: str, pending: V, expires_at: float) -> None: ...

    async def get(self, request_id: str) -> V | None: ...

    async def take(self, request_id: str) -> V | None:
        """Remove and return the pending request (single use)."""
        ...


class MemoryPendingStore(Generic[V]):
    """In-memory :class:`PendingStore`."""

    def __init__(self, clock: Clock) -> None:
        self._pending: ExpiringMap[str, V] = ExpiringMap(clock)

    async def save(self, request_id: str, pending: V, expires_at: float) -> None:
        self._pending.set(request_id, pending, expires_at)

    async def get(self, request_id: str) -> V | None:
        return self._pending.get(request_id)

    async def take(self, request_id: str) -> V | None:
        return self._pending.pop(request_id)


class ClientStore(Protocol):
    """Dynamically registered clients."""

    async def add(self, client: RegisteredClient) -> None: ...

    async def get(self, client_id: str) -> RegisteredClient | None: ...


class MemoryClientStore:
    """In-memory :class:`ClientStore`; beyond ``max_clients`` the oldest are forgotten."""

    def __init__(self, max_clients: int) -> None:
        self._clients: dict[str, RegisteredClient] = {}
        self._max_clients = max_clients

    async def add(self, client: RegisteredClient) -> None:
        self._clients[client.client_id] = client
        if len(self._clients) > self._max_clients:
            del self._clients[next(iter(self._clients))]

    async def get(self, client_id: str) -> RegisteredClient | None:
        return self._clients.get(client_id)


class RateLimiter(Protocol):
    """Admits at most N events per key per window."""

    async def hit(self, key: str) -> bool:
        """Record one event for ``key``; ``False`` if it is over the limit (not recorded)."""
        ...


class MemoryRateLimiter:
    """In-memory sliding-window :class:`RateLimiter`."""

    def __init__(self, clock: Clock, limit: int, window_s: float) -> None:
        self._clock = clock
        self._limit = limit
        self._window_s = window_s
        self._events: ExpiringMap[str, tuple[float, ...]] = ExpiringMap(clock)

    async def hit(self, key: str) -> bool:
        now = self._clock()
        recent = tuple(t for t in self._events.get(key) or () if t > now - self._window_s)
        if len(recent) >= self._limit:
            return False
        self._events.set(key, (*recent, now), now + self._window_s)
        return True


@dataclass(frozen=True)
class IdpStores:
    """Every store the IdP keeps state in: one bundle, so a shared backend replaces them all."""

    clients: ClientStore
    codes: CodeStore
    refresh_tokens: RefreshStore
    pending: PendingStore[PendingAuthorization]
    registrations: RateLimiter
