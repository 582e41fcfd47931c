"""The lockfile: approved tool definitions, per server, reviewed in version control.

`mcp-bastion pin` writes it from the live catalogs; `record` and `enforce` read it at start-up.
One file may hold several servers (each config entry names its file; entries may share one):

    {
      "lockfile": "mcp-bastion tool pins",
      "version": 1,
      "servers": {
        "mail": {
          "catalog": "sha256:…",
          "tools": {
            "send_email": {"digest": "sha256:…", "definition": {"name": "send_email", …}}
          }
        }
      }
    }

Each tool keeps its whole definition (what a reviewer reads, and what `pin diff` compares)
and its digest (`canonical.definition_digest` of that definition). Reading re-derives every
digest and refuses a file where one does not match, so a hand edit of a definition cannot
pass under an old digest. The file is written with sorted keys and two-space indents, so a
change shows in a review as the lines that changed; characters that render invisibly or
reorder text (controls, bidirectional overrides, zero-width and tag characters) are written
as `\\uXXXX` escapes, so a hostile description cannot hide in the review.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..config.explain import key_path
from ..errors import ConfigError
from .canonical import catalog_digest, definition_digest
from .pins import Pin, Sighting, pin_of

__all__ = ["LOCKFILE_VERSION", "read_lockfile", "render_lockfile", "write_lockfile"]

LOCKFILE_VERSION: Final = 1
LOCKFILE_KIND: Final = "mcp-bastion tool pins"
MAX_LOCKFILE_BYTES: Final = 64 * 1_048_576
ServerPins = dict[str, Pin]


def read_lockfile(path: str) -> dict[str, ServerPins]:
    """Every server's pins in the lockfile at `path`; ConfigError naming the file and key."""
    doc = _load(path)
    servers = _member(doc, "servers", dict, path, ())
    out: dict[str, ServerPins] = {}
    for server, section in servers.items():
        where = ("servers", server)
        if not isinstance(section, dict):
            raise _bad(path, where, "expected a mapping with `tools`")
        tools = _member(section, "tools", dict, path, where)
        out[server] = {
            name: _pin(path, (*where, "tools", name), name, entry) for name, entry in tools.items()
        }
    return out


def render_lockfile(servers: Mapping[str, Mapping[str, Sighting]]) -> str:
    """The lockfile text for these servers' definitions (each server: tool name → sighting)."""
    doc = {
        "lockfile": LOCKFILE_KIND,
        "version": LOCKFILE_VERSION,
        "servers": {name: _section(tools) for name, tools in servers.items()},
    }
    return _visible(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)) + "\n"


def write_lockfile(path: str, servers: Mapping[str, Mapping[str, Sighting]]) -> None:
    """Write these servers' sections into the lockfile at `path`, keeping the sections of
    other servers already in it. The file is replaced whole (a crash leaves the old one)."""
    merged: dict[str, Mapping[str, Sighting]] = {}
    if Path(path).exists():
        for server, pins in read_lockfile(path).items():
            merged[server] = {name: Sighting(pin.digest, pin.definition or {}) for name, pin in pins.items()}
    merged.update(servers)
    text = render_lockfile(dict(sorted(merged.items())))
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".mcp-bastion-lock-", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the lockfile ({exc.strerror or exc})", source=path) from None


def _section(tools: Mapping[str, Sighting]) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    digests: list[str] = []
    for name, sighting in sorted(tools.items()):
        assert sighting.digest is not None
        entries[name] = {"digest": sighting.digest, "definition": sighting.definition}
        digests.append(sighting.digest)
    return {"catalog": catalog_digest(digests), "tools": entries}


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_LOCKFILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the lockfile ({exc.strerror or exc})",
            source=path,
            hint="`mcp-bastion pin --config FILE` writes it from the live catalogs",
        ) from None
    if len(raw) > MAX_LOCKFILE_BYTES:
        raise ConfigError(f"the lockfile is larger than {MAX_LOCKFILE_BYTES} bytes", source=path)
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_repeats)
    except UnicodeDecodeError:
        raise ConfigError("the lockfile is not UTF-8 text", source=path) from None
    except RecursionError:
        raise ConfigError("the lockfile is nested too deeply", source=path) from None
    except ValueError as exc:  # json.JSONDecodeError, and _no_repeats
        raise ConfigError(f"the lockfile is not valid JSON: {exc}", source=path) from None
    if not isinstance(doc, dict) or doc.get("lockfile") != LOCKFILE_KIND:
        raise ConfigError(f'not an mcp-bastion lockfile (no "lockfile": "{LOCKFILE_KIND}")', source=path)
    if doc.get("version") != LOCKFILE_VERSION:
        raise _bad(path, ("version",), f"expected {LOCKFILE_VERSION}, found {doc.get('version')!r}")
    return doc


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # json keeps the last silently: a second entry for a tool would override the one
            # a reviewer read first.
            raise ValueError(f"the name {key!r} appears twice in one object")
        out[key] = value
    return out


def _pin(path: str, where: tuple[str, ...], name: str, entry: Any) -> Pin:
    if not isinstance(entry, dict):
        raise _bad(path, where, "expected a mapping with `digest` and `definition`")
    digest = _member(entry, "digest", str, path, where)
    definition = _member(entry, "definition", dict, path, where)
    if definition.get("name") != name:
        raise _bad(path, (*where, "definition", "name"), f"expected {name!r}, the entry's own name")
    if "_meta" in definition:
        raise _bad(path, (*where, "definition", "_meta"), "a pin never covers `_meta`: remove it")
    try:
        actual = definition_digest(definition)
    except ValueError as exc:
        raise _bad(path, (*where, "definition"), f"cannot be canonicalized: {exc}") from None
    if actual != digest:
        raise _bad(
            path,
            (*where, "digest"),
            f"does not match the definition (which hashes to {actual}): the definition was edited; "
            "re-run `mcp-bastion pin` rather than editing pins by hand",
        )
    return pin_of(Sighting(digest, definition), keep_definition=True)


def _member(doc: dict[str, Any], key: str, kind: type, path: str, where: tuple[str, ...]) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind):
        shape = "a mapping" if kind is dict else "text" if kind is str else kind.__name__
        raise _bad(path, (*where, key), f"expected {shape}")
    return value


def _bad(path: str, where: tuple[str | int, ...], message: str) -> ConfigError:
    return ConfigError(message, source=path, path=key_path(where))


_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})


def _visible(text: str) -> str:
    """JSON text with every invisible or reordering character escaped (they only occur inside
    strings, where an escape means the same character)."""
    if text.isascii() and "\x7f" not in text:
        return text
    out = []
    for ch in text:
        if ord(ch) > 0x7E and unicodedata.category(ch) in _HIDDEN_CATEGORIES:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
