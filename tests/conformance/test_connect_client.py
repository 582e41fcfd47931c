"""The official conformance suite's client ``auth/*`` scenarios, with ``mcp-bastion connect`` as the client.

The suite starts its own mock authorization server and MCP server per scenario and runs
:mod:`tests.conformance.connect_client` (the SDK's stdio client over ``connect --headless``),
then scores what it saw. Every core scenario must pass at every spec version it belongs
to, and so must the extension scenarios it implements (``EXTENSIONS``: DPoP). The other
extension scenarios need flows ``connect`` does not implement; each is listed in
``EXTENSIONS_NOT_IMPLEMENTED`` with the reason, and is run to check that it still fails
for that reason only (docs/connect.md, "Conformance").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.client_runner import CONNECT_CLIENT_COMMAND, run_conformance_client

pytestmark = [pytest.mark.conformance, pytest.mark.node]

# Scenario -> the spec versions it is scored at (`npx conformance list`, 0.2.0-alpha.12).
SINCE_2025_11_25 = [
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
]
ONLY_2026_07_28 = [
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/authorization-server-migration",
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
]
ONLY_2025_03_26 = ["auth/2025-03-26-oauth-metadata-backcompat", "auth/2025-03-26-oauth-endpoint-fallback"]

CORE = (
    [(s, "2025-11-25") for s in SINCE_2025_11_25]
    + [(s, "2026-07-28") for s in SINCE_2025_11_25 + ONLY_2026_07_28]
    + [(s, "2025-03-26") for s in ONLY_2025_03_26]
)

# Extension scenarios connect implements, run outside any spec's timeline: DPoP (RFC 9449,
# SEP-1932), with and without server nonces (docs/connect.md, "DPoP").
EXTENSIONS = ["auth/dpop", "auth/dpop-nonce"]

# Extension scenarios: machine-to-machine flows an interactive
# user's stdio bridge does not do (yet). The checks that fail, and why.
EXTENSIONS_NOT_IMPLEMENTED = {
    "auth/client-credentials-jwt": (
        {"client-credentials-grant-type", "client-credentials-jwt-verified"},
        "client_credentials with private_key_jwt: no user, no browser; not a connect flow",
    ),
    "auth/client-credentials-basic": (
        {"client-credentials-grant-type", "client-credentials-basic-auth"},
        "client_credentials with a client secret: not a connect flow",
    ),
    "auth/enterprise-managed-authorization": (
        {"complete-flow-token-exchange", "complete-flow-jwt-bearer"},
        "ID-JAG token exchange (RFC 8693) then JWT bearer grant: needs an enterprise IdP session connect does not have",
    ),
    "auth/wif-jwt-bearer": (
        {"wif-grant-type"},
        "workload identity federation (JWT bearer grant from a platform token): not a connect flow",
    ),
}


@pytest.mark.parametrize(("scenario", "spec_version"), CORE, ids=[f"{s}@{v}" for s, v in CORE])
def test_connect_passes_the_core_auth_scenario(scenario: str, spec_version: str, tmp_path: Path) -> None:
    result = run_conformance_client(CONNECT_CLIENT_COMMAND, scenario, spec_version, tmp_path / "out")
    assert result.checks, "the scenario reported no checks"
    assert result.failures == [], f"{scenario}@{spec_version}: {[str(c) for c in result.failures]}"
    assert result.warnings == [], f"{scenario}@{spec_version}: {[str(c) for c in result.warnings]}"


@pytest.mark.parametrize("scenario", EXTENSIONS)
def test_connect_passes_the_extension_scenario(scenario: str, tmp_path: Path) -> None:
    result = run_conformance_client(CONNECT_CLIENT_COMMAND, scenario, None, tmp_path / "out")
    assert result.checks, "the scenario reported no checks"
    assert result.failures == [], f"{scenario}: {[str(c) for c in result.failures]}"
    assert result.warnings == [], f"{scenario}: {[str(c) for c in result.warnings]}"


@pytest.mark.parametrize("scenario", sorted(EXTENSIONS_NOT_IMPLEMENTED))
def test_extension_scenarios_fail_only_for_the_flow_connect_does_not_implement(
    scenario: str, tmp_path: Path
) -> None:
    expected, _why = EXTENSIONS_NOT_IMPLEMENTED[scenario]
    result = run_conformance_client(CONNECT_CLIENT_COMMAND, scenario, None, tmp_path / "out")
    # When this fails because the set shrank, the flow was implemented: move it to CORE.
    assert {check.id for check in result.failures} == expected
