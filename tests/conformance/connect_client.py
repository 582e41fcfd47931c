"""The client command the conformance suite runs: the SDK's stdio client over ``mcp-bastion connect``.

The suite runs ``python -m tests.conformance.connect_client SERVER_URL`` with
``MCP_CONFORMANCE_SCENARIO``, ``MCP_CONFORMANCE_PROTOCOL_VERSION`` and, for some scenarios,
``MCP_CONFORMANCE_CONTEXT`` (pre-registered credentials) in the environment. This adapter
does what a user's MCP host would: it spawns ``connect --headless`` with the options a user
would give (a pre-registered client when the scenario hands one out; always a Client ID
Metadata Document URL, which connect uses only when the authorization server supports
them; for the extension scenarios, the ``--grant`` their deployment would configure, with
the credentials of the context in 0600 files, as a user would keep them), follows the login URL connect prints (the suite's authorization server approves at
once), lists the tools and calls each one. Exit status 0 when all of that worked.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from mcp.types import Tool

from tests.connect.stdio_connect import ScriptedBrowser, connect_client

# The document URL the suite's basic-cimd scenario expects as client_id.
CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"


def _mode(version: str | None) -> str:
    return "2026-07-28" if version == "2026-07-28" else "legacy"


# The extension scenarios, and the grant a deployment of that kind configures.
GRANTS = {
    "auth/client-credentials-basic": "client_credentials",
    "auth/client-credentials-jwt": "client_credentials",
    "auth/wif-jwt-bearer": "jwt_bearer",
    "auth/enterprise-managed-authorization": "id_jag",
    "auth/cross-app-access-complete-flow": "id_jag",  # 0.1.16's name for the same flow
}


def _file(scratch: Path, name: str, text: str) -> str:
    path = scratch / name
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
    return str(path)


def _arguments(context: dict[str, object], scratch: Path, scenario: str) -> list[str]:
    extra = ["--client-metadata-url", CLIENT_METADATA_URL]
    client_id, secret = context.get("client_id"), context.get("client_secret")
    if isinstance(client_id, str):
        extra += ["--client-id", client_id]
        if isinstance(secret, str):
            extra += ["--client-secret-file", _file(scratch, "client-secret", secret)]
    grant = GRANTS.get(scenario)
    if grant is None:
        return extra
    extra += ["--grant", grant]
    text = {k: v for k, v in context.items() if isinstance(v, str)}
    if "private_key_pem" in text:
        extra += ["--private-key-file", _file(scratch, "client-key.pem", text["private_key_pem"])]
        extra += ["--signing-alg", text.get("signing_algorithm", "ES256")]
    if grant == "jwt_bearer":
        extra += ["--assertion-file", _file(scratch, "workload.jwt", text["valid_jwt"])]
    if grant == "id_jag":
        extra += ["--idp-issuer", text["idp_issuer"], "--idp-client-id", text["idp_client_id"]]
        extra += ["--id-token-file", _file(scratch, "id-token.jwt", text["idp_id_token"])]
    return extra


async def _run(url: str) -> int:
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    mode = _mode(os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION"))
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    with tempfile.TemporaryDirectory(prefix="connect-conformance-") as scratch:
        store = Path(scratch) / "tokens.json"
        browser = ScriptedBrowser()
        try:
            async with connect_client(
                url, store, mode=mode, extra=_arguments(context, Path(scratch), scenario), browser=browser
            ) as (client, _):
                tools: list[Tool] = (await client.list_tools()).tools
                for tool in tools:
                    result = await client.call_tool(tool.name, {})
                    if result.is_error:
                        print(f"tool {tool.name} failed: {result.content}", file=sys.stderr)
                        return 1
        except Exception as exc:
            print(f"connect_client: {type(exc).__name__}: {exc}", file=sys.stderr)
            sys.stderr.write(browser.text)
            return 1
        sys.stderr.write(browser.text)
    return 0


def main() -> int:
    return asyncio.run(_run(sys.argv[-1]))


if __name__ == "__main__":
    sys.exit(main())
