"""`mcp-bastion policy explain` and `policy schema`: Cedar decisions explained offline."""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from ..config import REPOSITORY_URL, load_config
from ..errors import ConfigError

__all__ = ["COMMANDS", "add", "run"]

COMMANDS = ("policy",)

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


def add(commands: Any) -> None:
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


def run(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        from ..cedar.schema import cedar_schema

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
    from ..cedar.explain import explain_call, render

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
