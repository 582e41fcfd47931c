"""`mcp-bastion check-config` explains a server's safety filters, one line each, and warns
about the risky ones on stderr naming the key."""

from __future__ import annotations

from pathlib import Path

from .test_commands import run_cli

CONFIG = """\
public_base_url: https://gw.example
identity_providers: [{name: corp, issuer: "https://idp.example"}]
sessions: {key: {env: SK}}
servers:
  - name: files
    upstream: https://files.internal/mcp
    filters:
      - {id: secrets, type: secrets, skip_tools: [render]}
      - {id: ssn, type: regex, action: deny, screen: [arguments], patterns: {ssn: '\\\\d{3}-\\\\d{2}-\\\\d{4}'}}
      - {id: poisoning, type: poisoning}
      - {id: llm, type: guard, url: "https://guard.example/check", tools: [read_file], on_failure: allow}
"""


def test_check_config_lists_each_filter_and_warns_about_failing_open(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text(CONFIG)
    result = run_cli("check-config", "--skip-secrets", str(path))
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("filter ")]
    assert lines == [
        "filter secrets: secrets on result, redact; not render",
        "filter ssn: regex on arguments, deny",
        "filter poisoning: poisoning of tool definitions, enforce",
        "filter llm: guard https://guard.example/check on arguments, result, 5 s, fails open; only read_file",
    ]
    assert f"{path}: servers[0].filters[3].on_failure: allow" in result.stderr
