"""examples/dev.yaml does what its header says: the commands written there, run as written
(only the ports moved to free ones), give a `serve` gateway that the official SDK client
completes OAuth against, through the demo's development IdP, and calls a tool through; and
`tools` / `scopes export` work against that setup.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.servers import bind_loopback
from .sdk_oauth import oauth_client
from .test_demo_cli import (
    ANNOUNCEMENT_END,
    COMMAND,
    EXIT_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    LineReader,
    run_cli,
    running_demo,
)

pytestmark = pytest.mark.e2e

DEV_YAML = Path(__file__).resolve().parents[2] / "examples" / "dev.yaml"
PORTS = ("8000", "8001", "9001", "9002")  # demo + IdP, serve, sample demo, sample notes


def header_commands() -> list[list[str]]:
    """The `mcp-bastion ...` command lines of the file's comment header, as argument lists."""
    header = DEV_YAML.read_text().split("\n\n", 1)[0]
    return [
        shlex.split(line.lstrip("# ")) for line in header.splitlines() if line.startswith("#   mcp-bastion ")
    ]


def free_ports(count: int) -> list[str]:
    socks = [bind_loopback() for _ in range(count)]
    ports = [str(sock.getsockname()[1]) for sock in socks]
    for sock in socks:
        sock.close()  # free again for the commands to bind (loopback, ephemeral range)
    return ports


def moved(text: str, ports: dict[str, str]) -> str:
    return re.sub(r"\b\d{4}\b", lambda m: ports.get(m.group(0), m.group(0)), text)


@contextlib.contextmanager
def running_serve(config: Path) -> Iterator[LineReader]:
    process = subprocess.Popen(
        [*COMMAND, "serve", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    log = LineReader(process.stderr)
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(EXIT_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(EXIT_TIMEOUT_S)
            log.join()
            process.stderr.close()


def test_the_header_names_the_commands_this_test_runs() -> None:
    assert header_commands() == [
        ["mcp-bastion", "demo", "--serve-config", "examples/dev.yaml", "--auto-approve", "alice"],
        ["mcp-bastion", "serve", "--config", "examples/dev.yaml"],
        ["mcp-bastion", "tools", "--config", "examples/dev.yaml"],
        ["mcp-bastion", "scopes", "export", "--config", "examples/dev.yaml", "--idp", "generic"],
    ]
    assert all(port in DEV_YAML.read_text() for port in PORTS)


async def test_serve_with_dev_yaml_against_the_demos_idp_authorizes_a_real_client(tmp_path: Path) -> None:
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
    config = tmp_path / "dev.yaml"
    config.write_text(moved(DEV_YAML.read_text(), ports))
    demo_args, serve_args, tools_args, export_args = (
        [str(config) if arg == "examples/dev.yaml" else arg for arg in command[1:]]
        for command in header_commands()
    )
    assert demo_args[0] == "demo"
    assert serve_args[0] == "serve"

    with running_demo(*demo_args[1:], "--port", ports["8000"]) as (demo, demo_out, demo_err):
        demo_out.until(lambda line: line.endswith(ANNOUNCEMENT_END), STARTUP_TIMEOUT_S)
        with running_serve(config) as serve_log:
            serve_log.until(lambda line: "listening on 127.0.0.1:" + ports["8001"] in line, STARTUP_TIMEOUT_S)
            url = f"http://127.0.0.1:{ports['8001']}/demo/mcp"

            async with oauth_client(url, mode="auto") as (client, flow):
                result = await client.call_tool("echo", {"text": "through dev.yaml"})

            tools = run_cli(*tools_args)
            export = run_cli(*export_args)

        assert demo.poll() is None, demo_err.read_text()

    assert not result.is_error
    assert result.structured_content == {"result": "through dev.yaml"}
    # The token came from the demo's IdP, for the serve gateway's resource.
    assert flow.token_requests[0].resource == url
    assert flow.authorizations[0].url.startswith(f"http://127.0.0.1:{ports['8000']}/idp/")

    assert tools.returncode == 0, tools.stdout + tools.stderr
    rows = [line.split() for line in tools.stdout.splitlines()]
    assert [
        "reset_greeting",
        "readOnly=false",
        "destructive=true",
        "idempotent=true",
        "admin",
        "override",
    ] in rows
    assert [
        "list_notes",
        "readOnly=true",
        "destructive=false",
        "idempotent=true",
        "tools.read",
        "annotation",
    ] in rows

    assert export.returncode == 0, export.stderr
    resources = [r["resource"] for r in json.loads(export.stdout)["resources"]]
    assert resources == [url, f"http://127.0.0.1:{ports['8001']}/notes/mcp"]


def test_the_demo_refuses_a_serve_config_that_does_not_trust_its_idp(tmp_path: Path) -> None:
    port, *others = free_ports(len(PORTS))
    config = tmp_path / "dev.yaml"
    # Everything moved but the IdP: the file trusts :8000, the demo runs elsewhere.
    config.write_text(moved(DEV_YAML.read_text(), dict(zip(PORTS[1:], others, strict=True))))

    done = run_cli("demo", "--port", port, "--serve-config", str(config))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == (
        "mcp-bastion: error: the --serve-config file does not trust this demo's development IdP "
        f"(http://127.0.0.1:{port}/idp)"
    )
