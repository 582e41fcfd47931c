"""`mcp-bastion tools` and `mcp-bastion scopes export` as a user runs them, against real upstreams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from ..support.recording_upstream import RecordingUpstream
from ..support.servers import read_body, serve_asgi

SECRET = "static-upstream-secret-4711"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_bastion.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def write_config(tmp_path: Path, upstreams: dict[str, str], **server: Any) -> Path:
    lines = [
        "public_base_url: https://mcp.example.com",
        "identity_providers:",
        "  - name: idp",
        "    issuer: https://idp.example",
        "servers:",
    ]
    for name, url in upstreams.items():
        lines += [f"  - name: {name}", f"    upstream: {url}"]
        lines += [f"    {key}: {json.dumps(value)}" for key, value in server.items()]
    path = tmp_path / "bastion.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


STATIC = {"upstream_auth": {"type": "static", "header": "X-Api-Key", "secret": {"env": "TEST_UPSTREAM_KEY"}}}


def test_tools_as_json_lists_each_tool_with_scopes_and_source(tmp_path: Path) -> None:
    upstream = RecordingUpstream()
    with serve_asgi(upstream) as server:
        config = write_config(
            tmp_path, {"rec": f"{server.base_url}/mcp"}, tools={"drop_thing": {"scopes": ["admin"]}}, **STATIC
        )
        done = run_cli(
            "tools", "--config", str(config), "--format", "json", env={"TEST_UPSTREAM_KEY": SECRET}
        )

    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)["servers"]
    assert (report["name"], report["resource"], report["error"]) == (
        "rec",
        "https://mcp.example.com/rec/mcp",
        None,
    )
    tools = {tool["name"]: tool for tool in report["tools"]}
    assert (tools["read_thing"]["scopes"], tools["read_thing"]["source"]) == (["tools.read"], "annotation")
    assert (tools["drop_thing"]["scopes"], tools["drop_thing"]["source"]) == (["admin"], "override")
    assert (tools["unannotated"]["scopes"], tools["unannotated"]["source"]) == (["tools.write"], "default")
    assert tools["write_thing"]["annotations"] == {"readOnlyHint": False, "destructiveHint": False}
    # The gateway's own credential reached the upstream, and appears nowhere in the output.
    assert all(seen.headers["x-api-key"] == SECRET for seen in upstream.seen)
    assert SECRET not in done.stdout + done.stderr


def test_tools_as_a_table_for_one_server(tmp_path: Path) -> None:
    with serve_asgi(RecordingUpstream()) as one, serve_asgi(RecordingUpstream()) as two:
        config = write_config(
            tmp_path,
            {"one": f"{one.base_url}/mcp", "two": f"{two.base_url}/mcp"},
            upstream_auth={"type": "none"},
        )
        done = run_cli("tools", "--config", str(config), "two")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"two  https://mcp.example.com/two/mcp  (upstream {two.base_url}/mcp)"
    assert lines[1].split() == ["TOOL", "HINTS", "SCOPES", "FROM"]
    assert lines[2].split() == ["read_thing", "readOnly=true", "tools.read", "annotation"]
    assert "one  " not in done.stdout


def test_an_unreachable_upstream_is_reported_with_exit_status_1(tmp_path: Path) -> None:
    with serve_asgi(RecordingUpstream()) as gone:
        url = f"{gone.base_url}/mcp"
    config = write_config(tmp_path, {"gone": url}, upstream_auth={"type": "none"})

    done = run_cli("tools", "--config", str(config))

    assert done.returncode == 1
    assert "  error: upstream is unreachable" in done.stdout.splitlines()
    assert "Traceback" not in done.stderr


def test_an_unknown_server_name_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"one": "http://127.0.0.1:9/mcp"}, upstream_auth={"type": "none"})

    done = run_cli("tools", "--config", str(config), "nope")

    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"mcp-bastion: error: {config}: no server named 'nope' (the config has: one)"
    )


async def hostile_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Lists a tool whose name and hints would rewrite a terminal if printed raw."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    request = orjson.loads(body) if body else {}
    tool = {"name": "\x1b[2J\x1b]0;owned\x07safe\u202eexe.sh", "annotations": {"readOnlyHint": "\x1b[31m"}}
    answer = {"jsonrpc": "2.0", "id": request.get("id"), "result": {"tools": [tool]}}
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": orjson.dumps(answer)})


def test_a_hostile_tool_name_cannot_reach_the_terminal_raw(tmp_path: Path) -> None:
    with serve_asgi(hostile_upstream) as server:
        config = write_config(tmp_path, {"evil": f"{server.base_url}/mcp"}, upstream_auth={"type": "none"})
        table = run_cli("tools", "--config", str(config))
        as_json = run_cli("tools", "--config", str(config), "--format", "json")

    assert table.returncode == 0, table.stderr
    assert not any(ch in table.stdout for ch in "\x1b\x07\u202e")
    assert "\\u001b[2J\\u001b]0;owned\\u0007safe\\u202eexe.sh" in table.stdout
    assert "readOnly=?" in table.stdout  # a non-boolean hint is shown as ignored, not printed
    # JSON escapes control characters itself; the name survives exactly for programs.
    [tool] = json.loads(as_json.stdout)["servers"][0]["tools"]
    assert tool["name"] == "\x1b[2J\x1b]0;owned\x07safe\u202eexe.sh"
    assert (tool["scopes"], tool["source"]) == (["tools.write"], "default")


@pytest.mark.parametrize(
    ("idp", "key", "intro"),
    [
        ("entra", "applications", "Entra ID: one app registration per MCP server."),
        ("okta", "authorizationServers", "Okta: one custom authorization server per MCP server"),
        ("keycloak", "clientScopes", "Keycloak: realm client scopes."),
        ("auth0", "resourceServers", "Auth0: one API per MCP server."),
        ("generic", "resources", "Register each resource"),
    ],
)
def test_scopes_export_prints_json_and_a_how_to_without_reading_secrets(
    tmp_path: Path, idp: str, key: str, intro: str
) -> None:
    # The static secret's variable is unset: exporting must not need it.
    config = write_config(tmp_path, {"wiki": "http://10.0.0.6/mcp"}, upstream_auth=STATIC["upstream_auth"])

    done = run_cli("scopes", "export", "--config", str(config), "--idp", idp)

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["idp"] == idp
    assert document[key]
    assert "https://mcp.example.com/wiki/mcp" in done.stdout
    assert done.stderr.startswith(intro)


def test_scopes_export_as_a_table(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"wiki": "http://10.0.0.6/mcp"})

    done = run_cli("scopes", "export", "--config", str(config), "--idp", "generic", "--format", "table")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "wiki  https://mcp.example.com/wiki/mcp",
        "  tools.read   wiki: read-only tools, resources, prompts and completions",
    ]


def test_the_help_texts_explain_sources_and_formats_on_their_own() -> None:
    tools = run_cli("tools", "--help").stdout
    export = run_cli("scopes", "export", "--help").stdout

    for word in (
        "override",
        "annotation",
        "default",
        "readOnlyHint",
        "destructiveHint",
        "signing.key",
        "--format",
    ):
        assert word in tools, word
    for word in ("entra", "okta", "keycloak", "auth0", "generic", "identifierUris", "oidc-audience-mapper"):
        assert word in export, word
