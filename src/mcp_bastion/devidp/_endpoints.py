"""Where the IdP lives: endpoint URLs derived from the issuer, and the paths it serves.

The app is mounted by a path router beside other apps, so it routes full request paths.
With issuer ``http://h/idp`` the RFC 8414 metadata is served path-inserted
(``/.well-known/oauth-authorization-server/idp``, RFC 8414 §3.1) and path-appended
(``/idp/.well-known/...``, what OIDC Discovery §4 and older clients try).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Endpoint = Literal["authorize", "token", "register", "jwks", "consent", "revoke", "callback"]

OAUTH_METADATA = "/.well-known/oauth-authorization-server"
OIDC_METADATA = "/.well-known/openid-configuration"
ENDPOINTS: tuple[Endpoint, ...] = ("authorize", "token", "register", "jwks", "consent", "revoke")


@dataclass(frozen=True)
class IdpLocation:
    """The issuer and the local paths derived from it."""

    issuer: str

    @property
    def prefix(self) -> str:
        """The issuer's path (``/idp``), or ``""`` for an issuer without one."""
        return urlsplit(self.issuer).path.rstrip("/")

    def url(self, endpoint: Endpoint) -> str:
        """The absolute URL of an endpoint, as published in the metadata."""
        return f"{self.issuer}/{endpoint}"

    def path(self, endpoint: Endpoint) -> str:
        """The request path of an endpoint."""
        return f"{self.prefix}/{endpoint}"

    def metadata_paths(self, well_known: str) -> tuple[str, ...]:
        """Path-inserted and path-appended locations of one metadata document (deduplicated)."""
        return tuple(dict.fromkeys((f"{well_known}{self.prefix}", f"{self.prefix}{well_known}")))

    @property
    def path_prefixes(self) -> tuple[str, ...]:
        """Every path prefix the app answers, for a router to dispatch on."""
        if self.prefix:
            return (f"{self.prefix}/", f"{OAUTH_METADATA}{self.prefix}", f"{OIDC_METADATA}{self.prefix}")
        return (OAUTH_METADATA, OIDC_METADATA, *(self.path(name) for name in ENDPOINTS))
