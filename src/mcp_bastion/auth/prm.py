"""OAuth 2.0 Protected Resource Metadata (RFC 9728) for each protected MCP endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import orjson

__all__ = ["metadata_document", "metadata_url"]


def metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: insert `/.well-known/oauth-protected-resource` between host and path."""
    parts = urlsplit(resource)
    # Only a slash right after the host goes ("https://h/" -> ".../oauth-protected-resource");
    # a path keeps its own trailing slash ("https://h/a/" -> ".../oauth-protected-resource/a/").
    path = "" if parts.path == "/" else parts.path
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{path}"


def metadata_document(
    resource: str, authorization_servers: Sequence[str], scopes: Sequence[str], name: str | None
) -> bytes:
    """The metadata, serialized once at start-up. `resource` is byte-identical to the public URL."""
    document: dict[str, object] = {
        "resource": resource,
        "authorization_servers": list(authorization_servers),
        # SPEC-CHECKLIST: never offline_access here; clients add it themselves if they want it.
        "scopes_supported": [s for s in dict.fromkeys(scopes) if s != "offline_access"],
        "bearer_methods_supported": ["header"],
    }
    if name:
        document["resource_name"] = name
    return orjson.dumps(document)
