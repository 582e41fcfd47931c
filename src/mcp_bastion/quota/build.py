"""From the `quotas:` config to the stage that wraps `Forward` (or nothing, when unused)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..config import LoadedConfig
from ..errors import ConfigError
from ..pipeline.gateway import Stage
from .concurrency import ConcurrencyCaps
from .config import QuotaConfig
from .plan import QuotaPlan
from .stage import EnforceQuotas
from .store import MemoryStore, QuotaStore

__all__ = ["Quotas", "build_quotas"]

PASSWORD = "quotas.redis.password"  # noqa: S105  # where LoadedConfig keeps it, not the password


class Quotas:
    """What `build_gateway` asks of this package: wrap the upstream stage, if anything is limited."""

    def __init__(self, plan: QuotaPlan, store: QuotaStore | None, caps: ConcurrencyCaps | None) -> None:
        self.plan = plan
        self.store = store
        self.caps = caps

    def around(self, inner: Stage) -> Stage:
        if self.store is None and self.caps is None:
            return inner  # no quota configured: not even a stage call
        return EnforceQuotas(inner, self.plan, self.store or MemoryStore(16), self.caps)


def build_quotas(loaded: LoadedConfig, closers: list[Callable[[], Awaitable[Any]]]) -> Quotas:
    config: QuotaConfig = loaded.config.quotas
    servers = {server.name for server in loaded.config.servers}
    for i, rule in enumerate(config.rules):
        unknown = sorted(set(rule.servers or ()) - servers)
        if unknown:
            raise ConfigError(
                f"names servers that are not defined: {', '.join(map(repr, unknown))}",
                source=loaded.path or "",
                path=f"quotas.rules[{i}].servers",
            )
    caps = config.concurrency
    concurrency = (
        ConcurrencyCaps(caps.max_in_flight, caps.max_streams)
        if caps.max_in_flight is not None or caps.max_streams is not None
        else None
    )
    store: QuotaStore | None = None
    if config.rules:
        store = _store(loaded, config)
        closers.append(store.close)
    return Quotas(QuotaPlan(config.rules), store, concurrency)


def _store(loaded: LoadedConfig, config: QuotaConfig) -> QuotaStore:
    if config.store == "memory":
        return MemoryStore(config.max_keys)
    redis = config.redis
    assert redis is not None  # the model requires it with store: redis
    try:
        from .redis_store import RedisStore
    except ImportError:
        raise ConfigError(
            "store 'redis' needs the Redis client: install mcp-bastion[redis]",
            source=loaded.path or "",
            path="quotas.store",
        ) from None
    return RedisStore(
        redis.url,
        prefix=redis.prefix,
        timeout=redis.timeout_seconds,
        retry_seconds=redis.retry_seconds,
        max_connections=redis.max_connections,
        username=redis.username,
        password=loaded.secret(PASSWORD),
    )
