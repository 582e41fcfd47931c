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


# --- issue 9: what a new user reads and runs -----------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SESSION_KEY = "c2hvcnQ="  # base64 of 5 bytes: a session key that cannot seal


def _auth_off_config(tmp_path: Path, port: int, extra: str = "") -> Path:
    config = tmp_path / "bastion.yaml"
    config.write_text(
        f"public_base_url: http://127.0.0.1:{port}\nlisten: {{port: {port}}}\naudit: {{sink: none}}\n"
        "servers:\n  - name: demo\n    upstream: http://127.0.0.1:9/mcp\n    auth: false\n" + extra
    )
    return config


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr  # the error, then at most one hint
    assert lines[-1].startswith("  hint: ") or len(lines) == 1
    return lines[0]


@pytest.mark.parametrize(
    ("args", "found"),
    [
        (["--port", "99999"], "found 99999"),
        (["--port=-1"], "found -1"),
        (["--port", "-1"], "found -1"),
        (["--port", "abc"], "found 'abc'"),
        (["--port", "80.5"], "found '80.5'"),
    ],
)
def test_a_bad_demo_port_is_one_line_without_traceback(args: list[str], found: str) -> None:
    # Before: `demo --port 99999` ended in an OverflowError traceback from bind().
    result = run_cli("demo", *args)
    assert result.returncode == 2
    assert _one_line_error(result) == (
        f"mcp-bastion demo: error: argument --port: expected a port number from 0 to 65535, {found}"
    )


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_a_bad_workers_count_is_one_line(value: str) -> None:
    result = run_cli("serve", "--config", "unused.yaml", "--workers", value)
    assert result.returncode == 2
    assert "argument --workers: expected a number of processes from 1 to 64" in _one_line_error(result)


def test_help_is_self_sufficient() -> None:
    # An installed user has no docs/ folder: the help itself says what each option does and
    # where the documentation lives.
    from mcp_bastion.config import CONFIG_REFERENCE_URL, REPOSITORY_URL

    top = run_cli("--help").stdout
    assert REPOSITORY_URL in top
    assert CONFIG_REFERENCE_URL in top
    demo = " ".join(run_cli("demo", "--help").stdout.split())
    assert "0 picks a free port" in demo
    assert "(default: 8000)" in demo
    serve = " ".join(run_cli("serve", "--help").stdout.split())
    assert CONFIG_REFERENCE_URL in serve
    assert "every check check-config runs" in serve
    check = " ".join(run_cli("check-config", "--help").stdout.split())
    assert CONFIG_REFERENCE_URL in check
    assert "--skip-secrets check the file alone" in check
    assert "exit status: 0 valid" in check
    for text in (top, demo, serve, check):
        assert "docs/config.md" not in text.replace(CONFIG_REFERENCE_URL, "")


def test_project_urls_are_published_and_match_the_hints() -> None:
    import tomllib

    from mcp_bastion.config import CONFIG_REFERENCE_URL, REPOSITORY_URL

    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Homepage"] == REPOSITORY_URL
    assert urls["Issues"] == f"{REPOSITORY_URL}/issues"
    assert CONFIG_REFERENCE_URL.startswith(urls["Documentation"])


def test_the_example_header_commands_work_as_written() -> None:
    # Before: the header said `mcp-bastion check-config examples/bastion.yaml`, which fails on
    # any machine without the example's secrets.
    header = []
    for line in (EXAMPLES / "bastion.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    commands = [line.removeprefix("#").strip() for line in header if line.startswith("#   mcp-bastion ")]
    assert commands
    for command in commands:
        args = command.split()[1:]
        result = subprocess.run(
            [sys.executable, "-m", "mcp_bastion.cli", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, (command, result.stderr)


def test_check_config_prints_warnings_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "public_base_url: http://gw.example\n"
        "identity_providers: [{name: corp, issuer: 'https://idp.example'}]\n"
        "servers:\n  - name: a\n    upstream: http://u.example/mcp\n    tools: {open_door: {scopes: []}}\n"
    )
    result = run_cli("check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{config}: valid, secrets checked, 3 warnings (on stderr)"
    warnings = result.stderr.splitlines()
    assert warnings[0].startswith(
        f"mcp-bastion: warning: {config}: public_base_url: plain http on a non-loopback"
    )
    assert warnings[1] == (
        f"mcp-bastion: warning: {config}: servers[0].tools.open_door.scopes: empty: any caller with a valid "
        "token may call tool 'open_door'; list the scopes it needs"
    )
    assert warnings[2].startswith(f"mcp-bastion: warning: {config}: sessions.key: not set")
    # --json keeps stdout machine-readable: the warnings stay on stderr.
    as_json = run_cli("check-config", "--json", str(config))
    assert json.loads(as_json.stdout)["servers"][0]["name"] == "a"
    assert as_json.stderr == result.stderr


def test_check_config_refuses_a_secret_serve_would_refuse(tmp_path: Path) -> None:
    config = _auth_off_config(tmp_path, 8000, "sessions: {key: {env: MCP_BASTION_TEST_SESSION_KEY}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "mcp_bastion.cli", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**_environ(), "MCP_BASTION_TEST_SESSION_KEY": SESSION_KEY},
    )
    assert result.returncode == 1
    assert _one_line_error(result).startswith(
        f"mcp-bastion: error: {config}: sessions.key: the session key must be 32 random bytes"
    )


def test_serve_refuses_a_bad_secret_before_it_listens(tmp_path: Path) -> None:
    # Before: serve logged "listening on ..." and only then failed, building the gateway.
    with bind_loopback() as held:
        port = held.getsockname()[1]
    config = _auth_off_config(tmp_path, port, "sessions: {key: {env: MCP_BASTION_TEST_SESSION_KEY}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "mcp_bastion.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**_environ(), "MCP_BASTION_TEST_SESSION_KEY": SESSION_KEY},
    )
    assert result.returncode == 1
    assert "listening" not in result.stderr
    assert "Traceback" not in result.stderr
    assert f"{config}: sessions.key: the session key must be 32 random bytes" in result.stderr


def test_serve_logs_warnings_before_listening_and_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with bind_loopback() as held:
        port = held.getsockname()[1]
        config = _auth_off_config(tmp_path, port)
        result = run_cli("serve", "--config", str(config))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert any(f"WARNING mcp_bastion: {config}: servers[0].auth: false" in line for line in lines)
    assert lines[-2] == (
        f"mcp-bastion: error: {config}: listen: cannot listen on 127.0.0.1:{port} (Address already in use)"
    )
    assert lines[-1] == "  hint: pick another listen.port, or stop what holds it"


def test_check_config_missing_secret_hint_names_skip_secrets(tmp_path: Path) -> None:
    config = _auth_off_config(tmp_path, 8000, "sessions: {key: {env: MCP_BASTION_TEST_UNSET_VAR}}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 1
    assert "check-config --skip-secrets" in result.stderr.splitlines()[1]


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MCP_BASTION_TEST_")}
