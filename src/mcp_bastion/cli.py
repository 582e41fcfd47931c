"""The `mcp-bastion` command: parse arguments, build config, call the library, print for humans.

A user's mistake ends with one line saying what was wrong and a hint: exit status 2 for the
command line itself (an option's value), 1 for everything else; `--debug` shows the traceback
instead. `--help` stands on its own: an installed user has no docs/ folder, so it names the
published documentation.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .config import CONFIG_REFERENCE_URL, REPOSITORY_URL, config_json_schema, config_warnings, load_config
from .config.model import BastionConfig, FilterConfig
from .connect._cli import add_connect_command, connect_from_args
from .errors import BastionError, ConfigError
from .logs import LOG_LEVELS, configure_logging
from .native import build_description

__all__ = ["main"]

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

SERVE_DESCRIPTION = f"""Run the gateway from a YAML config file.

Before listening, serve runs every check check-config runs: the file's structure, its
cross-references, and the secrets it names (read from environment variables or files,
their contents checked). A config that fails stops serve with one line naming the file and
key; legal-but-risky settings are logged as warnings. Then it binds listen.host:listen.port
and serves until SIGINT (Ctrl-C) or SIGTERM; either stops it gracefully.

config reference: {CONFIG_REFERENCE_URL}
"""

DEMO_DESCRIPTION = """Run everything on one machine to try mcp-bastion: a development OAuth IdP, two
sample MCP servers and the gateway protecting them. The gateway and the IdP share one
port; the sample servers listen on free loopback ports. The URLs and a client
configuration to paste are printed once it is ready. Ctrl-C stops everything.

The development IdP approves any user name: never expose it (hence --allow-remote).
"""

WRAP_DESCRIPTION = """Put one stdio MCP server (a plug-in) behind the whole gateway, on loopback.

The command after -- is run without a shell, one process per signed-in user by default
(--process shared: one for everyone), at http://HOST:PORT/NAME/mcp. Without --config, the
development IdP shares the port, as in the demo (never expose it: it approves any user
name); with --config FILE, the plug-in is added to that serve config and its IdPs are
trusted instead. Every request the plug-in receives carries the caller's identity as a
token the gateway signs, in _meta["io.github.mcp-bastion/identity"] (docs/stdio.md).

The plug-in's environment is only PATH, HOME, LANG, TMPDIR and each --env NAME.
"""

CHECK_DESCRIPTION = f"""Validate a config file the way serve does, without serving, and explain it.

Checks the YAML (a key written twice in one mapping is an error), every key and value,
the cross-references (server and identity provider names, the scopes tool overrides
name), and, unless --skip-secrets, the secrets the file names: each environment variable
or file must exist and hold a usable value (sessions.key: 32 bytes in base64; signing.key:
a private JWK for signing.algorithm; a static upstream secret: one header line), and
audit.path must be writable. Prints a summary on stdout and warnings for legal-but-risky
settings on stderr.

