"""`mcp-bastion pin` and `pin diff`: the lockfile of approved tool definitions."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from ..config import REPOSITORY_URL, load_config

__all__ = ["COMMANDS", "add", "run", "with_default_action"]

COMMANDS = ("pin",)

PINNING_URL = f"{REPOSITORY_URL}/blob/main/docs/pinning.md"

PIN_DESCRIPTION = """Approve each upstream's tool definitions, or show how the live ones differ.

  mcp-bastion pin --config FILE [SERVER]        write the lockfile from the live catalogs
  mcp-bastion pin diff --config FILE [SERVER]   show what changed since the lockfile was written

Only servers with pinning.lockfile take part. The lockfile holds each tool's whole definition
and its SHA-256 (RFC 8785 canonical JSON): review it and commit it like a dependency lock.
A running gateway reads it at start-up ('record' logs changes, 'enforce' withholds them)."""

PIN_EPILOG = f"""exit status: pin: 0 written, 1 when an upstream could not be pinned (its old pins are kept);
diff: 0 no differences, 1 differences (or an upstream that could not be listed).
A server named 'write' or 'diff' is named after the action: mcp-bastion pin write diff.

how pinning works: {PINNING_URL}
"""


def add(commands: Any) -> None:
    pin = commands.add_parser(
        "pin",
        help="approve the live tool definitions (lockfile), or diff them",
        description=PIN_DESCRIPTION,
        epilog=PIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = pin.add_subparsers(dest="pin_command", required=True, metavar="[write|diff]")
    for action, text in (
        ("write", "write the lockfile from the live catalogs (the default)"),
        ("diff", "show how the live definitions differ from the lockfile"),
    ):
        sub = actions.add_parser(
            action,
            help=text,
            description=text,
            epilog=PIN_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("--config", required=True, metavar="FILE", help="the YAML config `serve` uses")
        sub.add_argument("server", nargs="?", metavar="SERVER", help="only this server (its `name`)")
        sub.add_argument("--format", choices=("text", "json"), default="text", help="default: text")
        sub.add_argument(
            "--timeout",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="per upstream request (default: 10)",
        )


def with_default_action(argv: list[str]) -> list[str]:
    """`pin --config F [SERVER]` is `pin write --config F [SERVER]` (the issue's spelling)."""
    for i, word in enumerate(argv):
        if word == "pin":
            rest = argv[i + 1 : i + 2]
            if rest and rest[0] in ("write", "diff", "-h", "--help"):
                return argv
            return [*argv[: i + 1], "write", *argv[i + 1 :]]
        if not word.startswith("-"):
            return argv  # another command
    return argv


def run(args: argparse.Namespace) -> int:
    from ..pinning.commands import diff_servers, pin_servers
    from ..pinning.diff import diff_document, diff_text
    from ..registry.report import printable

    loaded = load_config(args.config)
    if args.pin_command == "diff":
        diffs = asyncio.run(diff_servers(loaded, server=args.server, timeout=args.timeout))
        print(json.dumps(diff_document(diffs), indent=2) if args.format == "json" else diff_text(diffs))
        return 1 if any(d.differs or d.error for d in diffs) else 0
    outcomes = asyncio.run(pin_servers(loaded, server=args.server, timeout=args.timeout))
    if args.format == "json":
        document = [
            {
                "server": o.server,
                "lockfile": o.lockfile,
                "tools": o.tools,
                "error": o.error,
                "changes": [
                    {"name": c.name, "change": c.change, "fields": list(c.fields)} for c in o.changes
                ],
            }
            for o in outcomes
        ]
        print(json.dumps({"servers": document}, indent=2))
    for outcome in outcomes if args.format == "text" else ():
        if outcome.error is not None:
            print(f"{outcome.server}: not pinned: {outcome.error} (its old pins are kept)")
            continue
        fresh = (
            " (first pins for this server)" if outcome.first else "" if outcome.changes else " (no changes)"
        )
        print(f"{outcome.server}: {outcome.tools} tools pinned in {printable(outcome.lockfile, 200)}{fresh}")
        for change in outcome.changes:
            fields = f" ({', '.join(printable(f) for f in change.fields)})" if change.fields else ""
            print(f"  {change.change} {printable(change.name)}{fields}")
    return 1 if any(o.error for o in outcomes) else 0
