"""Upstreams: the pooled client, the gateway's own credentials, catalog fetches, forwarding."""

from .catalog import CatalogFetcher
from .client import UpstreamClient
from .credentials import MintedCredential, NoCredential, StaticCredential, TokenMinter, UpstreamCredential
from .forward import Forward

__all__ = [
    "CatalogFetcher",
    "Forward",
    "MintedCredential",
    "NoCredential",
    "StaticCredential",
    "TokenMinter",
    "UpstreamClient",
    "UpstreamCredential",
]
