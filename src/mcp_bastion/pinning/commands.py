"""`mcp-bastion pin` and `mcp-bastion pin diff`: the library behind the commands.

Both ask each upstream for its tools exactly as `mcp-bastion tools` does (the gateway's own
credential, through the route's transport: `registry.tools.live_tool_lists`). `pin_servers`
writes what it got into each server's lockfile (`servers[].pinning.lockfile`; servers that
share a file share one write), `diff_servers` compares it with what the lockfile holds.
Only servers with a lockfile take part; naming one without is an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import LoadedConfig
from ..config.explain import key_path
from ..errors import ConfigError
from ..registry.tools import live_tool_lists
from . import lockfile_path
from .diff import ServerDiff, ToolDiff, compare
from .lockfile import read_lockfile, write_lockfile
from .pins import Pin, Sighting, sighting_of

__all__ = ["PinOutcome", "diff_servers", "pin_servers"]


@dataclass(frozen=True)
class PinOutcome:
    server: str
    lockfile: str
    tools: int  # how many definitions are pinned now
    changes: tuple[ToolDiff, ...] = ()  # against the pins the lockfile held before
    error: str | None = None
    first: bool = False  # the lockfile held no pins for this server before


async def pin_servers(
    loaded: LoadedConfig, *, server: str | None = None, timeout: float | None = None
) -> list[PinOutcome]:
    """Pin every selected server's live tools into its lockfile; a server whose upstream
    cannot be listed (or lists one name twice, differently) keeps its old pins."""
    files = _lockfiles(loaded, server)
    previous = {path: _read(path, missing_ok=True) for path in set(files.values())}
    outcomes: list[PinOutcome] = []
    writes: dict[str, dict[str, Mapping[str, Sighting]]] = defaultdict(dict)
    for live in await live_tool_lists(loaded, servers=set(files), timeout=timeout):
        name, path = live.route.name, files[live.route.name]
        sightings, problem = _sightings(live.tools)
        error = live.error or problem
        if error is not None:
            outcomes.append(PinOutcome(name, path, 0, error=error))
            continue
        writes[path][name] = sightings
        before = previous[path].get(name)
        if before is None:
            outcomes.append(PinOutcome(name, path, len(sightings), first=True))
        else:
            outcomes.append(PinOutcome(name, path, len(sightings), compare(before, sightings)))
    for path, sections in writes.items():
        write_lockfile(path, sections)
    return outcomes


async def diff_servers(
    loaded: LoadedConfig, *, server: str | None = None, timeout: float | None = None
) -> list[ServerDiff]:
    """Each selected server's live tools against its pins."""
    files = _lockfiles(loaded, server)
    pins: dict[str, Mapping[str, Pin]] = {}
    for name, path in files.items():
        pins[name] = _read(path, missing_ok=False).get(name, {})
    out = []
    for live in await live_tool_lists(loaded, servers=set(files), timeout=timeout):
        name = live.route.name
        sightings, problem = _sightings(live.tools)
        error = live.error or problem
        diffs = () if error is not None else compare(pins[name], sightings)
        out.append(ServerDiff(name, files[name], diffs, error))
    return out


def _read(path: str, *, missing_ok: bool) -> dict[str, dict[str, Pin]]:
    if Path(path).exists():
        return read_lockfile(path)
    if missing_ok:
        return {}
    raise ConfigError(
        f"no lockfile at {path!r}", source=path, hint="`mcp-bastion pin --config FILE` writes it"
    )


def _lockfiles(loaded: LoadedConfig, server: str | None) -> dict[str, str]:
    """Server name → lockfile path, for the selected servers that have one."""
    source = loaded.path or ""
    servers = loaded.config.servers
    if server is not None:
        chosen = [(i, s) for i, s in enumerate(servers) if s.name == server]
        if not chosen:
            names = ", ".join(s.name for s in servers)
            raise ConfigError(f"no server named {server!r} (the config has: {names})", source=source)
        index, only = chosen[0]
        if only.pinning.lockfile is None:
            raise ConfigError(
                "is not set, so there is nowhere to pin this server's tools",
                source=source,
                path=key_path(("servers", index, "pinning", "lockfile")),
                hint="add `pinning: {mode: record, lockfile: bastion.lock.json}` to the server",
            )
        return {only.name: lockfile_path(only.pinning.lockfile, loaded.path)}
    files = {
        s.name: lockfile_path(s.pinning.lockfile, loaded.path)
        for s in servers
        if s.pinning.lockfile is not None
    }
    if not files:
        raise ConfigError(
            "no server has pinning.lockfile set, so there is nothing to pin",
            source=source,
            hint="add `pinning: {mode: record, lockfile: bastion.lock.json}` to a server",
        )
    return files


def _sightings(tools: list[dict[str, Any]]) -> tuple[dict[str, Sighting], str | None]:
    out: dict[str, Sighting] = {}
    for tool in tools:
        name = tool["name"]
        sighting = sighting_of(tool)
        if sighting.digest is None:
            return {}, f"the tool {name!r} cannot be pinned (nested too deeply, or not canonical JSON)"
        if name in out and out[name].digest != sighting.digest:
            return {}, f"the upstream lists the tool {name!r} twice, with different definitions"
        out[name] = sighting
    return out, None
