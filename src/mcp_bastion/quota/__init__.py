"""Quotas (docs/quotas.md): rate rules per verified identity (GCRA), concurrency caps per
subject, in this process or in Redis/Valkey shared by replicas.

The seam is `QuotaStore` (`store.py`): `take(asks)` admits a whole request or refuses it.
`build.build_quotas` turns the config into what `build_gateway` wraps `Forward` with (not
imported here: the config model imports this package's `config`).
"""

from __future__ import annotations

from .config import QuotaConfig, QuotaRule
from .store import Ask, MemoryStore, QuotaStore, Refusal, StoreUnavailable

__all__ = ["Ask", "MemoryStore", "QuotaConfig", "QuotaRule", "QuotaStore", "Refusal", "StoreUnavailable"]
