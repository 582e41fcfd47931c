"""mcp-bastion: an OAuth 2.1 authorization gateway in front of MCP servers.

The public surface: load a config, build the gateway ASGI app, and the error tree.
"""

from .app import Gateway, build_gateway
from .config import BastionConfig, LoadedConfig, load_config, parse_config
from .errors import BastionError, ConfigError

__all__ = [
    "BastionConfig",
    "BastionError",
    "ConfigError",
    "Gateway",
    "LoadedConfig",
    "build_gateway",
    "load_config",
    "parse_config",
]
__version__ = "0.1.0"
