"""The `connect` subcommand's arguments, kept beside the package they drive."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._grant_cli import add_grant_arguments, grant_from_args
from .keyring_store import STORE_MODES
from .oauth import AuthOptions
from .registration import ClientChoice
from .tokens import default_store_path

__all__ = ["add_connect_command", "connect_from_args", "store_choice"]

CONNECT_DESCRIPTION = """Run a local stdio MCP server that forwards to a remote, OAuth-protected MCP server.

For MCP clients that only start local (stdio) servers: the client runs this command,
and it relays every message to URL over Streamable HTTP, doing the OAuth work itself:
it discovers the server's authorization server (RFC 9728, RFC 8414), registers (a
pre-registered --client-id, else a Client ID Metadata Document, else dynamic
registration), opens your browser to log in (PKCE, a loopback callback), and keeps the
tokens for the next run, in the OS keyring when there is one, else in a 0600 file. When the
authorization server offers DPoP, tokens are bound to a key kept with them (RFC 9449). stdout carries only MCP messages; logs and the
login URL go to stderr.

Claude Desktop / VS Code:
  {"command": "mcp-bastion", "args": ["connect", "https://gateway.example.com/notes/mcp"]}

examples:
  mcp-bastion connect https://gateway.example.com/notes/mcp
  mcp-bastion connect --headless https://gateway.example.com/notes/mcp   print the login URL
  mcp-bastion connect --client-id my-app --client-secret-file ~/.my-app-secret URL

without a browser (--grant; the tokens stay in memory):
  --grant client_credentials --client-id ID (--client-secret-file F | --private-key-file F)
  --grant jwt_bearer --client-id ID --assertion-file F        workload identity federation
  --grant id_jag --client-id ID --client-secret-file F --idp-issuer URL --idp-client-id ID
      --id-token-file F                                       enterprise-managed (ID-JAG)
"""


def add_connect_command(commands: Any) -> None:
    connect = commands.add_parser(
        "connect",
        help="a local stdio MCP server forwarding to a remote OAuth-protected one",
        description=CONNECT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connect.add_argument("url", metavar="URL", help="the remote MCP endpoint (https; http for loopback only)")
    connect.add_argument(
        "--headless",
        action="store_true",
        help="do not open a browser: print the login URL on stderr and wait for its callback",
    )
    connect.add_argument(
        "--client-id", metavar="ID", help="a client registered in advance at the authorization server"
    )
    connect.add_argument(
        "--client-secret-file",
        metavar="FILE",
        help="a file holding that client's secret (a confidential client; never on the command line)",
    )
    connect.add_argument(
        "--client-metadata-url",
        metavar="URL",
        help="an https URL serving this client's Client ID Metadata Document, used as client_id "
        "when the authorization server supports them",
    )
    connect.add_argument(
        "--scope", metavar="S", help="scopes to ask for besides those the server asks for (space-separated)"
    )
    add_grant_arguments(connect)
    connect.add_argument(
        "--token-store",
        metavar="|".join(STORE_MODES),
        default="auto",
        help="where tokens are kept: the OS keyring (needs the [keyring] extra), the token file, "
        "or auto: the OS keyring when one is usable, else the file (default: auto). "
        "A path here, as in earlier versions, means the file at that path",
    )
    connect.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"the token file, created 0600 (default: {default_store_path()})",
    )


def connect_from_args(args: argparse.Namespace) -> int:
    from . import ConnectOptions, run_connect

    secret = None
    if args.client_secret_file:
        if not args.client_id:
            raise ConfigError("--client-secret-file needs --client-id")
        try:
            secret = Path(args.client_secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read --client-secret-file {args.client_secret_file}: {exc.strerror}"
            ) from None
        if not secret:
            raise ConfigError(f"--client-secret-file {args.client_secret_file} is empty")
    mode, store = store_choice(args.token_store, args.token_file)
    auth = AuthOptions(
        store_path=store,
        headless=args.headless,
        client=ClientChoice(args.client_id, secret, args.client_metadata_url),
        scope=args.scope,
        grant=grant_from_args(args, secret),
        token_store=mode,
    )
    return run_connect(ConnectOptions(args.url, auth))


def store_choice(token_store: str, token_file: str | None) -> tuple[str, Path]:
    """The store mode and the token file's path from ``--token-store`` and ``--token-file``."""
    if token_store not in STORE_MODES:
        # `--token-store PATH`, the form before the keyring store: that file, as it was.
        token_store, token_file = "file", token_file or token_store
    return token_store, Path(token_file) if token_file else default_store_path()
