"""Configuration: the model, its loading from file + environment, its checks and its JSON Schema."""

from .checks import ConfigWarning, config_warnings
from .explain import CONFIG_REFERENCE_URL, REPOSITORY_URL
from .load import LoadedConfig, load_config, parse_config, read_secret
from .model import BastionConfig, IdentityProviderConfig, ServerConfig
from .schema import config_json_schema

__all__ = [
    "CONFIG_REFERENCE_URL",
    "REPOSITORY_URL",
    "BastionConfig",
    "ConfigWarning",
    "IdentityProviderConfig",
    "LoadedConfig",
    "ServerConfig",
    "config_json_schema",
    "config_warnings",
    "load_config",
    "parse_config",
    "read_secret",
]
