"""Edge stages: host, origin, content negotiation and size caps."""

from .body import ReadBody
from .checks import EdgeChecks

__all__ = ["EdgeChecks", "ReadBody"]
