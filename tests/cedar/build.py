"""Cedar checks for the tests: policy text in, a `CedarCheck` out (through the real loader)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mcp_bastion.auth.principal import Principal
from mcp_bastion.cedar import policy_checks
from mcp_bastion.cedar.check import CedarCheck
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.mcp.calls import Call
from mcp_bastion.policy.decide import ToolAnnotations
from mcp_bastion.policy.scopes import ScopeRegistry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
BASELINE = (EXAMPLES / "baseline.cedar").read_text()
DESTRUCTIVE = (EXAMPLES / "destructive-needs-group.cedar").read_text()
PATH_PREFIX = (EXAMPLES / "path-under-prefix.cedar").read_text()
AFTER_HOURS = (EXAMPLES / "read-only-after-hours.cedar").read_text()

# Monday 2026-01-05, 10:00 and 20:00 UTC; Saturday 2026-01-10, 10:00 UTC.
MONDAY_10 = 1767607200.0
MONDAY_20 = MONDAY_10 + 10 * 3600
SATURDAY_10 = MONDAY_10 + 5 * 86400

READ_ONLY = ToolAnnotations(read_only=True, destructive=False)
WRITES = ToolAnnotations(read_only=False, destructive=False)
DESTROYS = ToolAnnotations(read_only=False, destructive=True)


def config_data(tmp_path: Path, *texts: str, server: str = "files", **extra: Any) -> dict[str, Any]:
    files = []
    for i, text in enumerate(texts):
        path = tmp_path / f"p{i}.cedar"
        path.write_text(text)
        files.append(str(path))
    data: dict[str, Any] = {
        "public_base_url": "https://gw.example",
        "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
        "servers": [{"name": server, "upstream": "http://127.0.0.1:9/mcp", **extra.pop("server_extra", {})}],
        "policy": {"files": files, **extra},
    }
    return data


def make_check(
    tmp_path: Path,
    *texts: str,
    clock: Callable[[], float] = lambda: MONDAY_10,
    server: str = "files",
    **extra: Any,
) -> CedarCheck:
    config = parse_config(config_data(tmp_path, *texts, server=server, **extra))
    checks = policy_checks(LoadedConfig(config, {}), ScopeRegistry.from_config(config.scopes), clock)
    check = checks[server][0]
    assert isinstance(check, CedarCheck)
    return check


def person(
    subject: str = "alice",
    *,
    client: str | None = "cli",
    scopes: frozenset[str] = frozenset({"tools.write"}),
    **claims: Any,
) -> Principal:
    return Principal(subject, "https://idp.example", client, scopes, "h" * 32, 0.0, claims=claims)


def tool_call(name: str, arguments: Mapping[str, Any] | None = None, **params: Any) -> Call:
    body: dict[str, Any] = {"name": name, **params}
    if arguments is not None:
        body["arguments"] = arguments
    return Call("tools/call", name, 1, body)


def listed(name: str) -> Call:
    """The question the tools/list filter asks about one tool: a call without params."""
    return Call("tools/call", name, None)