exit status: 0 valid (warnings or not), 1 invalid (one line naming the file and key), 2 bad usage.
config reference: {CONFIG_REFERENCE_URL}
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and a hint, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n  hint: '{self.prog} --help' describes every option\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, found {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, found {port}")
    return port


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes from 1 to 64, found {text!r}"
        ) from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 1 to 64, found {count}")
    return count


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
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

    serve = commands.add_parser(
        "serve",
        help="run the gateway from a config file",
        description=SERVE_DESCRIPTION,
        formatter_class=formatter,
    )
    serve.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="the YAML config file (required; 'mcp-bastion schema' prints its JSON Schema)",
    )
    serve.add_argument("--host", metavar="ADDRESS", help="address to bind (overrides listen.host)")
    serve.add_argument("--port", type=_port, metavar="PORT", help="TCP port (overrides listen.port)")
    serve.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="text lines, or one JSON object a line"
    )
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="default: info")
    serve.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="worker processes sharing the port, 1 to 64 (default: listen.workers from the config, itself 1)",
    )
    demo = commands.add_parser(
        "demo",
        help="run the development IdP, two sample MCP servers and the gateway",
        description=DEMO_DESCRIPTION,
        formatter_class=formatter,
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port for the gateway and the IdP, 0 to 65535; 0 picks a free port, printed at start (default: 8000)",
    )
    demo.add_argument(
        "--auto-approve",
        metavar="USER",
        help="approve every login at once as USER, with no consent page (for scripts)",
    )
    demo.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the development IdP approves anyone: not for real use)",
    )
    demo.add_argument(
        "--serve-config",
        metavar="FILE",
        help="a `serve` config to run beside the demo (examples/dev.yaml): the dev IdP also issues "
        "tokens for its servers, and its loopback upstreams named demo and notes are the samples",
    )

    wrap = commands.add_parser(
        "wrap",
        help="put a stdio MCP server behind the gateway (with the development IdP, or --config)",
        description=WRAP_DESCRIPTION,
        formatter_class=formatter,
    )
    wrap.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    wrap.add_argument(
        "--port", type=_port, default=8000, help="port, 0 to 65535; 0 picks a free port (default: 8000)"
    )
    wrap.add_argument("--name", default="local", help="the server's path segment (default: local)")
    wrap.add_argument("--auto-approve", metavar="USER", help="approve every login at once as USER (dev IdP)")
    wrap.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host with the development IdP"
    )
    wrap.add_argument("--config", metavar="FILE", help="a serve config whose IdPs to trust (no dev IdP)")
    wrap.add_argument(
        "--process",
        choices=("per_subject", "shared"),
        default="per_subject",
        help="one process per user (default) or one shared by everyone",
    )
    wrap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this variable to the plug-in (repeatable)",
    )
    wrap.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the stdio server to run")

    check = commands.add_parser(
        "check-config",
        help="validate a config file (secrets included) and explain it",
        description=CHECK_DESCRIPTION,
        formatter_class=formatter,
    )
    check.add_argument("file", metavar="FILE", help="the YAML config file")
    check.add_argument(
        "--json",
        action="store_true",
        help="print the validated config, defaults filled in, as JSON instead of the summary",
    )
    check.add_argument(
        "--skip-secrets",
        action="store_true",
        help="check the file alone: do not read the secrets it names (environment variables, files) "
        "nor look at audit.path; for CI, or a machine without the secrets",
    )

    commands.add_parser(
        "schema",
        help="print the config file's JSON Schema",
        description="Print the JSON Schema of the config file (for editors and CI validators).",
    )
    _add_registry_commands(commands)
    _add_policy_commands(commands)
    _add_pin_commands(commands)
    add_connect_command(commands)
    return parser


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


def _add_registry_commands(commands: Any) -> None:
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


POLICY_DOCS_URL = f"{REPOSITORY_URL}/blob/main/docs/policy.md"

EXPLAIN_EPILOG = f"""Answers "why was this call allowed or refused?" without an IdP or an upstream: the
decision the gateway would make (scopes, then Cedar policies), each policy that matched and
its text, the facts the policies saw (principal, action, resource, context), and for a tool
whether tools/list would show it.

JSON arguments are given inline or as @FILE. --call takes a JSON-RPC request; "jsonrpc" and
"id" may be left out:
  --call '{{"method": "tools/call", "params": {{"name": "delete_file", "arguments": {{"path": "/tmp/x"}}}}}}'
--token-claims takes the access token's claims (its payload), e.g.
  --token-claims '{{"iss": "https://login.example.com", "sub": "alice", "scope": "tools.read", "groups": ["ops"]}}'
The tool's annotations come from the upstream's tools/list, which is not asked: give them with
--annotations '{{"readOnlyHint": true}}'; without, the tool counts as unknown (the worst case).

exit status: 0 allowed, 3 refused, 1 error (one line saying what), 2 bad usage.
policies: {POLICY_DOCS_URL}
"""


