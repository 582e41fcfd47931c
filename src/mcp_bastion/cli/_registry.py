"""`mcp-bastion tools` and `mcp-bastion scopes export`: what each upstream offers and what the
identity provider must know."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..config import CONFIG_REFERENCE_URL, REPOSITORY_URL, load_config

__all__ = ["COMMANDS", "add", "run"]

COMMANDS = ("tools", "scopes")

IDP_SETUP_URL = f"{REPOSITORY_URL}/blob/main/docs/idp-setup.md"

TOOLS_EPILOG = f"""Each tool's scopes come from (FROM column, `source` in JSON):
  override    servers[].tools.<name>.scopes in the config (always wins)
  annotation  the upstream's readOnlyHint: true (read scope), destructiveHint: false
              (write scope) or destructiveHint: true (destructive_scopes, default: write)
  default     no hint, or trust_annotations: false: destructive_scopes (default: write)
The upstream is asked with the gateway's own credential (upstream_auth): with type minted and
no signing.key, the token is signed with a key of this process only, which an upstream that
verifies the gateway's JWKS refuses. Exit status 1 when any upstream could not be listed.

config reference: {CONFIG_REFERENCE_URL}
"""

SCOPES_EPILOG = f"""Formats (--idp):
  entra     app registration manifest fragments: identifierUris, api.oauth2PermissionScopes
  okta      custom authorization servers (audiences) and their scope objects
  keycloak  client scopes with an oidc-audience-mapper per resource (admin REST API)
  auth0     resource servers (APIs) as the Management API creates them
  generic   resources and their scopes, for any other IdP
The JSON goes to stdout and a one-line how-to to stderr. Secrets are not read.

walk-through per IdP: {IDP_SETUP_URL}
"""


def add(commands: Any) -> None:
    tools = commands.add_parser(
        "tools",
        help="list each upstream's live tools and the scopes each needs",
        description="Ask each configured upstream for its tools (as the gateway would) and show "
        "the annotations, the scopes a caller needs and where that requirement comes from.",
        epilog=TOOLS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tools.add_argument("--config", required=True, metavar="FILE", help="the YAML config `serve` uses")
    tools.add_argument("server", nargs="?", metavar="SERVER", help="only this server (its `name`)")
    tools.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    tools.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per upstream request (default: 10)"
    )
    scopes = commands.add_parser("scopes", help="what to register at your identity provider")
    actions = scopes.add_subparsers(dest="scopes_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="the resource URLs and scopes, in an IdP's own format",
        description="Print what the identity provider must know: each server's resource URL "
        "(the token audience, byte-identical to its protected resource metadata) and every "
        "scope a call may need, with descriptions, in the chosen IdP's own terms.",
        epilog=SCOPES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--config", required=True, metavar="FILE", help="the YAML config `serve` uses")
    export.add_argument("--idp", required=True, choices=("entra", "okta", "keycloak", "auth0", "generic"))
    export.add_argument("--format", choices=("json", "table"), default="json", help="default: json")


def run(args: argparse.Namespace) -> int:
    from .. import registry
    from ..registry.idp import INTROS
    from ..registry.report import resources_table, tools_document, tools_table

    if args.command == "tools":
        loaded = load_config(args.config)
        servers = asyncio.run(registry.published_tools(loaded, server=args.server, timeout=args.timeout))
        print(
            json.dumps(tools_document(servers), indent=2) if args.format == "json" else tools_table(servers)
        )
        return 1 if any(server.error for server in servers) else 0
    resources = registry.published_resources(load_config(args.config, read_secrets=False).config)
    if args.format == "table":
        print(resources_table(resources))
        return 0
    print(INTROS[args.idp], f"Walk-through: {IDP_SETUP_URL}", file=sys.stderr)
    print(json.dumps(registry.idp_document(args.idp, resources), indent=2))
    return 0
