"""The official conformance suite's client ``auth/*`` scenarios, with ``mcp-bastion connect`` as the client.

The suite starts its own mock authorization server and MCP server per scenario and runs
:mod:`tests.conformance.connect_client` (the SDK's stdio client over ``connect --headless``),
then scores what it saw. Every core scenario must pass at every spec version it belongs
to, and so must every extension scenario: DPoP, and those whose flows ``connect --grant``
implements (``EXTENSIONS``); docs/connect.md, "Conformance".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.client_runner import CONNECT_CLIENT_COMMAND, SUITE_0_1_16, run_conformance_client

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

# Extension scenarios on no spec's timeline, each with the options it is run with
# (tests/conformance/connect_client.py maps the scenario's context to the options).
EXTENSIONS = [
    "auth/client-credentials-basic",  # --grant client_credentials --client-secret-file
    "auth/client-credentials-jwt",  # --grant client_credentials --private-key-file (private_key_jwt)
    "auth/wif-jwt-bearer",  # --grant jwt_bearer --assertion-file
    "auth/enterprise-managed-authorization",  # --grant id_jag (RFC 8693 at the IdP, then jwt-bearer)
    "auth/dpop",  # the browser login; DPoP (RFC 9449, SEP-1932) as the AS metadata offers it
    "auth/dpop-nonce",  # the same, with the AS's and the MCP server's nonces
]


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


# The suite's 0.1.16 release (installed beside 0.2.0 as conformance-0.1.16): every client
# auth scenario it has (`conformance list`), run as it runs them, with no spec version.
SUITE_0_1_16_AUTH = [
    *SINCE_2025_11_25,
    *ONLY_2025_03_26,
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/client-credentials-jwt",
    "auth/client-credentials-basic",
    "auth/cross-app-access-complete-flow",  # 0.2.0's enterprise-managed-authorization
]
# 0.1.16's backcompat server publishes, at its origin's RFC 8414 URL, metadata whose issuer
# is `<origin>/oauth`. RFC 8414 §3.3: such metadata MUST NOT be used (a mix-up), so connect
# stops before registering. 0.2.0 serves the same scenario with the origin as issuer, and
# connect passes it (CORE above).
SUITE_0_1_16_REFUSED = {
    "auth/2025-03-26-oauth-metadata-backcompat": {
        "client-registration",
        "authorization-request",
        "token-request",
    },
}


@pytest.mark.parametrize("scenario", SUITE_0_1_16_AUTH)
def test_connect_passes_the_0_1_16_auth_scenario(scenario: str, tmp_path: Path) -> None:
    result = run_conformance_client(
        CONNECT_CLIENT_COMMAND, scenario, None, tmp_path / "out", suite=SUITE_0_1_16
    )
    assert result.checks, "the scenario reported no checks"
    assert result.warnings == [], f"{scenario}: {[str(c) for c in result.warnings]}"
    failed = {check.id for check in result.failures}
    assert failed == SUITE_0_1_16_REFUSED.get(scenario, set()), [str(c) for c in result.failures]
