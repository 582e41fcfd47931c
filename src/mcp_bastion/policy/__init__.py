"""Authorization policy: the scope registry, tool requirements and the one decision point."""

from .catalog import ToolCatalog
from .decide import Decision, ServerPolicy, ToolAnnotations, annotations_of
from .scopes import ScopeRegistry

__all__ = ["Decision", "ScopeRegistry", "ServerPolicy", "ToolAnnotations", "ToolCatalog", "annotations_of"]
