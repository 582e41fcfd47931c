"""The JSON Schema of the config file, generated from the model (kept in docs/ by a test)."""

from __future__ import annotations

from typing import Any

from .model import BastionConfig


def config_json_schema() -> dict[str, Any]:
    schema = BastionConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mcp-bastion configuration"
    return schema
