"""What an identity provider must know about this gateway: each protected resource and its scopes.

The gateway accepts a token only when its `aud` names the server's resource URL and its scopes
cover the call; the IdP has to be told both. This is the IdP-neutral list, derived from the
config alone (no secrets, no upstream); `registry/idp.py` writes it in each IdP's own terms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .. import urls
from ..config.model import BastionConfig, ServerConfig
from ..policy.scopes import ScopeRegistry, published_scopes

__all__ = ["PublishedResource", "PublishedScope", "published_resources", "resource_url"]


@dataclass(frozen=True)
class PublishedScope:
    value: str
    description: str
    admin: bool  # the admin scope: an IdP that distinguishes asks an administrator to consent


@dataclass(frozen=True)
class PublishedResource:
    server: str
    title: str
    resource: str
    scopes: tuple[PublishedScope, ...]


def resource_url(config: BastionConfig, server: ServerConfig) -> str:
    """The server's public MCP URL: PRM `resource` and the token `aud`, byte for byte.

    The gateway's own function (`urls.resource_url`); tests/registry/test_resources.py also
    compares the two over a running gateway's metadata."""
    return urls.resource_url(config.public_base_url, server.name)


def published_resources(config: BastionConfig) -> list[PublishedResource]:
    """Every configured server's resource URL with every scope a call to it may need."""
    registry = ScopeRegistry.from_config(config.scopes)
    return [
        PublishedResource(
            server.name,
            server.title or server.name,
            resource_url(config, server),
            tuple(_scope(value, server, registry) for value in _scopes_of(server, registry)),
        )
        for server in config.servers
    ]


def _scopes_of(server: ServerConfig, registry: ScopeRegistry) -> Iterable[str]:
    return published_scopes(registry, server)  # exactly the PRM's `scopes_supported`


def _scope(value: str, server: ServerConfig, registry: ScopeRegistry) -> PublishedScope:
    title = server.title or server.name
    uses = _uses(value, server, registry)
    implied = sorted(registry.grants.get(value, frozenset()) - {value})
    if implied:
        uses.append(f"includes {', '.join(implied)}")
    text = "; ".join(uses) if uses else "a scope this server defines"
    return PublishedScope(value, f"{title}: {text}", value == registry.admin)


def _uses(value: str, server: ServerConfig, registry: ScopeRegistry) -> list[str]:
    """What `value` lets a caller do on this server, in the order a reader cares."""
    uses = []
    if value == registry.read:
        uses.append("read-only tools, resources, prompts and completions")
    destructive = server.destructive_scopes if server.destructive_scopes is not None else (registry.write,)
    if value == registry.write and server.trust_annotations:
        uses.append("tools that change data")
    if value in destructive and server.trust_annotations:
        uses.append("tools that may destroy data (annotated destructive, or not annotated)")
    elif value in destructive:
        uses.append("every tool without a per-tool scope (this server's annotations are not trusted)")
    if value == registry.admin:
        uses.append("MCP methods the gateway does not classify")
    tools = sorted(name for name, policy in server.tools.items() if value in policy.scopes)
    if tools:
        uses.append(f"the tool{'s' if len(tools) > 1 else ''} {', '.join(tools)}")
    return uses
