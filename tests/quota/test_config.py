"""The `quotas:` config: refusals that say what was wrong."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.errors import ConfigError
from mcp_bastion.quota.build import build_quotas


def config(quotas: dict[str, Any]) -> dict[str, Any]:
    return {
        "public_base_url": "https://mcp.example.com",
        "servers": [{"name": "srv", "upstream": "http://127.0.0.1:9/mcp", "auth": False}],
        "quotas": quotas,
    }


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ({"store": "redis"}, "store 'redis' needs a `redis:` section"),
        ({"redis": {"url": "redis://:hunter2@127.0.0.1:6379"}}, "must not carry credentials"),
        ({"redis": {"url": "http://127.0.0.1:6379"}}, "expected a redis:// or rediss:// URL"),
        ({"rules": [{"name": "a", "rate": 1, "key": []}]}, "at least 1 item"),
        ({"rules": [{"name": "a", "rate": 1, "key": ["subject", "subject"]}]}, "listed twice"),
        (
            {"rules": [{"name": "a", "rate": 1, "key": ["x-user-id"]}]},
            "'subject', 'client', 'server' or 'tool'",
        ),
        ({"rules": [{"name": "a", "rate": 1, "key": ["subject"]}] * 2}, "rule names must be unique"),
        ({"rules": [{"name": "a", "rate": 0, "key": ["subject"]}]}, "must be more than 0, found 0"),
        (
            {
                "rules": [
                    {"name": "a", "rate": 0.001, "per_seconds": 86400, "burst": 100000, "key": ["subject"]}
                ]
            },
            "35 years",
        ),
    ],
)
def test_bad_quota_settings_are_refused(quotas: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(quotas))
    assert message in caught.value.message
    assert "hunter2" not in caught.value.message  # a password written in a URL is never echoed


def test_a_header_can_never_be_a_key_part() -> None:
    # The key is verified identity only: a header is whatever the caller wants it to be.
    with pytest.raises(ConfigError):
        parse_config(config({"rules": [{"name": "a", "rate": 1, "key": ["header:x-forwarded-for"]}]}))


def test_a_rule_naming_an_unknown_server_is_refused_at_build() -> None:
    loaded = LoadedConfig(
        parse_config(config({"rules": [{"name": "a", "rate": 1, "key": ["subject"], "servers": ["nope"]}]})),
        {},
    )
    with pytest.raises(ConfigError) as caught:
        build_quotas(loaded, [])
    assert caught.value.path == "quotas.rules[0].servers"
    assert "'nope'" in caught.value.message


def test_defaults_fail_closed_and_burst_follows_rate() -> None:
    parsed = parse_config(config({"rules": [{"name": "a", "rate": 2.5, "key": ["subject"]}]}))
    rule = parsed.quotas.rules[0]
    assert (rule.on_store_error, rule.capacity, rule.interval_us) == ("closed", 2, 400_000)
    assert parsed.quotas.store == "memory"


def test_no_quotas_means_no_stage() -> None:
    loaded = LoadedConfig(parse_config(config({})), {})
    quotas = build_quotas(loaded, [])

    async def forward(ex: Any) -> None: ...

    assert quotas.around(forward) is forward
