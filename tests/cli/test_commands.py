"""The `mcp-bastion` command as a user runs it: exit codes, one-line errors, a real `serve`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mcp_bastion.config import config_json_schema

from ..support.servers import bind_loopback

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_bastion.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_check_config_accepts_the_example() -> None:
    result = run_cli("check-config", "--skip-secrets", str(EXAMPLES / "bastion.yaml"))
    assert result.returncode == 0, result.stderr
    assert "server github: https://mcp.example.com/github/mcp" in result.stdout


def test_check_config_names_file_and_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("public_base_url: https://x.example\nservers:\n  - name: a\n    upstream: ftp://x\n")
    result = run_cli("check-config", str(bad))
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[0]
        == f"mcp-bastion: error: {bad}: servers[0].upstream: must be an http(s) URL with a host"
    )
    assert "Traceback" not in result.stderr


def test_check_config_missing_secret_says_which(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "public_base_url: https://x.example\nservers:\n  - name: a\n    upstream: http://u.example/mcp\n    auth: false\n"
        "    upstream_auth: {type: static, secret: {env: MCP_BASTION_TEST_UNSET_VAR}}\n"
    )
    result = run_cli("check-config", str(config))
    assert result.returncode == 1
    assert (
        "servers[0].upstream_auth.secret: environment variable MCP_BASTION_TEST_UNSET_VAR is not set"
        in result.stderr
    )


def test_missing_file_is_one_line() -> None:
    result = run_cli("check-config", "/nonexistent/bastion.yaml")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) <= 2
    assert "cannot read the file" in result.stderr


def test_schema_command_prints_the_committed_schema() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == config_json_schema()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_on_the_configured_port(tmp_path: Path, workers: int) -> None:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()  # the port is free again for serve to bind (loopback, ephemeral range)
    config = tmp_path / "bastion.yaml"
    config.write_text(
        f"public_base_url: http://127.0.0.1:{port}\nlisten: {{port: {port}}}\naudit: {{sink: none}}\n"
        "servers:\n  - name: demo\n    upstream: http://127.0.0.1:9/mcp\n    auth: false\n"
    )
    command = [
        sys.executable,
        "-m",
        "mcp_bastion.cli",
        "serve",
        "--config",
        str(config),
        "--workers",
        str(workers),
    ]
    log = tmp_path / "serve.log"
    with (
        log.open("w") as stderr,
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr) as process,
    ):
        try:
            url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/demo/mcp"
            body = _wait_for(url, process, log)
            assert body["resource"] == f"http://127.0.0.1:{port}/demo/mcp"
            process.terminate()  # SIGTERM: a graceful stop, workers included
            assert process.wait(timeout=15) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=15)


def _wait_for(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 20
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early: {log.read_text()}")
            try:
                return dict(http.get(url).json())
            except httpx.TransportError:
                time.sleep(0.05)  # polling a subprocess's port: there is no event to wait on
    raise AssertionError("serve did not answer in time")
