"""The real ``mcp-bastion wrap`` command in a subprocess, used as docs/stdio.md tells a user to.

It prints the URL and a client configuration; the SDK client, given only that URL, completes
its OAuth flow against the development IdP and calls the wrapped plug-in's tool (which
learns who calls); a signal stops the gateway and its plug-in processes. A missing command
is a user mistake: exit status 1 and an ``error:`` line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..stdio.plugins import PLUGIN
from .sdk_oauth import oauth_client
from .test_demo_cli import (
    ANNOUNCEMENT_END,
    COMMAND,
    EXIT_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    LineReader,
    client_configuration,
    run_cli,
)

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def running_wrap(*args: str) -> Iterator[tuple[subprocess.Popen[str], LineReader]]:
    with (
        tempfile.TemporaryDirectory(prefix="bastion-wrap-") as scratch,
        Path(scratch, "stderr.log").open("w") as err,
    ):
        process = subprocess.Popen(
            [*COMMAND, "wrap", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True
        )
        assert process.stdout is not None
        reader = LineReader(process.stdout)
        try:
            yield process, reader
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(EXIT_TIMEOUT_S)
            reader.join()
            process.stdout.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_wrap_serves_a_plugin_behind_the_oauth_flow(stop: signal.Signals) -> None:
    args = ("--port", "0", "--name", "plug", "--auto-approve", "alice", "--", sys.executable, PLUGIN)
    with running_wrap(*args) as (process, stdout):
        announcement = stdout.until(lambda line: line.endswith(ANNOUNCEMENT_END), STARTUP_TIMEOUT_S)
        url = client_configuration(announcement)["mcpServers"]["plug"]["url"]
        assert url.endswith("/plug/mcp")
        async with oauth_client(url, mode="auto") as (client, _):
            echoed = await client.call_tool("echo", {"text": "wrapped"})
            identity = await client.call_tool("whoami", {})
            pid = int(str((await client.call_tool("pid", {})).content[0].text))  # type: ignore[union-attr]
        process.send_signal(stop)
        assert process.wait(EXIT_TIMEOUT_S) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the plug-in was stopped and reaped with the gateway
    assert str(echoed.content[0].text) == "wrapped"  # type: ignore[union-attr]
    token = str(identity.content[0].text)[::-1]  # type: ignore[union-attr]
    assert token.count(".") == 2  # a JWT: the caller's identity reached the plug-in


def test_wrap_without_a_command_is_a_user_error() -> None:
    done = run_cli("wrap", "--port", "0")
    assert done.returncode == 1
    assert "error: no command to wrap" in done.stderr
    assert "Traceback" not in done.stderr
