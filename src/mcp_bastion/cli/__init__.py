"""The `mcp-bastion` command: parse arguments, build config, call the library, print for humans.

A user's mistake ends with one line saying what was wrong and a hint: exit status 2 for the
command line itself (an option's value), 1 for everything else; `--debug` shows the traceback
instead. `--help` stands on its own: an installed user has no docs/ folder, so it names the
published documentation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..config import CONFIG_REFERENCE_URL, REPOSITORY_URL
from ..connect._cli import add_connect_command, connect_from_args
from ..errors import BastionError, ConfigError
from ..logs import configure_logging
from ..native import build_description
from . import _config, _local, _pin, _policy, _registry, _serve
from ._common import Parser

__all__ = ["build_parser", "main"]

EPILOG = f"""examples:
  mcp-bastion demo                          everything embedded, on http://127.0.0.1:8000
  mcp-bastion demo --port 0                 the same on a free port (printed at start)
  mcp-bastion demo --auto-approve alice     the dev IdP approves logins at once as alice
  mcp-bastion wrap -- npx -y @modelcontextprotocol/server-everything
                                            a stdio MCP server behind the gateway, with the dev IdP
  mcp-bastion check-config bastion.yaml     validate a config, secrets included, and explain it
  mcp-bastion serve --config bastion.yaml   the production gateway
  mcp-bastion pin --config bastion.yaml     approve the upstreams' tool definitions (lockfile)

'mcp-bastion COMMAND --help' describes each command.
documentation:     {REPOSITORY_URL}#readme
config reference:  {CONFIG_REFERENCE_URL}
"""
# In the order `--help` lists them; each group adds its commands and runs them.
_GROUPS = (_serve, _local, _config, _registry, _policy, _pin)
_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    name: group.run for group in _GROUPS for name in group.COMMANDS
}
_HANDLERS["connect"] = connect_from_args


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = Parser(
        prog="mcp-bastion",
        description="An OAuth 2.1 authorization gateway in front of MCP servers.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"mcp-bastion {__version__}: {build_description()}"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="debug logging, and tracebacks on errors (give it before COMMAND)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in _GROUPS:
        group.add(commands)
    add_connect_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_pin.with_default_action(list(sys.argv[1:] if argv is None else argv)))
    level = "debug" if args.debug else getattr(args, "log_level", None) or "info"
    configure_logging(
        level=level, log_format=getattr(args, "log_format", None) or "text", quiet_clients=not args.debug
    )
    try:
        return _dispatch(args)
    except BastionError as err:
        if args.debug:
            raise
        print(f"mcp-bastion: error: {err.message}", file=sys.stderr)
        hint = getattr(err, "hint", "")
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    handler = _HANDLERS.get(args.command)
    if handler is None:
        raise ConfigError(f"unknown command {args.command}")
    return handler(args)
