"""Authentication: bearer parsing and challenges (RFC 6750), JWT verification (RFC 7519/9068/8725),
key sets and discovery (RFC 8414, OIDC), and protected resource metadata (RFC 9728)."""

from .bearer import bearer_token, challenge
from .jwt import IssuerPolicy, JwtVerifier
from .keys import RemoteKeySet
from .principal import ANONYMOUS, Principal
from .prm import metadata_document, metadata_url

__all__ = [
    "ANONYMOUS",
    "IssuerPolicy",
    "JwtVerifier",
    "Principal",
    "RemoteKeySet",
    "bearer_token",
    "challenge",
    "metadata_document",
    "metadata_url",
]
