"""`explain_call`: the gateway's own decision, explained; and the optional engine."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import MemorySink
from mcp_bastion.cedar.check import CedarCheck
from mcp_bastion.cedar.explain import explain_call, server_policy
from mcp_bastion.config import LoadedConfig, load_config, parse_config
from mcp_bastion.errors import ConfigError
from mcp_bastion.policy.scopes import ScopeRegistry

from .build import BASELINE, DESTRUCTIVE, EXAMPLES, config_data

MONDAY_NOON = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.UTC)


def test_explain_uses_the_policy_the_gateway_builds(tmp_path: Path) -> None:
    loaded = load_config(EXAMPLES / "bastion.yaml", read_secrets=False)
    gateway = build_gateway(loaded, audit=MemorySink())
    registry = ScopeRegistry.from_config(loaded.config.scopes)
    for route, server in zip(gateway.routes.values(), loaded.config.servers, strict=True):
        ours = server_policy(loaded.config, server, registry, route.policy.checks)
        assert ours == route.policy
        assert [type(c) for c in route.policy.checks] == [CedarCheck]
        assert [s.id for s in route.policy.checks[0].bundle.sources][:1] == ["after-scopes"]  # type: ignore[attr-defined]


def test_explain_reports_the_forbid_that_decided_and_hides_the_tool(tmp_path: Path) -> None:
    loaded = LoadedConfig(parse_config(config_data(tmp_path, BASELINE, DESTRUCTIVE)), {})
    explanation = explain_call(
        loaded,
        claims={"sub": "dan", "scope": "tools.write", "groups": ["dev"]},
        message={"method": "tools/call", "params": {"name": "drop", "arguments": {}}},
        annotations={"destructiveHint": True},
        at=MONDAY_NOON,
    )
    assert (explanation.decision.allowed, explanation.decision.rules) == (False, ("destructive-needs-ops",))
    assert [(r.source.id, r.matched) for r in explanation.rules] == [
        ("after-scopes", True),
        ("destructive-needs-ops", True),
    ]
    assert (explanation.listed, explanation.hidden_by) == (False, ("destructive-needs-ops",))
    assert explanation.document()["scopes"] == {
        "required": ["tools.write"],
        "granted": ["tools.read", "tools.write"],
        "missing": [],
    }


def test_explain_without_policies_is_scopes_alone(tmp_path: Path) -> None:
    data = config_data(tmp_path)
    del data["policy"]
    explanation = explain_call(
        LoadedConfig(parse_config(data), {}),
        claims={"sub": "dan", "scope": "tools.read"},
        message={"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "drop"}},
    )
    assert (explanation.cedar, explanation.decision.missing, explanation.listed) == (
        "off",
        ("tools.write",),
        True,
    )


def test_explain_refuses_what_is_not_a_request(tmp_path: Path) -> None:
    loaded = LoadedConfig(parse_config(config_data(tmp_path, BASELINE)), {})
    with pytest.raises(ConfigError, match="must be a JSON-RPC request"):
        explain_call(loaded, claims={"sub": "a"}, message={"id": 1, "result": {}})
    with pytest.raises(ConfigError, match="not one the gateway would decide: Invalid params"):
        explain_call(loaded, claims={"sub": "a"}, message={"method": "tools/call", "params": 5})


def test_a_config_without_policies_never_imports_cedar() -> None:
    code = (
        "import sys; from mcp_bastion.app import build_gateway; from mcp_bastion.config import LoadedConfig, "
        "parse_config; from mcp_bastion.audit import MemorySink\n"
        "config = parse_config({'public_base_url': 'https://gw.example', 'identity_providers': "
        "[{'name': 'c', 'issuer': 'https://idp.example'}], 'servers': [{'name': 'a', 'upstream': 'http://u/mcp'}]})\n"
        "build_gateway(LoadedConfig(config, {}), audit=MemorySink())\n"
        "print('cedarpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_policies_without_the_cedar_extra_are_refused_with_a_hint() -> None:
    # As if cedarpy were not installed: the config is refused at load, saying what to install.
    code = (
        "import sys; sys.modules['cedarpy'] = None\n"
        "from mcp_bastion.config import load_config\n"
        "from mcp_bastion.errors import ConfigError\n"
        f"try: load_config({str(EXAMPLES / 'bastion.yaml')!r}, read_secrets=False)\n"
        "except ConfigError as e: print(e.message); print(e.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert (
        "policy.files: policy files are configured, and Cedar policies need the [cedar] extra" in out.stdout
    )
    assert "pip install 'mcp-bastion[cedar]'" in out.stdout
