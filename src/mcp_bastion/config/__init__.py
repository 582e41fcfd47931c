"""Configuration: the model, its loading from file + environment, and its JSON Schema."""

from .load import LoadedConfig, load_config, parse_config, read_secret
from .model import BastionConfig, IdentityProviderConfig, ServerConfig
from .schema import config_json_schema

__all__ = [
    "BastionConfig",
    "IdentityProviderConfig",
    "LoadedConfig",
    "ServerConfig",
    "config_json_schema",
    "load_config",
    "parse_config",
    "read_secret",
]
