"""The `quotas:` section of the config (docs/quotas.md): rate rules, concurrency caps, the store.

A rule's key is made of verified identity only: the token's issuer and subject or client id
(checked before this stage runs), the server the request is for, the tool a `tools/call`
names. Nothing a client can set in a header is a key part, so no header can move a caller
into someone else's bucket or out of its own.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["KeyPart", "QuotaConfig", "QuotaRule", "QuotaSecret", "RedisStoreConfig"]

KeyPart = Literal["subject", "client", "server", "tool"]
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
Name = Annotated[str, Field(pattern=_NAME, description="Lower-case name: letters, digits, '-', '_', '.'.")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class QuotaRule(_Model):
    """One rate limit: `rate` requests per `per_seconds`, up to `burst` at once, per key."""

    name: Name = Field(description="Names the rule in refusals and the audit feed; unique.")
    key: tuple[KeyPart, ...] = Field(
        min_length=1,
        max_length=4,
        description="What one bucket is per: any of subject, client, server, tool (verified identity only).",
    )
    # GCRA (the virtual-scheduling form of a token bucket of capacity `burst` refilled at
    # `rate` per `per_seconds`: the same admissions, one number per key).
    algorithm: Literal["gcra"] = "gcra"
    rate: float = Field(gt=0, le=1_000_000, description="Requests allowed per `per_seconds`.")
    per_seconds: float = Field(default=1, gt=0, le=86_400)
    burst: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Requests allowed at once (default: `rate`, at least 1).",
    )
    servers: tuple[str, ...] | None = Field(default=None, description="Only these servers (default: all).")
    methods: tuple[str, ...] | None = Field(
        default=None, description="Only these JSON-RPC methods (default: every request)."
    )
    tools: tuple[str, ...] | None = Field(
        default=None, description="Only `tools/call` of these tools (default: any request the rule counts)."
    )
    # A limit that cannot be checked has not passed: closed unless the operator says otherwise.
    on_store_error: Literal["closed", "open"] = Field(
        default="closed",
        description="When the store (Redis) is unreachable: refuse with 503 (closed) or let requests pass (open).",
    )

    @field_validator("key")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a key part is listed twice")
        return value

    @model_validator(mode="after")
    def _representable(self) -> QuotaRule:
        # The Redis script keeps times as integers in a Lua double: exact below 2^53 µs.
        if self.interval_us * self.capacity > 2**50:
            raise ValueError("rate too low for this burst: one bucket would span more than 35 years")
        return self

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, int(self.rate))

    @property
    def interval_us(self) -> int:
        """Microseconds between two requests at the sustained rate (GCRA's emission interval)."""
        return max(1, round(self.per_seconds / self.rate * 1_000_000))


class QuotaSecret(_Model):
    """Where the Redis password is read from (an environment variable or a file)."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> QuotaSecret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' and 'file', e.g. {env: VARIABLE}")
        return self


class RedisStoreConfig(_Model):
    url: str = Field(
        description="redis:// or rediss:// URL of one Redis or Valkey primary, without credentials "
        "(give the password as `password`)."
    )
    password: QuotaSecret | None = None
    username: str | None = Field(default=None, description="ACL user (Redis 6+), with `password`.")
    prefix: str = Field(default="mcp-bastion:quota:", max_length=128, description="Prefix of every key.")
    # A quota check adds one round trip to every request: a slow store must not stall calls.
    timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    # After a failure, requests skip the store (and get the rule's on_store_error) this long,
    # so an outage costs no timeout per request; then the next request tries again.
    retry_seconds: float = Field(default=1, ge=0, le=60)
    max_connections: int = Field(default=64, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("expected a redis:// or rediss:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials: give the password as `password: {env: ...}`")
        return value


class ConcurrencyConfig(_Model):
    """Caps per subject (issuer + subject), counted in each gateway process."""

    max_in_flight: int | None = Field(
        default=None, ge=1, le=1_000_000, description="POSTs one subject may have open at once."
    )
    max_streams: int | None = Field(
        default=None, ge=1, le=1_000_000, description="GET (SSE) streams one subject may hold open."
    )


class QuotaConfig(_Model):
    store: Literal["memory", "redis"] = Field(
        default="memory", description="memory: per process; redis: shared, exact across replicas."
    )
    redis: RedisStoreConfig | None = None
    # Bounds the in-process store: keys may name attacker-chosen tools (docs/security.md).
    max_keys: int = Field(default=100_000, ge=16, le=10_000_000)
    rules: tuple[QuotaRule, ...] = Field(default=(), max_length=64)
    concurrency: ConcurrencyConfig = ConcurrencyConfig()

    @model_validator(mode="after")
    def _consistent(self) -> QuotaConfig:
        if self.store == "redis" and self.redis is None:
            raise ValueError("store 'redis' needs a `redis:` section with at least `url`")
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique: {', '.join(map(repr, repeated))}")
        return self

    @property
    def enabled(self) -> bool:
        caps = self.concurrency
        return bool(self.rules) or caps.max_in_flight is not None or caps.max_streams is not None
