"""The quota stage: after authorization, around the stage that touches the upstream.

It wraps `Forward` (Starlette's shape: the next stage first) because a concurrency cap must
hold its place until the upstream call ends, an SSE stream included. A refusal raises
QuotaExceeded (429, or 503 when a fail-closed rule's store is down), which `replies.py`
answers with `Retry-After` and a JSON-RPC error echoing the request id; the refusing rule's
name goes to the audit event (`quota`).
"""

from __future__ import annotations

from ..errors import QuotaExceeded, QuotaUnavailable
from ..pipeline.exchange import Exchange
from ..pipeline.gateway import Stage
from .concurrency import ConcurrencyCaps
from .config import QuotaRule
from .gcra import retry_seconds
from .plan import QuotaPlan
from .store import Ask, QuotaStore, StoreUnavailable

__all__ = ["EnforceQuotas"]


class EnforceQuotas:
    def __init__(
        self, inner: Stage, plan: QuotaPlan, store: QuotaStore, caps: ConcurrencyCaps | None
    ) -> None:
        self._inner = inner
        self._plan = plan
        self._store = store
        self._caps = caps

    async def __call__(self, ex: Exchange) -> None:
        principal = ex.principal
        assert principal is not None  # Authenticate ran
        held = None
        if self._caps is not None:
            try:
                held = self._caps.enter(principal, ex.http_method == "GET")
            except QuotaExceeded as err:
                ex.quota = err.quota
                raise
        try:
            asks = self._plan.asks(principal, ex.route.name, ex.calls)
            if asks:
                await self._take(ex, asks)
            await self._inner(ex)
        finally:
            if held is not None:
                ConcurrencyCaps.leave(held)

    async def _take(self, ex: Exchange, asks: list[tuple[Ask, QuotaRule]]) -> None:
        try:
            refusal = await self._store.take([ask for ask, _ in asks])
        except StoreUnavailable:
            closed = next((rule for _, rule in asks if rule.on_store_error == "closed"), None)
            if closed is None:
                return  # every rule here chose to let requests pass while the store is down
            ex.quota = closed.name
            raise QuotaUnavailable(
                "rate limits cannot be checked right now", quota=closed.name, retry_after=1
            ) from None
        if refusal is not None:
            rule = asks[refusal.which][1]
            ex.quota = rule.name
            seconds = retry_seconds(refusal.retry_after_us)
            raise QuotaExceeded(
                f"rate limit {rule.name!r} exceeded: retry after {seconds} s",
                quota=rule.name,
                retry_after=seconds,
            )
