"""Cedar policies beyond scopes (docs/policy.md): an optional second check in the one decision point.

    schema.py    the Cedar schema generated from the config (pure data)
    request.py   principal, action, resource, context and entities for one call (pure)
    policies.py  policy files: read, parsed, validated against the schema, named
    check.py     `CedarCheck`, the `CallCheck` that `ServerPolicy.decide` consults
    explain.py   why a call is allowed or refused (`mcp-bastion policy explain`)

The engine is cedarpy (the `[cedar]` extra). A config without policy files never imports it;
one with policy files and no cedarpy is refused at load with a hint to install the extra.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import LoadedConfig
from ..config.model import BastionConfig
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..policy.decide import CallCheck
    from ..policy.scopes import ScopeRegistry
    from .policies import LoadedPolicies

__all__ = ["base_folder", "has_policies", "policy_checks", "read_policies"]

INSTALL_HINT = "pip install 'mcp-bastion[cedar]'"


def has_policies(config: BastionConfig) -> bool:
    """Does any server run Cedar policies? (Without any, cedarpy is never imported.)"""
    return bool(config.policy.files) or any(server.policy_files for server in config.servers)


def base_folder(loaded_path: str | None) -> Path:
    """Where relative policy paths start: the config file's folder (the working folder for a
    config that came from no file)."""
    return Path(loaded_path).parent if loaded_path else Path()


def read_policies(config: BastionConfig, base: Path, source: str = "") -> LoadedPolicies:
    """Every policy file of `config`, parsed and validated (ConfigError otherwise). What
    `check-config`, `serve` and a reload call."""
    try:
        from .policies import load_policies
    except ModuleNotFoundError as exc:
        if exc.name != "cedarpy":
            raise
        raise ConfigError(
            "policy files are configured, and Cedar policies need the [cedar] extra (cedarpy is not installed)",
            source=source,
            path="policy.files" if config.policy.files else "servers",
            hint=INSTALL_HINT,
        ) from None
    return load_policies(config, base, source)


def policy_checks(
    loaded: LoadedConfig, registry: ScopeRegistry, clock: Callable[[], float]
) -> dict[str, tuple[CallCheck, ...]]:
    """The Cedar check of each server that has policies, by server name."""
    config = loaded.config
    if not has_policies(config):
        return {}
    policies = read_policies(config, base_folder(loaded.path), loaded.path or "")
    from .check import CedarCheck
    from .request import PrincipalAttributes

    principals = PrincipalAttributes(config.policy, registry)
    checks: dict[str, tuple[CallCheck, ...]] = {}
    for server in config.servers:
        bundle = policies.servers.get(server.name)
        if bundle is not None:
            checks[server.name] = (
                CedarCheck(
                    bundle,
                    server=server.name,
                    principals=principals,
                    trust_annotations=server.trust_annotations,
                    timezone=config.policy.timezone,
                    max_argument_bytes=config.policy.max_argument_bytes,
                    clock=clock,
                ),
            )
    return checks
