"""The real ``mcp-bastion`` command in a subprocess, used the way the README tells a user to.

``mcp-bastion demo`` prints where everything is and a client configuration to paste; the
official SDK client, given only that printed URL, completes its OAuth flow against the
embedded IdP and calls a tool; the audit feed on stdout shows the call; a signal stops it
all. User mistakes end with exit status 1, an ``error:`` line and no traceback.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx2
import pytest

from ..support.servers import bind_loopback
from .sdk_oauth import oauth_client

pytestmark = pytest.mark.e2e

COMMAND = [sys.executable, "-m", "mcp_bastion.cli"]
# Interpreter start-up, imports and three uvicorn servers: about a second here.
STARTUP_TIMEOUT_S = 30.0
LINE_TIMEOUT_S = 10.0
EXIT_TIMEOUT_S = 10.0
ANNOUNCEMENT_END = "Ctrl-C stops everything."


class LineReader:
    """A child's stdout, line by line, with a timeout (a pipe read has none): read on a thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # EOF

    def until(self, done: Callable[[str], bool], timeout: float) -> list[str]:
        """Lines up to and including the first one ``done`` accepts; fails on EOF or timeout."""
        lines: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no expected line within {timeout}s; got {self.seen[-20:]}") from None
            if line is None:
                raise AssertionError(f"stdout ended first; got {self.seen[-20:]}")
            self.seen.append(line)
            lines.append(line)
            if done(line):
                return lines

    def join(self) -> None:
        self._thread.join(EXIT_TIMEOUT_S)


