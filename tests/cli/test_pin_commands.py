"""`mcp-bastion pin` and `mcp-bastion pin diff` as a user runs them, against a real upstream."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ..support.recording_upstream import TOOLS, RecordingUpstream
from ..support.servers import serve_asgi
from .test_registry_commands import run_cli


def write_config(tmp_path: Path, upstream: str, **pinning: str) -> Path:
    path = tmp_path / "bastion.yaml"
    lines = [
        "public_base_url: https://mcp.example.com",
        "identity_providers:",
        "  - name: idp",
        "    issuer: https://idp.example",
        "servers:",
        "  - name: rec",
        f"    upstream: {upstream}",
        "    upstream_auth: {type: none}",
        f"    pinning: {json.dumps(pinning)}",
        "  - name: other",
        f"    upstream: {upstream}",
        "    upstream_auth: {type: none}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pin_writes_the_lockfile_and_diff_shows_a_rug_pull(tmp_path: Path) -> None:
    upstream = RecordingUpstream(tools=copy.deepcopy(TOOLS))
    lockfile = tmp_path / "bastion.lock.json"
    with serve_asgi(upstream) as server:
        config = write_config(tmp_path, f"{server.base_url}/mcp", mode="enforce", lockfile=str(lockfile))
        done = run_cli("pin", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert f"rec: {len(TOOLS)} tools pinned in {lockfile} (first pins for this server)" in done.stdout
        assert set(json.loads(lockfile.read_text())["servers"]["rec"]["tools"]) == {t["name"] for t in TOOLS}

        same = run_cli("pin", "diff", "--config", str(config))
        assert same.returncode == 0, same.stdout + same.stderr
        assert "no changes" in same.stdout

        assert isinstance(upstream.tools, list)
        upstream.tools[1]["inputSchema"] = {"type": "object", "properties": {"bcc": {"type": "string"}}}
        pulled = run_cli("pin", "diff", "--config", str(config), "rec")
        assert pulled.returncode == 1
        assert "changed write_thing (inputSchema)" in pulled.stdout
        assert '+    "bcc": {' in pulled.stdout
        as_json = json.loads(run_cli("pin", "diff", "--config", str(config), "--format", "json").stdout)
        assert as_json["servers"][0]["tools"][0]["fields"] == ["inputSchema"]

        approved = run_cli("pin", "--config", str(config), "rec")
        assert approved.returncode == 0
        assert "changed write_thing (inputSchema)" in approved.stdout
        assert run_cli("pin", "diff", "--config", str(config)).returncode == 0


def test_a_server_without_a_lockfile_cannot_be_pinned(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/mcp", mode="record")
    done = run_cli("pin", "--config", str(config), "rec")
    assert done.returncode == 1
    assert "servers[0].pinning.lockfile: is not set" in done.stderr
    nothing = run_cli("pin", "--config", str(config))
    assert "no server has pinning.lockfile set" in nothing.stderr


def test_an_upstream_that_cannot_be_listed_keeps_its_old_pins(tmp_path: Path) -> None:
    lockfile = tmp_path / "bastion.lock.json"
    with serve_asgi(RecordingUpstream()) as server:
        config = write_config(tmp_path, f"{server.base_url}/mcp", mode="record", lockfile=str(lockfile))
        assert run_cli("pin", "--config", str(config)).returncode == 0
    before = lockfile.read_text()
    done = run_cli("pin", "--config", str(config), "--timeout", "2")  # the upstream is gone
    assert done.returncode == 1
    assert "rec: not pinned:" in done.stdout
    assert lockfile.read_text() == before


def test_check_config_reads_the_lockfile_serve_would_read(tmp_path: Path) -> None:
    lockfile = tmp_path / "missing.lock.json"
    config = write_config(tmp_path, "http://127.0.0.1:9/mcp", mode="enforce", lockfile=str(lockfile))
    done = run_cli("check-config", str(config))
    assert done.returncode == 1
    assert f"servers[0].pinning.lockfile: no lockfile at '{lockfile}'" in done.stderr
    assert "mcp-bastion pin --config FILE" in done.stderr
    assert run_cli("check-config", "--skip-secrets", str(config)).returncode == 0


def test_pin_help_names_both_actions() -> None:
    done = run_cli("pin", "--help")
    assert done.returncode == 0
    assert "mcp-bastion pin diff --config FILE [SERVER]" in done.stdout
    assert "docs/pinning.md" in done.stdout


def test_a_relative_lockfile_lives_beside_the_config(tmp_path: Path) -> None:
    # Reviewed together, like the policy files: not wherever the command happens to run.
    with serve_asgi(RecordingUpstream()) as server:
        config = write_config(
            tmp_path, f"{server.base_url}/mcp", mode="enforce", lockfile="bastion.lock.json"
        )
        done = run_cli("pin", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "bastion.lock.json").is_file()
        assert not Path("bastion.lock.json").exists()
        assert run_cli("check-config", str(config)).returncode == 0
        assert run_cli("pin", "diff", "--config", str(config)).returncode == 0
