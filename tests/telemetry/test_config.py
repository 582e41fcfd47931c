"""The `telemetry:` section: off by default, and refusals that name the key."""

from __future__ import annotations

import pytest

from mcp_bastion.config import parse_config
from mcp_bastion.errors import ConfigError
from mcp_bastion.telemetry import telemetry_for

BASE = {
    "public_base_url": "https://gw.example",
    "servers": [{"name": "a", "upstream": "https://up.example/mcp", "auth": False}],
}


def test_telemetry_is_off_by_default_and_then_nothing_is_built() -> None:
    config = parse_config(BASE)
    assert config.telemetry.metrics.enabled is False
    assert config.telemetry.traces.enabled is False
    assert telemetry_for(config.telemetry) is None


def test_an_endpoint_with_credentials_is_refused() -> None:
    traces = {"enabled": True, "endpoint": "https://user:secret@collector.example/v1/traces"}
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "telemetry": {"traces": traces}})
    assert "telemetry.traces.endpoint" in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"traces": {"sample_ratio": 1.5}}, "telemetry.traces.sample_ratio"),
        ({"traces": {"endpoint": "grpc://collector:4317"}}, "telemetry.traces.endpoint"),
        ({"metrics": {"port": 70000}}, "telemetry.metrics.port"),
        ({"metrics": {"enable": True}}, "telemetry.metrics.enable"),
        ({"readiness": {"cache_seconds": 0}}, "telemetry.readiness.cache_seconds"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_key(section: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "telemetry": section})
    assert key in str(caught.value)
