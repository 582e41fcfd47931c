"""Building the gateway from config: bad key material is a config error naming its key."""

from __future__ import annotations

import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.errors import ConfigError

BASE = {
    "public_base_url": "https://gw.example",
    "servers": [{"name": "a", "upstream": "http://u.example/mcp", "auth": False}],
    "sessions": {"key": {"env": "K"}},
    "signing": {"key": {"env": "S"}},
}


@pytest.mark.parametrize(
    ("secrets", "path"),
    [
        ({"sessions.key": "dG9vIHNob3J0"}, "sessions.key"),
        ({"sessions.key": "not base64 at all!"}, "sessions.key"),
        (
            {"signing.key": '{"kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'},
            "signing.key",
        ),
        ({"signing.key": "not a jwk"}, "signing.key"),
    ],
)
def test_bad_key_material_names_the_key(secrets: dict[str, str], path: str) -> None:
    config = parse_config(BASE)
    with pytest.raises(ConfigError) as caught:
        build_gateway(LoadedConfig(config, secrets, "bastion.yaml"))
    assert caught.value.path == path
    assert str(caught.value).startswith(f"bastion.yaml: {path}: ")
