"""Pinned tool definitions: what an upstream's tools were when approved, and what to do when
they change (rug pulls).

Per server (`servers[].pinning`): `off`; `record` (the default: first seen, or the lockfile,
is the approval; changes are logged and audited); `enforce` (a changed or unapproved tool is
withheld from lists and refused on call until approved in the lockfile). In every mode that
pins, a change of annotations never lowers the scopes a tool needs until approved.

- `canonical`: RFC 8785 canonical JSON and the SHA-256 digests of definitions and catalogs;
- `pins`: one approved definition, comparisons, the annotation ratchet;
- `store`: a server's pin state (`ToolPins`), learned lists, and the enforce-mode `PinCheck`;
- `views`: one learned list and the filtered lists answered from it (the list cache);
- `lockfile`: reading and writing the reviewed lockfile;
- `report`: log lines and audit events for changes;
- `diff`, `commands`: `mcp-bastion pin` and `mcp-bastion pin diff`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config.explain import key_path
from ..config.model import BastionConfig, ServerConfig
from ..errors import ConfigError
from .lockfile import read_lockfile
from .pins import Pin, ToolChange
from .store import PinCheck, Reporter, ToolPins
from .views import CatalogView, visibility_key

__all__ = [
    "CatalogView",
    "Lockfiles",
    "Pin",
    "PinCheck",
    "Reporter",
    "ToolChange",
    "ToolPins",
    "check_lockfiles",
    "lockfile_path",
    "visibility_key",
]

PIN_HINT = "`mcp-bastion pin --config FILE` writes the lockfile from the live catalogs"


def lockfile_path(lockfile: str, config_path: str | None) -> str:
    """Where a configured lockfile is: a relative path starts at the config file's folder (as
    policy files do: the two are reviewed together), or the working folder without a file."""
    if os.path.isabs(lockfile) or not config_path:
        return lockfile
    return str(Path(config_path).parent / lockfile)


def check_lockfiles(config: BastionConfig, source: str = "") -> None:
    """What `serve` would refuse at start-up about the lockfiles the config names (missing,
    unreadable, tampered, no pins for a server), for `check-config`."""
    lockfiles = Lockfiles(source)
    for i, server in enumerate(config.servers):
        lockfiles.pins_for(server, i, _no_report)


def _no_report(change: ToolChange, principal: object, trace_id: str) -> None:
    return None


class Lockfiles:
    """Reads each lockfile a config names once, and builds every server's `ToolPins`."""

    def __init__(self, source: str = "") -> None:
        self._source = source  # the config file, for messages
        self._read: dict[str, dict[str, dict[str, Pin]]] = {}

    def pins_for(self, server: ServerConfig, index: int, report: Reporter) -> ToolPins:
        settings = server.pinning
        if settings.mode == "off" or settings.lockfile is None:
            return ToolPins(server.name, settings.mode, report=report)
        path = lockfile_path(settings.lockfile, self._source)
        where = key_path(("servers", index, "pinning", "lockfile"))
        if path not in self._read:
            if not os.path.isfile(path):
                raise ConfigError(f"no lockfile at {path!r}", source=self._source, path=where, hint=PIN_HINT)
            self._read[path] = read_lockfile(path)
        pins = self._read[path].get(server.name)
        if pins is None:
            raise ConfigError(
                f"the lockfile {path!r} holds no pins for server {server.name!r}",
                source=self._source,
                path=where,
                hint=f"`mcp-bastion pin --config FILE {server.name}` adds them",
            )
        return ToolPins(server.name, settings.mode, pins, from_lockfile=True, report=report)
