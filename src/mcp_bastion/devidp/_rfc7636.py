"""PKCE (RFC 7636) with the S256 method only, as OAuth 2.1 and MCP require."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from ..errors import OAuthError

# The S256 challenge is an unpadded base64url SHA-256 digest: exactly 43 characters.
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 7636 §4.1: code-verifier = 43*128unreserved.
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def s256(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Validate the authorization request's PKCE parameters; return the challenge.

    A missing method means "plain" (RFC 7636 §4.3), which is refused like an explicit
    "plain": it offers no protection once the authorization request leaks.
    """
    if challenge is None:
        raise OAuthError("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    if method != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256")
    if _CHALLENGE.fullmatch(challenge) is None:
        raise OAuthError("invalid_request", "code_challenge must be 43 base64url characters")
    return challenge


def verifier_matches(verifier: str | None, challenge: str) -> bool:
    """Whether ``verifier`` is well formed and hashes to ``challenge`` (constant-time compare)."""
    if verifier is None or _VERIFIER.fullmatch(verifier) is None:
        return False
    return hmac.compare_digest(s256(verifier), challenge)
