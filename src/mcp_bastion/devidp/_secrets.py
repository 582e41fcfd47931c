"""Fresh secrets and the digests they are stored under.

Codes, refresh tokens and client secrets are kept only as SHA-256 digests, so a dump of
the stores (or a future Redis) holds nothing a client could present.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ._policy import SECRET_BYTES


def new_secret() -> str:
    """A fresh URL-safe secret from the CSPRNG."""
    return secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    """The storage key of a secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def digest_matches(secret: str, stored_digest: str) -> bool:
    """Constant-time check of a presented secret against a stored digest."""
    return hmac.compare_digest(digest(secret), stored_digest)