def _add_policy_commands(commands: Any) -> None:
    policy = commands.add_parser("policy", help="Cedar policies: explain a decision, print the schema")
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    explain = actions.add_parser(
        "explain",
        help="why a call would be allowed or refused",
        description="Decide one call as the gateway would and explain the decision.",
        epilog=EXPLAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("--config", required=True, metavar="FILE", help="the YAML config `serve` uses")
    explain.add_argument(
        "--token-claims", required=True, metavar="JSON", help="the token's claims (or @FILE)"
    )
    explain.add_argument("--call", required=True, metavar="JSON", help="the JSON-RPC request (or @FILE)")
    explain.add_argument("--server", metavar="NAME", help="the server (required when the config has several)")
    explain.add_argument(
        "--annotations", metavar="JSON", help="the tool's annotations as its upstream lists them (or @FILE)"
    )
    explain.add_argument(
        "--at",
        metavar="TIME",
        help="decide at this ISO 8601 time (2026-01-05T20:30:00+01:00; without an offset, in "
        "policy.timezone); default: now",
    )
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    schema = actions.add_parser(
        "schema",
        help="print the Cedar schema policies are validated against",
        description="Print the Cedar schema the gateway generates from the config: the principal's "
        "attributes (with the claims in policy.claims), the actions (MCP methods), the resources "
        "and the context. Policies are validated against it at load.",
        epilog=f"policies: {POLICY_DOCS_URL}",
    )
    schema.add_argument("--config", required=True, metavar="FILE", help="the YAML config `serve` uses")
    schema.add_argument("--json", action="store_true", help="Cedar's JSON schema format instead of its text")


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


def _add_pin_commands(commands: Any) -> None:
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


def _pin_action(argv: list[str]) -> list[str]:
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_pin_action(list(sys.argv[1:] if argv is None else argv)))
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
    if args.command == "check-config":
        return _check_config(args.file, as_json=args.json, skip_secrets=args.skip_secrets)
    if args.command == "schema":
        print(json.dumps(config_json_schema(), indent=2))
        return 0
    if args.command == "serve":
        from .serving import serve

        serve(load_config(args.config), workers=args.workers, host=args.host, port=args.port)
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command == "wrap":
        return _wrap(args)
    if args.command in ("tools", "scopes"):
        return _registry(args)
    if args.command == "policy":
        return _policy(args)
    if args.command == "pin":
        return _pin(args)
    if args.command == "connect":
        return connect_from_args(args)
    raise ConfigError(f"unknown command {args.command}")


def _check_config(path: str, *, as_json: bool, skip_secrets: bool) -> int:
    loaded = load_config(path, read_secrets=not skip_secrets)
    config = loaded.config
    if not skip_secrets:
        from .pinning import check_lockfiles

        check_lockfiles(config, path)  # the files serve reads at start-up, like the secrets
    warnings = config_warnings(config)
    if as_json:
        print(json.dumps(config.model_dump(mode="json"), indent=2))
    else:
        _explain_config(path, config, skip_secrets=skip_secrets, warnings=len(warnings))
    sys.stdout.flush()  # the summary, then the warnings below it, on a terminal
    for warning in warnings:
        print(f"mcp-bastion: warning: {path}: {warning}", file=sys.stderr)
    return 0


def _explain_config(path: str, config: BastionConfig, *, skip_secrets: bool, warnings: int) -> None:
    checked = "secrets not read (--skip-secrets)" if skip_secrets else "secrets checked"
    noted = f", {warnings} warning{'s' if warnings != 1 else ''} (on stderr)" if warnings else ""
    print(f"{path}: valid, {checked}{noted}")
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
        target = server.upstream or "stdio: " + " ".join(server.command or ())
        print(f"  server {server.name}: {resource} -> {target} ({auth})")
        pinning = server.pinning
        print(f"    pinning {pinning.mode}{f', lockfile {pinning.lockfile}' if pinning.lockfile else ''}")
        for tool, policy in server.tools.items():
            print(f"    tool {tool}: needs {' '.join(policy.scopes) or 'no scope (any valid token)'}")
        files = (*config.policy.files, *server.policy_files)
        if files:
            print(f"    Cedar policies: {', '.join(files)}")
        for spec in server.filters:
            print(f"    filter {spec.id}: {_filter_summary(spec)}")
    print(
        f"  scopes            read={config.scopes.read} write={config.scopes.write} admin={config.scopes.admin}"
    )
    print(f"  audit             {config.audit.sink}{' ' + config.audit.path if config.audit.path else ''}")


def _registry(args: argparse.Namespace) -> int:
    from . import registry
    from .registry.idp import INTROS
    from .registry.report import resources_table, tools_document, tools_table

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


