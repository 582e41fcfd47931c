"""The published scope registry: each upstream's live tools and the scopes each call needs.

`mcp-bastion tools` asks every configured upstream for its tool list, with the credential the
gateway itself would send (a token minted for the upstream, the static secret, or nothing), and
puts next to each tool the scopes a caller needs and where that requirement comes from. Tools
named in per-tool config that the upstream does not list are shown too: a misspelt override
protects nothing.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..app import Gateway, build_gateway
from ..audit import NullSink
from ..auth.principal import Principal
from ..config import LoadedConfig
from ..config.model import PinningConfig
from ..errors import BastionError, ConfigError
from ..route import ServerRoute
from ..upstream.tool_list import fetch_tool_list
from .provenance import Requirement, Source, requirement_of

__all__ = ["OPERATOR", "LiveTools", "ServerTools", "ToolEntry", "live_tool_lists", "published_tools"]

# Who the upstream sees in a minted token's `sub` for these fetches: no end user is involved,
# and `tools/list` needs no scope (the gateway's own catalog fetch also asks with none).
OPERATOR = Principal("mcp-bastion-tools", "", None, frozenset(), "", float("inf"))
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
MAX_TEXT = 1000  # characters of an upstream's title or description kept in the report
UNSIGNED_HINT = (
    " (signing.key is not set, so this command signed the upstream token with a key of its own,"
    " not the running gateway's: set signing.key, or check the upstream's own answer)"
)


@dataclass(frozen=True)
class ToolEntry:
    name: str
    hints: Mapping[str, Any]  # the MCP hints the upstream sent, as sent (untrusted)
    scopes: tuple[str, ...]
    source: Source
    listed: bool  # False: named in per-tool config, but not in the upstream's list
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ServerTools:
    name: str
    resource: str
    upstream: str
    tools: tuple[ToolEntry, ...]
    error: str | None = None


@dataclass(frozen=True)
class LiveTools:
    """One upstream's tool definitions as it sent them (`error`: why there are none)."""

    route: ServerRoute
    tools: list[dict[str, Any]]
    error: str | None = None


async def published_tools(
    loaded: LoadedConfig, *, server: str | None = None, timeout: float | None = None
) -> list[ServerTools]:
    """Each configured server's live tools with their requirements (`server`: only that one).

    `timeout` caps each upstream request (default: the server's `timeout_seconds`)."""
    return [
        ServerTools(
            live.route.name,
            live.route.resource,
            live.route.config.upstream or live.route.transport.target,
            entries(live.route, live.tools),
            live.error,
        )
        for live in await live_tool_lists(loaded, server=server, timeout=timeout)
    ]


async def live_tool_lists(
    loaded: LoadedConfig,
    *,
    server: str | None = None,
    timeout: float | None = None,
    servers: Collection[str] | None = None,
) -> list[LiveTools]:
    """Each configured server's tool definitions, asked for as the gateway would ask
    (`server`: only that one; `servers`: only those)."""
    gateway = _gateway(loaded)
    try:
        routes = list(gateway.routes.values())
        if server is not None:
            routes = [r for r in routes if r.name == server]
            if not routes:
                names = ", ".join(s.name for s in loaded.config.servers)
                raise ConfigError(
                    f"no server named {server!r} (the config has: {names})", source=loaded.path or ""
                )
        if servers is not None:
            routes = [r for r in routes if r.name in servers]
        signed = loaded.secret("signing.key") is not None  # else minted with a key of this process
        return list(await asyncio.gather(*(_live(r, timeout, signed) for r in routes)))
    finally:
        await gateway.shutdown()


def entries(route: ServerRoute, tools: Sequence[Mapping[str, Any]]) -> tuple[ToolEntry, ...]:
    """The report lines for an upstream's tool definitions, plus overrides it does not list."""
    out: dict[str, ToolEntry] = {}
    for tool in tools:
        name = tool["name"]
        if name not in out:  # a repeated name: the first definition is the one reported
            out[name] = _entry(name, tool, requirement_of(route.policy, name, tool))
    for name in route.policy.tool_scopes:
        if name not in out:
            requirement = requirement_of(route.policy, name, None)
            out[name] = ToolEntry(name, {}, requirement.scopes, requirement.source, listed=False)
    return tuple(out.values())


async def _live(route: ServerRoute, timeout: float | None, signed_by_gateway: bool) -> LiveTools:
    try:
        credential = await route.credential.header(OPERATOR, ())
        wait = timeout if timeout is not None else route.config.timeout_seconds
        tools = await fetch_tool_list(route.transport, credential, wait)
    except BastionError as exc:
        return LiveTools(route, [], _explain(route, exc, signed_by_gateway))
    return LiveTools(route, tools)


def _explain(route: ServerRoute, exc: BastionError, signed_by_gateway: bool) -> str:
    if route.config.upstream_auth.type == "minted" and not signed_by_gateway and "HTTP 401" in exc.message:
        # The most likely reason, and one a user cannot guess from a 401.
        return exc.message + UNSIGNED_HINT
    return exc.message


def _gateway(loaded: LoadedConfig) -> Gateway:
    """The gateway `serve` would build for this config: its routes hold the same credentials,
    transports, policies and resource URLs, so the report cannot differ from what it does.
    Pinning plays no part in reading live catalogs (`mcp-bastion pin` writes the lockfile
    `serve` would read), so it is off here."""
    secrets = dict(loaded.secrets)
    # Listing tools needs no session: a throwaway key keeps the gateway's warning about a
    # per-process session key out of this report.
    secrets.setdefault("sessions.key", base64.b64encode(os.urandom(32)).decode())
    unpinned = tuple(
        s.model_copy(update={"pinning": PinningConfig(mode="off")}) for s in loaded.config.servers
    )
    config = loaded.config.model_copy(update={"servers": unpinned})
    return build_gateway(LoadedConfig(config, secrets, loaded.path), audit=NullSink())


def _entry(name: str, tool: Mapping[str, Any], requirement: Requirement) -> ToolEntry:
    raw = tool.get("annotations")
    hints = {k: raw[k] for k in HINTS if k in raw} if isinstance(raw, Mapping) else {}
    title = tool.get("title")
    if not isinstance(title, str) and isinstance(raw, Mapping):
        title = raw.get("title")
    description = tool.get("description")
    return ToolEntry(
        name,
        hints,
        requirement.scopes,
        requirement.source,
        listed=True,
        title=title[:MAX_TEXT] if isinstance(title, str) else None,
        description=description[:MAX_TEXT] if isinstance(description, str) else None,
    )
