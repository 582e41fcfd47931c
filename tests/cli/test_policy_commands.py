"""`mcp-bastion policy explain` and `policy schema` as a user runs them: offline, in a process
of their own, against the example config."""

from __future__ import annotations

import json
from pathlib import Path

from .test_commands import EXAMPLES, run_cli

CONFIG = str(EXAMPLES / "policies" / "bastion.yaml")
ALICE = json.dumps({"sub": "alice", "scope": "tools.read tools.write", "groups": ["dev"]})


def _call(name: str, **arguments: object) -> str:
    return json.dumps({"method": "tools/call", "params": {"name": name, "arguments": arguments}})


def test_explain_says_which_policy_refused_and_why() -> None:
    result = run_cli(
        "policy", "explain", "--config", CONFIG, "--server", "files", "--token-claims", ALICE,
        "--call", _call("write_file", path="/etc/passwd"),
        "--annotations", '{"destructiveHint": false}', "--at", "2026-01-05T10:00:00",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    out = result.stdout
    assert "decision: DENY (403: refused by policy) [files-path-under-shared]" in out
    assert "matched  forbid files-path-under-shared  (path-under-prefix.cedar:6)" in out
    assert 'context.arguments.getTag("path") like "/srv/shared/*"' in out  # the rule's text: the why
    assert "matched  permit after-scopes  (baseline.cedar:3)" in out
    assert "no match forbid destructive-needs-ops" in out
    assert '"arguments":{"path":"/etc/passwd"}' in out  # the facts it saw
    assert "scopes: required tools.write; granted tools.read tools.write; nothing missing" in out
    assert "tools/list: listed" in out  # another path would pass: the tool stays listed


def test_explain_allows_and_exits_zero() -> None:
    result = run_cli(
        "policy", "explain", "--config", CONFIG, "--server", "files", "--token-claims", ALICE,
        "--call", _call("write_file", path="/srv/shared/notes.txt"), "--annotations", '{"destructiveHint": false}',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "decision: ALLOW" in result.stdout


def test_explain_the_working_hours_rule_at_a_given_time_as_json(tmp_path: Path) -> None:
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"sub": "svc", "client_id": "nightly-agent", "scope": "tools.write"}))
    args = ["policy", "explain", "--config", CONFIG, "--server", "tickets", "--token-claims", f"@{claims}"]
    call = [
        "--call",
        _call("close_ticket"),
        "--annotations",
        '{"readOnlyHint": false, "destructiveHint": false}',
    ]
    # 20:30 in Paris (policy.timezone) on a Monday: outside working hours.
    evening = run_cli(*args, *call, "--at", "2026-01-05T20:30:00", "--json")
    assert evening.returncode == 3, evening.stderr
    document = json.loads(evening.stdout)
    assert document["decision"] == "deny"
    assert document["policy_ids"] == ["nightly-agent-reads-after-hours"]
    assert document["request"]["context"]["time"] == {"hour": 20, "minute": 30, "weekday": 1}
    assert document["tools_list"] == {"listed": False, "policy_ids": ["nightly-agent-reads-after-hours"]}
    assert [r["id"] for r in document["rules"] if r["matched"]] == [
        "after-scopes",
        "nightly-agent-reads-after-hours",
    ]
    morning = run_cli(*args, *call, "--at", "2026-01-05T09:30:00+01:00")
    assert morning.returncode == 0, morning.stderr


def test_explain_names_missing_scopes_apart_from_policies() -> None:
    reader = json.dumps({"sub": "alice", "scope": "tools.read", "groups": ["ops"]})
    result = run_cli(
        "policy", "explain", "--config", CONFIG, "--server", "tickets", "--token-claims", reader,
        "--call", _call("close_ticket"), "--annotations", '{"destructiveHint": false}', "--at", "2026-01-05T10:00:00",
    )  # fmt: skip
    assert result.returncode == 3
    assert (
        "decision: DENY (403 insufficient_scope: missing tools.write (a step-up to them is offered))"
        in result.stdout
    )
    assert "cedar: ALLOW" in result.stdout


def test_explain_refuses_bad_input_in_one_line() -> None:
    base = ["policy", "explain", "--config", CONFIG, "--server", "files"]
    cases = [
        (["--token-claims", "{nope", "--call", _call("x")], "--token-claims: not JSON"),
        (["--token-claims", ALICE, "--call", "[1]"], "--call: expected a JSON object"),
        (
            ["--token-claims", ALICE, "--call", '{"method": "tools/call", "params": {}}'],
            "needs a non-empty string",
        ),
        (["--token-claims", '{"scope": "x"}', "--call", _call("x")], "subject"),
        (
            ["--token-claims", '{"iss": "https://evil.example", "sub": "a"}', "--call", _call("x")],
            "trusts tokens from",
        ),
        (
            ["--token-claims", ALICE, "--call", _call("x"), "--at", "tuesday"],
            "--at: expected an ISO 8601 time",
        ),
    ]
    for extra, message in cases:
        result = run_cli(*base, *extra)
        assert result.returncode == 1, (extra, result.stdout)
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    several = run_cli("policy", "explain", "--config", CONFIG, "--token-claims", ALICE, "--call", _call("x"))
    assert "name one with --server (files, tickets)" in several.stderr


def test_schema_prints_what_policies_may_name() -> None:
    text = run_cli("policy", "schema", "--config", CONFIG)
    assert text.returncode == 0, text.stderr
    assert "  tenant: String\n" in text.stdout
    assert "  groups: Set<String>,\n" in text.stdout
    assert '"tools/call"' in text.stdout
    as_json = run_cli("policy", "schema", "--config", CONFIG, "--json")
    user = json.loads(as_json.stdout)[""]["entityTypes"]["User"]["shape"]["attributes"]
    assert set(user) == {"subject", "issuer", "client", "scopes", "groups", "tenant"}


def test_check_config_refuses_an_invalid_policy_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "p.cedar").write_text(
        "permit (principal, action, resource);\n\nforbid (principal, action, resource)\n  when { principal.grups.isEmpty() };\n"
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        "public_base_url: https://x.example\nservers:\n  - name: a\n    upstream: http://u.example/mcp\n"
        "    auth: false\n    policy_files: [p.cedar]\n"
    )
    result = run_cli("check-config", "--skip-secrets", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"mcp-bastion: error: {config}: servers[0].policy_files[0]: p.cedar, line 3: attribute `grups` on entity type `User` not found"
    )
    example = run_cli("check-config", "--skip-secrets", CONFIG)
    assert example.returncode == 0, example.stderr
    assert (
        "    Cedar policies: baseline.cedar, destructive-needs-group.cedar, read-only-after-hours.cedar, "
        "path-under-prefix.cedar\n" in example.stdout
    )
