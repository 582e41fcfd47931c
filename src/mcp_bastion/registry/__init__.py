"""The published scope registry: what each tool needs and why, and what to register at the IdP.

Behind `mcp-bastion tools` (each upstream's live tools with their required scopes) and
`mcp-bastion scopes export` (the resources and scopes in an identity provider's own terms).
"""

from .idp import IDPS, idp_document
from .provenance import Requirement, requirement_of
from .resources import PublishedResource, PublishedScope, published_resources, resource_url
from .tools import ServerTools, ToolEntry, published_tools

__all__ = [
    "IDPS",
    "PublishedResource",
    "PublishedScope",
    "Requirement",
    "ServerTools",
    "ToolEntry",
    "idp_document",
    "published_resources",
    "published_tools",
    "requirement_of",
    "resource_url",
]
