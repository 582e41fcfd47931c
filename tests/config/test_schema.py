"""The committed JSON Schema is the one the model generates (`mcp-bastion schema`)."""

from __future__ import annotations

import json
from pathlib import Path

from mcp_bastion.config import config_json_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "config.schema.json"


def test_committed_schema_matches_the_model() -> None:
    expected = json.dumps(config_json_schema(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected, (
        "docs/config.schema.json is stale: run `mcp-bastion schema > docs/config.schema.json`"
    )


def test_schema_describes_the_file() -> None:
    schema = config_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "mcp-bastion configuration"
    assert schema["required"] == ["public_base_url", "servers"]
    assert schema["additionalProperties"] is False
    idp = schema["$defs"]["IdentityProviderConfig"]["properties"]
    assert idp["leeway_seconds"]["maximum"] == 300
    assert idp["algorithms"]["items"]["enum"] == ["RS256", "PS256", "ES256", "EdDSA"]
