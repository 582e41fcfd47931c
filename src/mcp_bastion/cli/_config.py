"""`mcp-bastion check-config` and `mcp-bastion schema`: a config validated and explained
without serving, and the JSON Schema of the file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..config import CONFIG_REFERENCE_URL, config_json_schema, config_warnings, load_config
from ..config.model import BastionConfig, FilterConfig
from ._common import FORMATTER

__all__ = ["COMMANDS", "add", "run"]

COMMANDS = ("check-config", "schema")

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


def add(commands: Any) -> None:
    formatter = FORMATTER
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


def run(args: argparse.Namespace) -> int:
    if args.command == "schema":
        print(json.dumps(config_json_schema(), indent=2))
        return 0
    return _check_config(args.file, as_json=args.json, skip_secrets=args.skip_secrets)


def _check_config(path: str, *, as_json: bool, skip_secrets: bool) -> int:
    loaded = load_config(path, read_secrets=not skip_secrets)
    config = loaded.config
    if not skip_secrets:
        from ..pinning import check_lockfiles

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
