"""Start-up: every server's pins from the lockfile its config names, or an error naming the
config key or the lockfile key, before the gateway serves anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import NullSink
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.errors import ConfigError
from mcp_bastion.pinning.lockfile import write_lockfile
from mcp_bastion.pinning.pins import sighting_of
from mcp_bastion.pinning.store import PinCheck

TOOL = {"name": "send_email", "inputSchema": {"type": "object"}}


def loaded(*servers: dict[str, Any]) -> LoadedConfig:
    config = parse_config(
        {
            "public_base_url": "https://gw.example",
            "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
            "servers": [{"upstream": "http://127.0.0.1:9/mcp", **s} for s in servers],
        }
    )
    return LoadedConfig(config, {}, "bastion.yaml")


def lockfile(tmp_path: Path, *servers: str) -> str:
    path = str(tmp_path / "bastion.lock.json")
    write_lockfile(path, {name: {TOOL["name"]: sighting_of(TOOL)} for name in servers})
    return path


def test_servers_sharing_a_lockfile_each_get_their_own_pins(tmp_path: Path) -> None:
    path = lockfile(tmp_path, "mail", "db")
    gateway = build_gateway(
        loaded(
            {"name": "mail", "pinning": {"mode": "enforce", "lockfile": path}},
            {"name": "db", "pinning": {"mode": "record", "lockfile": path}},
            {"name": "free"},
        ),
        audit=NullSink(),
    )
    routes = {route.name: route for route in gateway.routes.values()}
    assert routes["mail"].pins.pin("send_email") is not None
    assert [type(c) for c in routes["mail"].policy.checks] == [PinCheck]
    assert routes["db"].pins.from_lockfile
    assert routes["db"].policy.checks == ()
    assert routes["free"].pins.mode == "record"
    assert routes["free"].pins.pin("send_email") is None


def test_a_missing_lockfile_names_the_config_key(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(ConfigError) as caught:
        build_gateway(loaded({"name": "mail", "pinning": {"mode": "enforce", "lockfile": missing}}))
    assert (caught.value.source, caught.value.path) == ("bastion.yaml", "servers[0].pinning.lockfile")
    assert "mcp-bastion pin" in caught.value.hint


def test_a_lockfile_without_the_server_names_the_config_key(tmp_path: Path) -> None:
    path = lockfile(tmp_path, "db")
    with pytest.raises(ConfigError, match="holds no pins for server 'mail'") as caught:
        build_gateway(loaded({"name": "mail", "pinning": {"mode": "record", "lockfile": path}}))
    assert caught.value.path == "servers[0].pinning.lockfile"


def test_a_tampered_lockfile_names_its_own_key(tmp_path: Path) -> None:
    path = lockfile(tmp_path, "mail")
    Path(path).write_text(Path(path).read_text().replace('"type": "object"', '"type": "string"'))
    with pytest.raises(ConfigError) as caught:
        build_gateway(loaded({"name": "mail", "pinning": {"mode": "enforce", "lockfile": path}}))
    assert (caught.value.source, caught.value.path) == (path, "servers.mail.tools.send_email.digest")


def test_a_relative_lockfile_starts_at_the_config_files_folder(tmp_path: Path) -> None:
    lockfile(tmp_path, "mail")
    base = loaded({"name": "mail", "pinning": {"mode": "enforce", "lockfile": "bastion.lock.json"}})
    elsewhere = LoadedConfig(base.config, {}, str(tmp_path / "bastion.yaml"))
    gateway = build_gateway(elsewhere, audit=NullSink())
    assert next(iter(gateway.routes.values())).pins.pin("send_email") is not None
    with pytest.raises(ConfigError, match=r"no lockfile at 'bastion\.lock\.json'"):
        build_gateway(base)  # its config path is bastion.yaml: the working folder, which has none
