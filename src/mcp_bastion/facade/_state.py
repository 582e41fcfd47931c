"""Where a facade keeps its state: one process's memory, or a Redis/Valkey shared by replicas.

The devidp core's stores (:class:`~mcp_bastion.devidp._stores.IdpStores`: registrations,
pending consents, codes, refresh tokens, the registration rate limit) plus the two the
facade adds: sign-ins waiting on the IdP (:class:`LoginStore`) and the ID-JAG ``jti`` replay
set (:class:`ReplaySet`). Each operation that must be atomic across replicas is one method
(a code's redemption, a refresh token's rotation, a ``jti``'s first use, a sign-in's take).

Nothing a client could present is stored: codes and refresh tokens are keys by their
SHA-256 digest, and a waiting sign-in (its PKCE verifier and nonce) is sealed with the
``state`` that names it, which only the browser holds (:mod:`._seal`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..devidp._app import memory_stores
from ..devidp._settings import DevIdpSettings
from ..devidp._stores import ExpiringMap, IdpStores

Clock = Callable[[], float]


class LoginStore(Protocol):
    """Sign-ins sent to the IdP, waiting for the browser at ``callback``: sealed, by digest."""

    async def save(self, key: str, sealed: bytes, expires_at: float) -> None: ...

    async def take(self, key: str) -> bytes | None:
        """Remove and return the sign-in (single use, valid or not); ``None`` if unknown."""
        ...


class ReplaySet(Protocol):
    """Identifiers that may be used once (an ID-JAG's ``jti``)."""

    async def first_use(self, key: str, until: float) -> bool:
        """Record ``key`` until ``until``; ``False`` if it was already recorded (a replay)."""
        ...


class FacadeState(Protocol):
    """All of one facade's state."""

    @property
    def stores(self) -> IdpStores: ...

    @property
    def logins(self) -> LoginStore: ...

    @property
    def replays(self) -> ReplaySet: ...

    async def aclose(self) -> None: ...


class MemoryLoginStore:
    def __init__(self, clock: Clock) -> None:
        self._pending: ExpiringMap[str, bytes] = ExpiringMap(clock)

    async def save(self, key: str, sealed: bytes, expires_at: float) -> None:
        self._pending.set(key, sealed, expires_at)

    async def take(self, key: str) -> bytes | None:
        return self._pending.pop(key)


class MemoryReplaySet:
    def __init__(self, clock: Clock) -> None:
        # Uncapped: an evicted jti could be replayed. Every entry is a verified, signed
        # assertion's, so only the IdP can grow the set, and each leaves at its exp.
        self._seen: ExpiringMap[str, bool] = ExpiringMap(clock, max_items=None)

    async def first_use(self, key: str, until: float) -> bool:
        # Checked and recorded with no await in between: atomic on one event loop.
        if self._seen.get(key):
            return False
        self._seen.set(key, True, until)
        return True


class MemoryFacadeState:
    """One process's state (``facade.state.store: memory``): run one worker."""

    def __init__(self, settings: DevIdpSettings, clock: Clock) -> None:
        self.stores = memory_stores(settings, clock)
        self.logins = MemoryLoginStore(clock)
        self.replays = MemoryReplaySet(clock)

    async def aclose(self) -> None:
        return None
