"""Authorization policy: the scope registry, tool requirements and the pure decide()."""

from .catalog import ToolCatalog
from .decide import Allow, Decision, Deny, ServerPolicy, ToolAnnotations, annotations_of, decide
from .scopes import ScopeRegistry

__all__ = [
    "Allow",
    "Decision",
    "Deny",
    "ScopeRegistry",
    "ServerPolicy",
    "ToolAnnotations",
    "ToolCatalog",
    "annotations_of",
    "decide",
]
