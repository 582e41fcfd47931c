"""The facade's configuration: openid required, the client secret read by reference."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from mcp_bastion.config import parse_config
from mcp_bastion.config.checks import config_warnings
from mcp_bastion.config.load import load_config
from mcp_bastion.errors import ConfigError


def _config(**facade: Any) -> dict[str, Any]:
    return {
        "public_base_url": "https://gw.example.com",
        "identity_providers": [
            {
                "name": "entra",
                "issuer": "https://login.example.com/tenant/v2.0",
                "facade": {"client_id": "app-1", "client_secret": {"env": "FACADE_SECRET"}, **facade},
            }
        ],
        "servers": [{"name": "notes", "upstream": "https://notes.internal.example/mcp"}],
    }


def test_scopes_must_include_openid() -> None:
    with pytest.raises(ConfigError, match="openid"):
        parse_config(_config(scopes=["profile"]))


def test_the_client_secret_is_read_from_its_reference(tmp_path: Any) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text(yaml.safe_dump(_config()), encoding="utf-8")
    loaded = load_config(path, environ={"FACADE_SECRET": "s3cret"})
    assert loaded.secret("identity_providers[0].facade.client_secret") == "s3cret"
    with pytest.raises(ConfigError, match="FACADE_SECRET"):
        load_config(path, environ={})


def test_a_facade_with_several_workers_is_warned_about() -> None:
    config = parse_config(_config())
    assert not [w for w in config_warnings(config, workers=1) if "facade" in str(w)]
    [warning] = [w for w in config_warnings(config, workers=3) if "facade" in str(w)]
    assert str(warning).startswith("identity_providers[0].facade: with 3 workers")


def test_a_facade_with_a_shared_store_is_not_warned_about_workers(tmp_path: Any) -> None:
    redis = {"url": "redis://valkey.internal:6379/0", "password": {"env": "VALKEY_PASSWORD"}}
    config = parse_config(_config(state={"store": "redis", "redis": redis}))
    assert not [w for w in config_warnings(config, workers=3) if "facade" in str(w)]
    path = tmp_path / "bastion.yaml"
    path.write_text(yaml.safe_dump(_config(state={"store": "redis", "redis": redis})), encoding="utf-8")
    loaded = load_config(path, environ={"FACADE_SECRET": "s", "VALKEY_PASSWORD": "pw"})
    assert loaded.secret("identity_providers[0].facade.state.redis.password") == "pw"


def test_a_redis_store_needs_its_redis_section() -> None:
    with pytest.raises(ConfigError, match="needs a `redis:` section"):
        parse_config(_config(state={"store": "redis"}))


def test_a_facade_without_the_facade_extra_is_refused_naming_it() -> None:
    # A fresh interpreter where Starlette cannot be imported: a production install without the
    # [facade] extra. A gateway with a facade is refused at build time, naming the extra.
    code = f"""
import sys
sys.modules["starlette"] = None
from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.errors import ConfigError
config = parse_config({_config()!r})
try:
    build_gateway(LoadedConfig(config, {{"identity_providers[0].facade.client_secret": "s"}}))
except ConfigError as exc:
    print(exc.message, "|", exc.hint)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == (
        "identity_providers[0].facade: a facade is configured, and it needs the [facade] extra "
        "(starlette is not installed) | pip install 'mcp-bastion[facade]'"
    )


def test_an_unreadable_cimd_ca_file_is_refused_at_start(tmp_path: Any) -> None:
    from mcp_bastion.config import LoadedConfig
    from mcp_bastion.facade import build_facade

    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate", encoding="utf-8")
    for path in (bogus, tmp_path / "missing.pem"):
        config = parse_config(_config(cimd={"ca_file": str(path)}))
        loaded = LoadedConfig(config, {"identity_providers[0].facade.client_secret": "s"})
        with pytest.raises(ConfigError, match="CA bundle"):
            build_facade(loaded, 0, {"https://gw.example.com/notes/mcp": ("a",)}, lambda: 0.0)
