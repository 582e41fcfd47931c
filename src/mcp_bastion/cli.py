"""The `mcp-bastion` command: parse arguments, build config, call the library, print for humans.

A user's mistake ends with one line saying what was wrong and a hint, exit status 1;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .config import config_json_schema, load_config
from .errors import BastionError, ConfigError
from .native import build_description

__all__ = ["main"]

EPILOG = """examples:
  mcp-bastion demo                          everything embedded, on http://127.0.0.1:8000
  mcp-bastion demo --auto-approve alice     the dev IdP approves logins at once as alice
  mcp-bastion serve --config bastion.yaml   the production gateway
  mcp-bastion check-config bastion.yaml     validate and explain a config
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-bastion",
        description="An OAuth 2.1 authorization gateway in front of MCP servers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"mcp-bastion {__version__}: {build_description()}"
    )
    parser.add_argument("--debug", action="store_true", help="debug logging, and tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway from a config file")
    serve.add_argument("--config", required=True, metavar="FILE", help="the YAML config (see docs/config.md)")
    serve.add_argument("--workers", type=int, metavar="N", help="worker processes (overrides listen.workers)")

    demo = commands.add_parser("demo", help="run the development IdP, two sample MCP servers and the gateway")
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port for the gateway and IdP (default: 8000)")
    demo.add_argument(
        "--auto-approve", metavar="USER", help="approve every login at once as USER (for scripts)"
    )
    demo.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (the dev IdP is not secure)"
    )

    check = commands.add_parser("check-config", help="validate a config file and explain it")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--json", action="store_true", help="print the validated config as JSON")
    check.add_argument(
        "--skip-secrets",
        action="store_true",
        help="do not read the secrets the config names (env vars, files)",
    )

    commands.add_parser("schema", help="print the config file's JSON Schema")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.debug:
        # Request lines of the HTTP clients are noise next to the audit feed.
        for name in ("httpx", "httpx2", "mcp"):
            logging.getLogger(name).setLevel(logging.WARNING)
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
    if args.command == "check-config":
        return _check_config(args.file, as_json=args.json, skip_secrets=args.skip_secrets)
    if args.command == "schema":
        print(json.dumps(config_json_schema(), indent=2))
        return 0
    if args.command == "serve":
        from .serving import serve

        serve(load_config(args.config), workers=args.workers)
        return 0
    if args.command == "demo":
        return _demo(args)
    raise ConfigError(f"unknown command {args.command}")


def _check_config(path: str, *, as_json: bool, skip_secrets: bool) -> int:
    loaded = load_config(path, read_secrets=not skip_secrets)
    config = loaded.config
    if as_json:
        print(json.dumps(config.model_dump(mode="json"), indent=2))
        return 0
    print(f"{path}: valid")
    print(f"  public base URL   {config.public_base_url}")
    print(
        f"  listen            {config.listen.host}:{config.listen.port} ({config.listen.workers} worker(s))"
    )
    for idp in config.identity_providers:
        keys = idp.jwks_uri or "discovered from issuer metadata"
        typ = idp.require_typ or "any"
        print(f"  identity provider {idp.name}: issuer {idp.issuer}, keys {keys}, typ {typ}")
    for server in config.servers:
        resource = f"{config.public_base_url}/{server.name}/mcp"
        auth = f"upstream auth {server.upstream_auth.type}" if server.auth else "AUTH OFF"
        print(f"  server {server.name}: {resource} -> {server.upstream} ({auth})")
        for tool, policy in server.tools.items():
            print(f"    tool {tool}: needs {' '.join(policy.scopes)}")
    print(
        f"  scopes            read={config.scopes.read} write={config.scopes.write} admin={config.scopes.admin}"
    )
    print(f"  audit             {config.audit.sink}{' ' + config.audit.path if config.audit.path else ''}")
    if config.sessions.key is None:
        print("  warning: sessions.key is not set; session ids will not survive restarts or cross replicas")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo.stack import DemoOptions, render_announcement, run_demo

    options = DemoOptions(args.host, args.port, args.auto_approve, args.allow_remote)

    def announce(stack: object) -> None:
        print(render_announcement(stack, args.auto_approve), flush=True)  # type: ignore[arg-type]

    asyncio.run(run_demo(options, announce))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
