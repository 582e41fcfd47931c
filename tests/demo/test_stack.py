"""The demo beside a `serve` config (--serve-config): which sample servers it places, whom it trusts.

That the development IdP then issues tokens for the config's resources is shown end to end in
tests/e2e/test_dev_config.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bastion.config import parse_config
from mcp_bastion.demo.stack import DemoOptions, build_demo_stack, sample_upstream_ports
from mcp_bastion.errors import ConfigError

ISSUER = "http://127.0.0.1:8000/idp"
SAMPLES = {"demo": "http://127.0.0.1:1/mcp", "notes": "http://127.0.0.1:2/mcp"}


def serve_config(servers: dict[str, str], issuer: str = ISSUER) -> Any:
    return parse_config(
        {
            "public_base_url": "http://127.0.0.1:8001",
            "identity_providers": [{"name": "devidp", "issuer": issuer, "allow_insecure_http": True}],
            "servers": [{"name": name, "upstream": url} for name, url in servers.items()],
        }
    )


def test_only_loopback_mcp_upstreams_named_after_a_sample_are_placed() -> None:
    config = serve_config(
        {
            "demo": "http://127.0.0.1:9001/mcp",
            "notes": "http://localhost:9002/mcp",
            "mine": "http://127.0.0.1:9003/mcp",  # not a sample's name: the user's own server
        }
    )
    elsewhere = serve_config({"demo": "http://10.0.0.5:9001/mcp", "notes": "http://127.0.0.1:9002/other"})

    assert sample_upstream_ports(config) == {"demo": 9001, "notes": 9002}
    assert sample_upstream_ports(elsewhere) == {}
    assert sample_upstream_ports(None) == {}


def test_a_serve_config_that_trusts_another_issuer_is_refused() -> None:
    options = DemoOptions(
        serve_config=serve_config({"demo": "http://127.0.0.1:9001/mcp"}, "http://127.0.0.1:7/idp")
    )

    with pytest.raises(ConfigError) as caught:
        build_demo_stack(options, SAMPLES, port=8000)

    assert caught.value.message == (
        "the --serve-config file does not trust this demo's development IdP (http://127.0.0.1:8000/idp)"
    )
    assert (
        caught.value.hint
        == "give it an identity provider with issuer: http://127.0.0.1:8000/idp (see examples/dev.yaml)"
    )