@contextlib.contextmanager
def running_demo(*args: str) -> Iterator[tuple[subprocess.Popen[str], LineReader, Path]]:
    """``mcp-bastion demo ARGS`` until the block exits; yields the process, its stdout and stderr file."""
    with tempfile.TemporaryDirectory(prefix="bastion-demo-") as scratch:
        stderr_path = Path(scratch, "stderr.log")
        # stderr to a file: a pipe nobody reads could fill and block the child.
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [*COMMAND, "demo", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
            assert process.stdout is not None
            reader = LineReader(process.stdout)
            try:
                yield process, reader, stderr_path
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait(EXIT_TIMEOUT_S)
                reader.join()
                process.stdout.close()


def client_configuration(announcement: list[str]) -> dict[str, dict[str, dict[str, str]]]:
    """The JSON block printed after "Paste into your MCP client's configuration:"."""
    start = announcement.index("Paste into your MCP client's configuration:") + 1
    end = announcement.index("", start)
    parsed: dict[str, dict[str, dict[str, str]]] = json.loads("\n".join(announcement[start:end]))
    return parsed


def announced(announcement: list[str], label: str) -> str:
    """The URL on the announcement line labelled ``label`` (e.g. "gateway JWKS")."""
    [line] = [line for line in announcement if line.strip().startswith(label)]
    return line.strip().removeprefix(label).split()[0]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_demo_command_serves_a_working_oauth_protected_server(stop: signal.Signals) -> None:
    with running_demo("--port", "0", "--auto-approve", "alice") as (process, stdout, stderr):
        announcement = stdout.until(lambda line: line.endswith(ANNOUNCEMENT_END), STARTUP_TIMEOUT_S)
        assert announcement[0] == "mcp-bastion demo is running"
        servers = client_configuration(announcement)["mcpServers"]
        assert set(servers) == {"demo", "notes"}
        assert all(server["type"] == "http" for server in servers.values())
        url = servers["demo"]["url"]
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/demo/mcp")
        assert any("auto-approved as alice" in line for line in announcement)
        jwks_url = announced(announcement, "gateway JWKS")
        async with httpx2.AsyncClient(trust_env=False, timeout=LINE_TIMEOUT_S) as http:
            jwks = (await http.get(jwks_url)).json()
        assert jwks["keys"]
        assert all("d" not in key for key in jwks["keys"])  # public halves only

        # "auto" is the SDK's default: what a user pasting the configuration gets.
        async with oauth_client(url, mode="auto") as (client, flow):
            result = await client.call_tool("echo", {"text": "from the printed URL"})
        assert not result.is_error
        assert result.structured_content == {"result": "from the printed URL"}
        assert len(flow.authorizations) == 1
        assert flow.token_requests[0].resource == url

        # The audit feed follows the announcement, one JSON object per line.
        event = json.loads(stdout.until(lambda line: '"target":"echo"' in line, LINE_TIMEOUT_S)[-1])
        assert event["method"] == "tools/call"
        assert event["decision"] == "allow"
        assert event["subject"] == "alice"

        process.send_signal(stop)
        assert process.wait(EXIT_TIMEOUT_S) == 0
        assert "Traceback" not in stderr.read_text()


async def test_demo_with_exchange_shows_the_exchanged_token_at_the_whoami_server() -> None:
    # README: `--exchange` adds `whoami`, reached with RFC 8693 token exchange at the dev IdP.
    with running_demo("--port", "0", "--auto-approve", "alice", "--exchange") as (process, stdout, stderr):
        announcement = stdout.until(lambda line: line.endswith(ANNOUNCEMENT_END), STARTUP_TIMEOUT_S)
        servers = client_configuration(announcement)["mcpServers"]
        assert set(servers) == {"demo", "notes", "whoami"}
        url = servers["whoami"]["url"]
        async with oauth_client(url, mode="auto") as (client, _):
            result = await client.call_tool("whoami", {})
        seen = result.structured_content
        assert seen is not None
        assert (seen["accepted"], seen["sub"], seen["act"]) == (True, "alice", {"sub": "mcp-bastion-gateway"})
        assert seen["aud"] != url  # the upstream's own URL, not the gateway's: an exchanged token
        assert seen["aud"].startswith("http://127.0.0.1:")
        assert seen["aud"].endswith("/mcp")
        process.send_signal(signal.SIGINT)
        assert process.wait(EXIT_TIMEOUT_S) == 0
        assert "Traceback" not in stderr.read_text()


def test_demo_refuses_a_non_loopback_host_without_allow_remote() -> None:
    done = run_cli("demo", "--host", "0.0.0.0", "--port", "0")

    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("mcp-bastion: error:")]
    assert errors == ["mcp-bastion: error: refusing to bind the demo (with its development IdP) to 0.0.0.0"]
    assert "--allow-remote" in done.stderr


def test_demo_on_a_port_in_use_says_so() -> None:
    with bind_loopback() as taken:
        port = taken.getsockname()[1]
        done = run_cli("demo", "--port", str(port))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"mcp-bastion: error: cannot listen on 127.0.0.1:{port}" in done.stderr


VALID_CONFIG = """\
public_base_url: http://127.0.0.1:8000
identity_providers:
  - name: idp
    issuer: https://idp.example
servers:
  - name: demo
    upstream: http://127.0.0.1:9/mcp
"""


@pytest.mark.parametrize(
    ("mistake", "key_path"),
    [
        (
            ("upstream: http://127.0.0.1:9/mcp", "upstream: http://127.0.0.1:9/mcp\n    timeout_seconds: -5"),
            "servers[0].timeout_seconds",
        ),
        (("    issuer:", "    isuer:"), "identity_providers[0].isuer"),
    ],
    ids=["bad-value", "misspelt-key"],
)
def test_check_config_names_the_key_path_of_a_bad_file(
    tmp_path: Path, mistake: tuple[str, str], key_path: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(VALID_CONFIG)
    bad = tmp_path / "bastion.yaml"
    bad.write_text(VALID_CONFIG.replace(*mistake))

    assert run_cli("check-config", str(good)).returncode == 0
    done = run_cli("check-config", str(bad))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("mcp-bastion: error:")]
    assert str(bad) in error
    assert key_path in error
