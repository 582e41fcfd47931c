"""`/readyz`: whether this process can do its job now, for a load balancer or Kubernetes.

Ready means: the keys of every configured IdP are loaded (without them every token is
refused), the audit sink is healthy, and, when `telemetry.readiness.check_upstreams` is on,
every upstream answers an HTTP request. `/healthz` stays the liveness probe.

The probe is unauthenticated, so it can cost nothing it does not bound: a missing key set is
fetched again through the key set's own single-flight, rate-limited refresh (the probe waits
for it at most `upstream_timeout_seconds`), and one upstream check answers every probe for
`cache_seconds`. The answer names the failing parts by their configured names only: no URL,
no error text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson

from ..audit import AuditSink
from ..errors import BastionError
from ..upstream.transport import UpstreamTransport

__all__ = ["KeyStatus", "Readiness"]


class KeyStatus(Protocol):
    """What readiness needs of an IdP's key set (`auth.keys.RemoteKeySet`)."""

    @property
    def loaded(self) -> bool: ...
    def warm(self) -> Awaitable[None]: ...


class Readiness:
    def __init__(
        self,
        keys: Mapping[str, KeyStatus],
        audit: AuditSink,
        upstreams: Mapping[str, UpstreamTransport] | None = None,
        *,
        timeout: float = 2.0,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = dict(keys)
        self._audit = audit
        self._upstreams = dict(upstreams or {})
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._upstream_result: tuple[float, dict[str, bool]] | None = None
        self._upstream_check: asyncio.Future[dict[str, bool]] | None = None

    async def check(self) -> tuple[bool, bytes]:
        """(ready, the JSON body of the answer)."""
        keys = await self._key_status()
        audit = bool(self._audit.healthy)
        upstreams = await self._upstream_status() if self._upstreams else {}
        ready = all(keys.values()) and audit and all(upstreams.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "keys": keys, "audit": audit}
        if self._upstreams:
            body["upstreams"] = upstreams
        return ready, orjson.dumps(body)

    async def _key_status(self) -> dict[str, bool]:
        missing = [keys for keys in self._keys.values() if not keys.loaded]
        if missing:
            # Each key set retries at most once a second and shares one fetch between callers.
            fetches = [asyncio.ensure_future(keys.warm()) for keys in missing]
            await asyncio.wait(fetches, timeout=self._timeout)
        return {name: keys.loaded for name, keys in self._keys.items()}

    async def _upstream_status(self) -> dict[str, bool]:
        cached = self._upstream_result
        if cached is not None and self._clock() - cached[0] < self._cache_seconds:
            return cached[1]
        if self._upstream_check is None:
            self._upstream_check = asyncio.ensure_future(self._check_upstreams())
        return await asyncio.shield(self._upstream_check)

    async def _check_upstreams(self) -> dict[str, bool]:
        try:
            names = list(self._upstreams)
            answers = await asyncio.gather(*(self._answers(self._upstreams[n]) for n in names))
            result = dict(zip(names, answers, strict=True))
            self._upstream_result = (self._clock(), result)
            return result
        finally:
            self._upstream_check = None

    async def _answers(self, transport: UpstreamTransport) -> bool:
        """Any HTTP answer counts: the upstream is there. Sent without a credential, so an
        authenticated upstream answers 401, which is enough."""
        try:
            response = await asyncio.wait_for(
                transport.open("GET", [(b"accept", b"text/event-stream")], b"", self._timeout), self._timeout
            )
        except (BastionError, TimeoutError, OSError):
            return False
        transport.close(response)
        return True
