"""The published tools of real upstreams, fetched with the gateway's own upstream credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.demo.stack import DemoOptions, build_demo_stack
from mcp_bastion.errors import ConfigError
from mcp_bastion.registry import published_tools
from mcp_bastion.registry.tools import ServerTools, ToolEntry

from ..e2e.demo_stack import running_demo_upstreams
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import serve_asgi

ISSUER = "https://idp.example"


def config(servers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "public_base_url": "https://mcp.example.com",
        "identity_providers": [{"name": "idp", "issuer": ISSUER}],
        "servers": servers,
        **extra,
    }


def by_name(server: ServerTools) -> dict[str, ToolEntry]:
    return {tool.name: tool for tool in server.tools}


async def test_the_demo_configs_servers_are_listed_with_their_requirements() -> None:
    with running_demo_upstreams() as urls:
        stack = build_demo_stack(DemoOptions(), urls, port=8000)
        servers = await published_tools(LoadedConfig(stack.config, {}))

    assert [(s.name, s.resource, s.error) for s in servers] == [
        ("demo", "http://127.0.0.1:8000/demo/mcp", None),
        ("notes", "http://127.0.0.1:8000/notes/mcp", None),
    ]
    demo, notes = (by_name(s) for s in servers)
    assert (demo["echo"].scopes, demo["echo"].source) == (("tools.read",), "annotation")
    assert (demo["set_greeting"].scopes, demo["set_greeting"].source) == (("tools.write",), "annotation")
    assert (demo["reset_greeting"].scopes, demo["reset_greeting"].source) == (("tools.write",), "annotation")
    assert demo["reset_greeting"].hints == {
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": True,
    }
    assert demo["echo"].description == "Return the text unchanged."
    assert list(notes) == ["list_notes", "read_note", "add_note", "delete_note"]


async def test_overrides_and_defaults_are_told_apart_and_unlisted_overrides_shown() -> None:
    upstream = RecordingUpstream()
    with serve_asgi(upstream) as server:
        loaded = LoadedConfig(
            parse_config(
                config(
                    [
                        {
                            "name": "rec",
                            "upstream": f"{server.base_url}/mcp",
                            "upstream_auth": {"type": "none"},
                            "tools": {
                                "drop_thing": {"scopes": ["admin"]},
                                "no_such_tool": {"scopes": ["admin"]},
                            },
                            "scopes": ["rec.destroy"],
                            "destructive_scopes": ["tools.write", "rec.destroy"],
                        }
                    ]
                )
            ),
            {},
        )
        [listed] = await published_tools(loaded)

    tools = by_name(listed)
    assert (tools["read_thing"].scopes, tools["read_thing"].source) == (("tools.read",), "annotation")
    assert (tools["write_thing"].scopes, tools["write_thing"].source) == (("tools.write",), "annotation")
    assert (tools["drop_thing"].scopes, tools["drop_thing"].source) == (("admin",), "override")
    assert (tools["unannotated"].scopes, tools["unannotated"].source) == (
        ("tools.write", "rec.destroy"),
        "default",
    )
    assert tools["unannotated"].hints == {}
    assert (tools["no_such_tool"].listed, tools["no_such_tool"].source) == (False, "override")
    assert all(tool.listed for name, tool in tools.items() if name != "no_such_tool")
    assert all("authorization" not in seen.headers for seen in upstream.seen)


async def test_a_static_upstream_secret_is_sent_as_the_gateway_sends_it() -> None:
    upstream = RecordingUpstream()
    with serve_asgi(upstream) as server:
        auth = {"type": "static", "header": "X-Api-Key", "secret": {"env": "UNUSED"}}
        loaded = LoadedConfig(
            parse_config(
                config([{"name": "rec", "upstream": f"{server.base_url}/mcp", "upstream_auth": auth}])
            ),
            {"servers[0].upstream_auth.secret": "s3cret-value"},
        )
        [listed] = await published_tools(loaded)

    assert listed.error is None
    assert upstream.seen
    assert all(seen.headers["x-api-key"] == "s3cret-value" for seen in upstream.seen)


async def test_a_minted_token_names_the_upstream_and_the_tools_command_and_nothing_more() -> None:
    key = ECKey.generate_key("P-256")
    upstream = RecordingUpstream()
    with serve_asgi(upstream) as server:
        url = f"{server.base_url}/mcp"
        loaded = LoadedConfig(
            parse_config(config([{"name": "rec", "upstream": url}], signing={"algorithm": "ES256"})),
            {"signing.key": orjson.dumps(key.as_dict(private=True)).decode()},
        )
        await published_tools(loaded)

    [scheme, token] = upstream.seen[0].headers["authorization"].split(" ")
    claims = jwt.decode(token, key, algorithms=["ES256"]).claims
    assert scheme == "Bearer"
    assert claims["aud"] == url
    assert claims["iss"] == "https://mcp.example.com"
    assert claims["sub"] == "mcp-bastion-tools"
    assert claims["act"] == {"sub": "https://mcp.example.com"}
    assert claims["scope"] == ""


async def test_an_unreachable_upstream_is_reported_and_the_others_still_listed() -> None:
    with serve_asgi(RecordingUpstream()) as gone:
        dead = f"{gone.base_url}/mcp"
    with serve_asgi(RecordingUpstream()) as server:
        servers = [
            {
                "name": "dead",
                "upstream": dead,
                "upstream_auth": {"type": "none"},
                "tools": {"x": {"scopes": ["admin"]}},
            },
            {"name": "live", "upstream": f"{server.base_url}/mcp", "upstream_auth": {"type": "none"}},
        ]
        dead_report, live_report = await published_tools(LoadedConfig(parse_config(config(servers)), {}))

    assert dead_report.error == "upstream is unreachable"
    assert [(t.name, t.listed) for t in dead_report.tools] == [("x", False)]
    assert live_report.error is None
    assert "read_thing" in by_name(live_report)


async def test_one_server_by_name_and_an_unknown_name_is_a_config_error() -> None:
    with serve_asgi(RecordingUpstream()) as server:
        servers = [
            {"name": name, "upstream": f"{server.base_url}/mcp", "upstream_auth": {"type": "none"}}
            for name in ("one", "two")
        ]
        loaded = LoadedConfig(parse_config(config(servers)), {}, "bastion.yaml")
        only = await published_tools(loaded, server="two")
        with pytest.raises(ConfigError) as caught:
            await published_tools(loaded, server="three")

    assert [s.name for s in only] == ["two"]
    assert caught.value.message == "bastion.yaml: no server named 'three' (the config has: one, two)"


async def refuses_every_token(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An upstream that verifies the gateway's JWKS: a token signed by another key gets 401."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize(
    ("auth", "secrets", "hinted"),
    [
        ({"type": "minted"}, {}, True),
        (
            {"type": "minted"},
            {"signing.key": orjson.dumps(ECKey.generate_key("P-256").as_dict(private=True)).decode()},
            False,
        ),
        ({"type": "none"}, {}, False),
    ],
    ids=["minted-with-a-process-key", "minted-with-the-gateways-key", "no-credential"],
)
async def test_a_401_to_a_token_signed_by_a_key_of_this_process_says_so(
    auth: dict[str, Any], secrets: dict[str, str], hinted: bool
) -> None:
    with serve_asgi(refuses_every_token) as server:
        servers = [{"name": "up", "upstream": f"{server.base_url}/mcp", "upstream_auth": auth}]
        [report] = await published_tools(LoadedConfig(parse_config(config(servers)), secrets))

    assert report.error is not None
    assert report.error.startswith("upstream answered HTTP 401")
    assert ("signing.key is not set" in report.error) is hinted


async def test_pinning_plays_no_part_in_reading_live_catalogs(tmp_path: Path) -> None:
    # `mcp-bastion pin` reads the live catalogs to write the lockfile, so reading them cannot
    # need the lockfile: an enforce server whose lockfile does not exist yet is still listed.
    missing = str(tmp_path / "not-written-yet.lock.json")
    server = {
        "name": "rec",
        "upstream_auth": {"type": "none"},
        "pinning": {"mode": "enforce", "lockfile": missing},
    }
    with serve_asgi(RecordingUpstream()) as upstream:
        data = config([{**server, "upstream": f"{upstream.base_url}/mcp"}])
        (listed,) = await published_tools(LoadedConfig(parse_config(data), {}))
    assert listed.error is None
    assert "drop_thing" in by_name(listed)
