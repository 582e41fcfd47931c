"""The config reloader (`mcp_bastion.reload`) in process: what it swaps, what it refuses, what
it keeps. The real SIGHUP path through `serve` is in
tests/integration/test_serve_operations_subprocess.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mcp_bastion.config import LoadedConfig, load_config
from mcp_bastion.reload import ConfigReloader, with_process_keys
from mcp_bastion.server import ConnectionLimits, HttpServer

from .support.serve_process import write_config


class NoteApp:
    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not served in these tests")

    async def startup(self) -> None:
        self.events.append("startup")

    async def shutdown(self) -> None:
        self.events.append("shutdown")


def _config(tmp_path: Path, **listen: Any) -> Path:
    return write_config(
        tmp_path / "bastion.yaml",
        {
            "public_base_url": "http://127.0.0.1:8000",
            "listen": {"port": 8000, **listen},
            "audit": {"sink": "none"},
            "servers": [{"name": "a", "upstream": "http://127.0.0.1:9/mcp", "auth": False}],
        },
    )


def _reloader(path: Path, build: Any) -> tuple[ConfigReloader, HttpServer, NoteApp]:
    first = NoteApp("first")
    server = HttpServer(first, ConnectionLimits())
    loaded = with_process_keys(load_config(path))
    return ConfigReloader(server, loaded, build), server, first


async def test_a_good_file_replaces_the_app_and_retires_the_old_one(tmp_path: Path) -> None:
    path = _config(tmp_path)
    built: list[LoadedConfig] = []

    def build(loaded: LoadedConfig) -> NoteApp:
        built.append(loaded)
        return NoteApp("second")

    reloader, server, first = _reloader(path, build)
    assert await reloader.reload()
    await reloader.close()
    assert isinstance(server.app, NoteApp)
    assert server.app.name == "second"
    assert server.app.events == ["startup"]
    assert first.events == ["shutdown"]
    assert reloader.reloads == 1


async def test_an_unexpected_failure_building_the_app_is_a_refused_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def build(loaded: LoadedConfig) -> NoteApp:
        raise RuntimeError("a bug")

    reloader, server, first = _reloader(_config(tmp_path), build)
    with caplog.at_level(logging.ERROR, logger="mcp_bastion"):
        assert not await reloader.reload()
    assert "reload refused, still serving the previous config: unexpected failure" in caplog.text
    assert server.app is first
    assert first.events == []


async def test_listen_changes_wait_for_a_restart_and_process_keys_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _config(tmp_path)
    built: list[LoadedConfig] = []
    reloader, _, _ = _reloader(path, lambda loaded: built.append(loaded) or NoteApp("n"))
    before = reloader._loaded.secrets
    _config(tmp_path, host="0.0.0.0", workers=4)
    with caplog.at_level(logging.WARNING, logger="mcp_bastion"):
        assert await reloader.reload()
    await reloader.close()
    (loaded,) = built
    assert (loaded.config.listen.host, loaded.config.listen.workers) == ("127.0.0.1", 1)
    assert "take effect at the next restart" in caplog.text
    assert loaded.secrets["sessions.key"] == before["sessions.key"]
    assert loaded.secrets["signing.key"] == before["signing.key"]


async def test_a_reload_is_refused_while_the_server_drains(tmp_path: Path) -> None:
    reloader, server, first = _reloader(_config(tmp_path), lambda loaded: NoteApp("n"))
    server.draining.set()
    assert not await reloader.reload()
    assert server.app is first
