"""The built-in secret rules: what each catches, and ordinary text none of them touches."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mcp_bastion.safety.matching import TOO_LARGE, PatternFilter
from mcp_bastion.safety.rules import RuleSet
from mcp_bastion.safety.secrets import SECRET_RULES
from mcp_bastion.safety.verdict import CallContext

CALL = CallContext("files", "read_file", "alice", "agent")
ALL = RuleSet(list(SECRET_RULES.items()), max_input_chars=1_048_576)


def _pem(key: Any, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


EC_PEM = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
OPENSSH_PEM = _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
JWT = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6Imh0dHBzOi8vZ3cifQ.c2lnbmF0dXJl"

# (rule, text with the secret, the secret itself)
CASES = [
    ("aws-access-key-id", "key: AKIAIOSFODNN7EXAMPLE.", "AKIAIOSFODNN7EXAMPLE"),
    ("aws-access-key-id", "temporary ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws-secret-access-key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws-secret-access-key",
        '{"AWS_SECRET_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("private-key", f"the key:\n{EC_PEM}\nend", EC_PEM.split("\n")[1]),
    ("private-key", f"ssh key {OPENSSH_PEM}", OPENSSH_PEM.split("\n")[1]),
    # Cut off before its END line: redacted to the end of the text.
    ("private-key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7o2", "MIIEpAIBAAKCAQEA7o2"),
    # A GCP service-account key as JSON text: the newlines are `\n` escapes.
    (
        "private-key",
        '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkq\\n-----END PRIVATE KEY-----\\n"}',
        "MIIEvQIBADANBgkq",
    ),
    ("jwt", f"Authorization: Bearer {JWT}", JWT),
    ("connection-string", "DATABASE_URL=postgres://app:s3cr3t-pw@db.internal:5432/prod", "s3cr3t-pw"),
    ("connection-string", "redis://:hunter2hunter2@cache:6379/0", "hunter2hunter2"),
    ("connection-string", "mongodb+srv://svc:Pa55w0rd@cluster0.example.net/db", "Pa55w0rd"),
    (
        "connection-string",
        "Server=tcp:sql.example;Database=x;User ID=sa;Password=Tr0ub4dor&3;",
        "Tr0ub4dor&3",
    ),
    (
        "connection-string",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + "A" * 86 + "==;EndpointSuffix=core",
        "A" * 86,
    ),
    ("github-token", "token ghp_" + "a1B2c3D4e5" * 4, "ghp_" + "a1B2c3D4e5" * 4),
    (
        "github-token",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    ),
    ("slack-token", "xoxb-1234567890-0987654321-AbCdEfGhIjKl", "xoxb-1234567890-0987654321-AbCdEfGhIjKl"),
    ("stripe-key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "google-api-key",
        "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    ),
    ("ai-api-key", "sk-ant-api03-" + "x" * 40, "sk-ant-api03-" + "x" * 40),
    ("ai-api-key", "OPENAI_API_KEY=sk-proj-" + "Ab3" * 10, "sk-proj-" + "Ab3" * 10),
]


# The same credentials as a plug-in that renders a page to markdown returns them: every `_`
# escaped as `\_` (mcp-server-fetch). The secret must go whole, backslashes included.
JWT_WITH_UNDERSCORES = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZV9fIn0.c2ln_bmF0_dXJl"
MARKDOWN_CASES = [
    ("jwt", f"token: {JWT_WITH_UNDERSCORES.replace('_', chr(92) + '_')}", "bmF0"),
    (
        "github-token",
        "github\\_pat\\_11ABCDEFG0123456789\\_abcdefghijklmnop",
        "11ABCDEFG0123456789",
    ),
    ("stripe-key", "sk\\_live\\_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "aws-secret-access-key",
        "aws\\_secret\\_access\\_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("ai-api-key", "sk-proj-Ab3\\_" + "Ab3" * 8, "Ab3Ab3Ab3"),
]


@pytest.mark.parametrize(("rule", "text", "secret"), CASES + MARKDOWN_CASES)
def test_each_rule_redacts_its_credential(rule: str, text: str, secret: str) -> None:
    redacted = ALL.redact({"content": [{"type": "text", "text": text}]})
    assert redacted is not None
    value, found = redacted
    out = value["content"][0]["text"]
    assert rule in found
    assert secret not in out
    assert f"[redacted:{rule}]" in out


CLEAN = [
    "The build finished in 42 s; 1,204 tests passed.",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "uuid 123e4567-e89b-12d3-a456-426614174000, request id AKIA-not-a-key",
    "See https://docs.example.com/guide?page=2#setup and mailto:ops@example.com",
    "base64 content: SGVsbG8sIHdvcmxkISBUaGlzIGlzIGp1c3QgdGV4dC4=",
    "password must have at least 12 characters",
    "The JWT format is header.payload.signature (eyJ... in base64url).",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "git clone https://github.com/mcp-bastion/mcp-bastion.git",
    "ASK me anything; sk-learn is a library; xox is a game",
]


@pytest.mark.parametrize("text", CLEAN)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert ALL.find([text]) == ()


async def test_the_filter_redacts_results_and_names_only_the_rules() -> None:
    f = PatternFilter("secrets", ALL, "redact")
    result = {"content": [{"type": "text", "text": "creds: AKIAIOSFODNN7EXAMPLE"}], "isError": False}
    verdict = await f.on_result(CALL, result, False)
    assert verdict.action == "redact"
    assert verdict.rules == ("aws-access-key-id",)
    assert verdict.value["content"][0]["text"] == "creds: [redacted:aws-access-key-id]"
    assert "AKIA" not in repr(verdict.rules)
    assert (await f.on_result(CALL, {"content": []}, False)).action == "allow"


async def test_with_action_deny_a_match_refuses_and_nothing_is_changed() -> None:
    f = PatternFilter("secrets", ALL, "deny")
    arguments = {"body": f"here is my token {JWT}"}
    verdict = await f.on_arguments(CALL, arguments)
    assert verdict.action == "deny"
    assert verdict.rules == ("jwt",)
    assert arguments == {"body": f"here is my token {JWT}"}


@pytest.mark.parametrize("action", ["redact", "deny"])
async def test_a_value_past_the_cap_is_refused_whatever_the_action(action: str) -> None:
    f = PatternFilter("secrets", RuleSet(list(SECRET_RULES.items()), max_input_chars=1024), action)  # type: ignore[arg-type]
    verdict = await f.on_result(CALL, {"text": "x" * 2048}, False)
    assert (verdict.action, verdict.rules) == ("deny", (TOO_LARGE,))
