"""Label values come from fixed sets: caller text never mints a time series of its own."""

from __future__ import annotations

import pytest

from mcp_bastion.telemetry.labels import MCP_METHODS, method_label, reason_label


def test_known_methods_are_their_own_label_and_anything_else_is_other() -> None:
    assert method_label("tools/call") == "tools/call"
    assert method_label("") == "response"
    # A client may send any method name: a million of them must stay one series.
    labels = {method_label(f"tools/call{i}") for i in range(1000)} | {method_label("x" * 10_000)}
    assert labels == {"other"}
    assert all(method_label(m) == m for m in MCP_METHODS)


@pytest.mark.parametrize(
    ("decision", "status", "reason", "label"),
    [
        ("allow", 200, "", "ok"),
        ("allow", 200, "client disconnected", "client_disconnected"),
        ("deny", 401, "no bearer token", "missing_token"),
        ("deny", 401, "token signature does not verify", "invalid_token"),
        ("deny", 403, "the token lacks scopes this call needs", "insufficient_scope"),
        ("deny", 403, "refused by policy", "forbidden"),
        ("deny", 400, "Header mismatch: Mcp-Name is 'evil\ntool'", "invalid_request"),
        ("error", 502, "upstream answered HTTP 503", "upstream_error"),
        ("error", 504, "upstream did not answer", "upstream_timeout"),
        ("deny", 499, "anything at all", "other"),
    ],
)
def test_reasons_are_a_fixed_vocabulary_never_the_message(
    decision: str, status: int, reason: str, label: str
) -> None:
    assert reason_label(decision, status, reason) == label
