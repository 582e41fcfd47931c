"""`servers[].filters`: each mistake named at its key path (no pydantic tag in it), patterns
compiled by RE2 at load time, the guard's secret read and checked like any other, and the
risky settings warned about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcp_bastion.config import config_warnings, load_config, parse_config
from mcp_bastion.errors import ConfigError

from .configs import edit, refusal, write

GUARD = {"id": "llm", "type": "guard", "url": "https://guard.example/check"}


def _with(*filters: Any) -> dict[str, Any]:
    return edit(servers__0__filters=list(filters))


@pytest.mark.parametrize(
    ("filters", "path", "message"),
    [
        (
            [{"id": "r", "type": "regex", "action": "deny", "patterns": {"bad": r"(a)\1"}}],
            "servers[0].filters[0].patterns.bad",
            "not a pattern RE2 accepts (invalid escape sequence: \\1); backreferences and lookaround are not supported",
        ),
        (
            [{"id": "r", "type": "regex", "action": "deny", "patterns": {"long": "a" * 1025}}],
            "servers[0].filters[0].patterns.long",
            "a pattern may be at most 1024 characters long, found 1025",
        ),
        (
            [{"id": "r", "type": "regex", "action": "deny", "patterns": {}}],
            "servers[0].filters[0].patterns",
            "needs at least 1 item, found 0",
        ),
        (
            [{"id": "r", "type": "regex", "patterns": {"x": "y"}}],
            "servers[0].filters[0].action",
            "required key is missing",
        ),
        (
            [{"id": "r", "type": "regex", "action": "block", "patterns": {"x": "y"}}],
            "servers[0].filters[0].action",
            "expected 'redact' or 'deny', found the text 'block'",
        ),
        (
            [{"id": "s", "type": "secrets", "rule": ["jwt"]}],
            "servers[0].filters[0].rule",
            "unknown key (did you mean 'rules'? check its spelling and indentation; expected one of: "
            "id, tools, skip_tools, type, screen, action, rules, max_input_chars)",
        ),
        (
            [{"id": "s", "type": "secrets", "rules": ["jwt", "passwords"]}],
            "servers[0].filters[0].rules[1]",
            "unknown rule 'passwords': expected one of aws-access-key-id, aws-secret-access-key, private-key, "
            "jwt, connection-string, github-token, slack-token, stripe-key, google-api-key, ai-api-key",
        ),
        (
            [{"id": "s", "type": "secret"}],
            "servers[0].filters[0].type",
            "expected one of 'secrets', 'regex', 'poisoning', 'guard', found the text 'secret'",
        ),
        (
            [{"id": "s"}],
            "servers[0].filters[0].type",
            "required key is missing: one of 'secrets', 'regex', 'poisoning', 'guard'",
        ),
        (
            [{"id": "s", "type": "secrets"}, {"id": "s", "type": "poisoning"}],
            "servers[0].filters[1].id",
            "'s' is also the id of filters[0]: a filter's id names it in the audit feed",
        ),
        (
            [{"id": "s", "type": "secrets", "tools": ["a", "b"], "skip_tools": ["b"]}],
            "servers[0].filters[0].skip_tools",
            "'b' also listed in tools: a tool is one or the other",
        ),
        (
            [{"id": "s", "type": "secrets", "screen": ["arguments", "tool"]}],
            "servers[0].filters[0].screen[1]",
            "expected 'arguments' or 'result', found the text 'tool'",
        ),
        (
            [{"id": "p", "type": "poisoning", "rules": []}],
            "servers[0].filters[0].rules",
            "no rules and no patterns: the filter would flag nothing",
        ),
        (
            [{"id": "p", "type": "poisoning", "mode": "warn"}],
            "servers[0].filters[0].mode",
            "expected 'enforce' or 'record', found the text 'warn'",
        ),
        (
            [{**GUARD, "url": "guard.example"}],
            "servers[0].filters[0].url",
            "must be an http(s) URL with a host",
        ),
        (
            [{**GUARD, "url": "https://user:pw@guard.example"}],
            "servers[0].filters[0].url",
            "must not carry credentials; use header and secret",
        ),
        (
            [{**GUARD, "timeout_seconds": 0}],
            "servers[0].filters[0].timeout_seconds",
            "must be more than 0, found 0",
        ),
        (
            [{**GUARD, "max_concurrency": 0}],
            "servers[0].filters[0].max_concurrency",
            "must be at least 1, found 0",
        ),
        (
            [{**GUARD, "on_failure": "open"}],
            "servers[0].filters[0].on_failure",
            "expected 'deny' or 'allow', found the text 'open'",
        ),
    ],
)
def test_each_mistake_is_named_at_its_key_path(filters: list[Any], path: str, message: str) -> None:
    error = refusal(_with(*filters))
    assert error.path == path
    assert error.message == f"bastion.yaml: {path}: {message}"


def test_a_secret_written_inline_in_a_guard_is_never_repeated() -> None:
    error = refusal(_with({**GUARD, "secret": "Bearer zz-SECRET-MARK-zz"}))
    assert error.path == "servers[0].filters[0].secret"
    assert "zz-SECRET-MARK-zz" not in str(error)
    assert "a secret is never written in the config file" in error.message


def test_a_valid_chain_loads_with_its_defaults() -> None:
    config = parse_config(
        _with(
            {"id": "secrets", "type": "secrets"},
            {"id": "ssn", "type": "regex", "action": "redact", "patterns": {"ssn": r"\b\d{3}-\d{2}-\d{4}\b"}},
            {"id": "poisoning", "type": "poisoning"},
            GUARD,
        )
    )
    secrets, regex, poisoning, guard = config.servers[0].filters
    assert (secrets.type, secrets.screen, secrets.action, secrets.rules) == (
        "secrets",
        ("result",),
        "redact",
        None,
    )
    assert regex.type == "regex"
    assert regex.screen == ("arguments", "result")
    assert poisoning.type == "poisoning"
    assert poisoning.mode == "enforce"
    assert guard.type == "guard"
    assert (guard.on_failure, guard.timeout_seconds, guard.max_concurrency) == ("deny", 5, 32)


def test_the_guards_secret_is_read_at_load_and_checked_as_a_header_value(tmp_path: Path) -> None:
    data = _with({**GUARD, "secret": {"env": "GUARD_TOKEN"}})
    loaded = load_config(write(tmp_path, data), environ={"GUARD_TOKEN": "Bearer abc123"})
    assert loaded.secret("servers[0].filters[0].secret") == "Bearer abc123"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, data), environ={"GUARD_TOKEN": "Bearer abc\r\nX-Evil: 1"})
    assert caught.value.path == "servers[0].filters[0].secret"
    assert "holds a line break" in caught.value.message
    assert "X-Evil" not in caught.value.message
    with pytest.raises(ConfigError) as unset:
        load_config(write(tmp_path, data), environ={})
    assert unset.value.path == "servers[0].filters[0].secret"


def test_risky_filter_settings_are_warned_about() -> None:
    config = parse_config(
        _with(
            {**GUARD, "url": "http://guard.internal/check", "on_failure": "allow"},
            {"id": "p", "type": "poisoning", "mode": "record"},
            {**GUARD, "id": "local", "url": "http://127.0.0.1:9000/check"},
        )
    )
    warnings = {w.path: w.message for w in config_warnings(config) if ".filters[" in w.path}
    assert set(warnings) == {
        "servers[0].filters[0].url",
        "servers[0].filters[0].on_failure",
        "servers[0].filters[1].mode",
    }
    assert "cross the network unencrypted" in warnings["servers[0].filters[0].url"]
    assert "pass unscreened" in warnings["servers[0].filters[0].on_failure"]
    assert "still listed and callable" in warnings["servers[0].filters[1].mode"]


def test_a_key_yaml_reads_as_a_boolean_is_named_without_the_filter_type(tmp_path: Path) -> None:
    # YAML 1.1 reads an unquoted `on:` as true (why the key is `screen`): the message names
    # the place in the file's own terms, not pydantic's tag (`filters[0].regex`).
    text = (
        "public_base_url: https://gw.example\n"
        "identity_providers: [{name: corp, issuer: 'https://idp.example'}]\n"
        "servers:\n"
        "  - name: demo\n"
        "    upstream: http://127.0.0.1:9001/mcp\n"
        "    filters: [{id: r, type: regex, action: deny, patterns: {x: y}, on: [arguments]}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), read_secrets=False)
    assert caught.value.path == "servers[0].filters[0].True"
    assert "a key must be text, found true (put it in quotes)" in caught.value.message
