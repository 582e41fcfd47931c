"""The development IdP's secure defaults, as data in one place.

Each limit answers a named attack or RFC clause; change them here, nowhere else.
"""

from __future__ import annotations

from typing import Final

#: Form and JSON bodies are read into memory only up to this size (Starlette
#: CVE-2024-47874: unbounded form parsing); larger bodies get 413 before parsing.
MAX_BODY_BYTES: Final = 64 * 1024
#: Urlencoded forms and query strings with more fields are refused (CVE-2023-30798).
MAX_FIELDS: Final = 100
#: No single parameter needs more; `state` and `code_verifier` (128) fit easily.
MAX_PARAM_CHARS: Final = 4096

#: DCR: more redirect URIs than any real client needs is an abuse signal (AS-03).
MAX_REDIRECT_URIS: Final = 20
#: Longer URIs are refused at registration; browsers and proxies truncate past ~2 KB.
MAX_URI_CHARS: Final = 2048
#: Longer client names are refused rather than truncated (AS-04, consent-page spoofing).
MAX_CLIENT_NAME_CHARS: Final = 200
#: Registered clients are kept in memory; beyond this the oldest are forgotten.
MAX_REGISTERED_CLIENTS: Final = 10_000
#: Every in-memory store (codes, refresh tokens, pending consents, rate-limit buckets)
#: forgets its oldest entries beyond this, so a flood of requests cannot exhaust memory.
MAX_STORED_ENTRIES: Final = 100_000

#: Client ID Metadata Documents: total fetch time and body cap (SSRF and memory DoS).
CIMD_TIMEOUT_S: Final = 5.0
CIMD_MAX_BYTES: Final = 64 * 1024
#: A fetched, valid metadata document is reused this long at most (less if its
#: Cache-Control max-age says so, not at all with no-store): a client authorizing again
#: does not make the IdP fetch again, and a changed document is seen within minutes.
CIMD_CACHE_TTL_S: Final = 300
#: Documents cached at most (the oldest forgotten first).
CIMD_CACHE_ENTRIES: Final = 10_000

#: A consent page must be answered within this time; its CSRF token dies with it.
PENDING_TTL_S: Final = 600
#: Window of the per-address registration limit.
REGISTRATION_WINDOW_S: Final = 60

#: The only JWS algorithms the IdP signs with (RFC 8725 §3.1: an explicit allow-list).
SIGNING_ALGORITHMS: Final = ("ES256", "RS256", "PS256", "EdDSA")
#: RSA keys below this size are refused (RFC 8725 §3.5, NIST SP 800-131A).
MIN_RSA_BITS: Final = 2048

#: Bytes of CSPRNG output in codes, refresh tokens, client secrets and CSRF tokens
#: (RFC 6749 §10.10: guessing probability ≤ 2^-128; 256 bits leaves margin).
SECRET_BYTES: Final = 32