def _policy(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        from .cedar.schema import cedar_schema

        config = load_config(args.config, read_secrets=False).config
        document = cedar_schema(config.policy)
        if args.json:
            print(json.dumps(document, indent=2))
            return 0
        try:
            import cedarpy
        except ModuleNotFoundError:
            raise ConfigError(
                "the schema as Cedar text needs the [cedar] extra (cedarpy is not installed); --json needs nothing",
                hint="pip install 'mcp-bastion[cedar]'",
            ) from None
        text = str(cedarpy.Schema.from_json_str(json.dumps(document)))
        # Cedar spells its built-in types `__cedar::String`; no type of ours shadows them.
        print(text.replace("__cedar::", "").strip())
        return 0
    loaded = load_config(args.config, read_secrets=False)
    from .cedar.explain import explain_call, render

    explanation = explain_call(
        loaded,
        claims=_json_object(args.token_claims, "--token-claims"),
        message=_json_object(args.call, "--call"),
        server=args.server,
        annotations=_json_object(args.annotations, "--annotations") if args.annotations else None,
        at=_instant(args.at) if args.at else None,
    )
    print(json.dumps(explanation.document(), indent=2) if args.json else render(explanation))
    return 0 if explanation.decision.allowed else 3


def _json_object(text: str, option: str) -> dict[str, Any]:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{option}: cannot read {text[1:]!r} ({getattr(exc, 'strerror', None) or exc})"
            ) from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option}: expected a JSON object, found {type(value).__name__}")
    return value


def _instant(text: str) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--at: expected an ISO 8601 time such as 2026-01-05T20:30:00+01:00, found {text!r}"
        ) from None


def _pin(args: argparse.Namespace) -> int:
    from .pinning.commands import diff_servers, pin_servers
    from .pinning.diff import diff_document, diff_text
    from .registry.report import printable

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


def _demo(args: argparse.Namespace) -> int:
    try:
        from .demo.stack import DemoOptions, render_announcement, run_demo
    except ModuleNotFoundError as exc:
        # A production install leaves out the demo's web stack (the `[demo]` extra).
        raise ConfigError(
            f"the demo needs the [demo] extra ({exc.name} is not installed)",
            hint="pip install 'mcp-bastion[demo]'",
        ) from None

    companion = load_config(args.serve_config, read_secrets=False).config if args.serve_config else None
    options = DemoOptions(args.host, args.port, args.auto_approve, args.allow_remote, companion)

    def announce(stack: object) -> None:
        print(render_announcement(stack, args.auto_approve), flush=True)  # type: ignore[arg-type]

    asyncio.run(run_demo(options, announce))
    return 0


def _filter_summary(spec: FilterConfig) -> str:
    """`secrets on result, redact`: what a safety filter does, for check-config's explanation."""
    if spec.type == "poisoning":
        what = f"poisoning of tool definitions, {spec.mode}"
    elif spec.type == "guard":
        what = f"guard {spec.url} on {', '.join(spec.screen)}, {spec.timeout_seconds:g} s, fails {'open' if spec.on_failure == 'allow' else 'closed'}"
    else:
        what = f"{spec.type} on {', '.join(spec.screen)}, {spec.action}"
    if spec.tools is not None:
        what += f"; only {', '.join(spec.tools)}"
    if spec.skip_tools:
        what += f"; not {', '.join(spec.skip_tools)}"
    return what


def _wrap(args: argparse.Namespace) -> int:
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise ConfigError(
            "no command to wrap", hint="mcp-bastion wrap -- npx -y @modelcontextprotocol/server-everything"
        )
    try:
        from .stdio.wrap import WrapOptions, WrapStack, render_wrap, run_wrap, wrap_config
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"wrap needs the [demo] extra ({exc.name} is not installed)",
            hint="pip install 'mcp-bastion[demo]'",
        ) from None
    options = WrapOptions(
        tuple(command),
        args.name,
        args.host,
        args.port,
        args.auto_approve,
        args.allow_remote,
        args.process,
        tuple(args.env),
    )
    if args.config is not None:
        from .serving import serve

        loaded = wrap_config(load_config(args.config), options)
        base = loaded.config.public_base_url
        print(
            render_wrap(WrapStack(base, None, options.name, loaded.config, None), command, None), flush=True
        )
        serve(loaded)
        return 0

    def announce(stack: WrapStack) -> None:
        print(render_wrap(stack, command, args.auto_approve), flush=True)

    asyncio.run(run_wrap(options, announce))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
