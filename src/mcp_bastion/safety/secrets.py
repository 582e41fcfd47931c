"""Built-in secret and credential detection: the rules the `secrets` filter runs.

Each rule is anchored on something a credential carries by construction (a vendor prefix,
a PEM armour line, a JWT's `eyJ` header, `scheme://user:password@host`), so ordinary text
rarely matches. A match is replaced whole by `[redacted:RULE]` (or refuses the call, with
`action: deny`); the audit feed names the rule, never the text.

What this does not catch, on purpose: high-entropy strings without such a marker (a bare
40-character AWS secret key with no `aws_secret_access_key` beside it, a random password).
Entropy guessing redacts hashes, ids and base64 content as often as secrets; a deployment
that wants it adds a `regex` filter of its own.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SECRET_RULES"]

# RE2 syntax (rules.py): `\b` is an ASCII word boundary, `(?s:…)` lets `.` cross lines. No
# anchors (`^`, `$`, `\A`, `\z`): a value's text is matched joined first (rules.py).
#
# A plug-in that turns a page into markdown escapes `_` as `\_` (mcp-server-fetch does): a
# credential holding an underscore would slip past a rule that wants the bare character. So
# an underscore, and a base64url character, may each come with one backslash before it.
_U = r"\\?_"
_B64URL = r"(?:\\?[A-Za-z0-9_-])"
SECRET_RULES: Final[dict[str, str]] = {
    # AWS access key ids: a 4-letter kind prefix, then 16 base32 characters.
    "aws-access-key-id": r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
    # The 40-character secret key has no prefix: only with its name beside it.
    "aws-secret-access-key": (
        rf"(?i)\baws(?:{_U})?secret(?:{_U})?(?:access(?:{_U})?)?key\b"
        r"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}"
    ),
    # PEM private keys of every kind (RSA, EC, OPENSSH, ENCRYPTED, PGP … BLOCK). A key cut off
    # before its END line is redacted to the end of the text.
    "private-key": (
        r"-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----"
        r"(?:(?s:.*?)-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----|(?s:.*))"
    ),
    # A compact JWS or JWT: base64url header and payload both starting with `{"` (eyJ).
    "jwt": rf"\beyJ{_B64URL}{{4,}}\.eyJ{_B64URL}{{4,}}\.{_B64URL}*",
    # URLs with a password (postgres://app:pw@db, redis://:pw@cache, https://u:p@host),
    # ADO.NET / ODBC `Password=…;`, Azure storage `AccountKey=…`.
    "connection-string": (
        r"\b[A-Za-z][A-Za-z0-9+.-]{1,31}://[^\s:/?#@\"'<>]*:[^\s/?#@\"'<>]+@[^\s/?#\"'<>]+"
        r"|(?i)\b(?:password|pwd)\s*=\s*[^;\s\"']+"
        r"|(?i)\bAccountKey\s*=\s*[A-Za-z0-9+/]{40,}={0,2}"
    ),
    "github-token": (
        rf"\b(?:gh[pousr]{_U}[A-Za-z0-9]{{36,251}}|github{_U}pat{_U}(?:[A-Za-z0-9]|{_U}){{22,247}})\b"
    ),
    "slack-token": r"\bxox[abposr]-[A-Za-z0-9-]{10,250}",
    "stripe-key": rf"\b(?:sk|rk){_U}live{_U}[A-Za-z0-9]{{16,247}}\b",
    "google-api-key": rf"\bAIza{_B64URL}{{35}}",
    # OpenAI project keys and Anthropic keys (their prefixes say what they are).
    "ai-api-key": rf"\bsk-(?:proj|ant-api\d\d|ant-admin\d\d)-{_B64URL}{{20,}}",
}
