"""Configs for the config tests: the minimal valid one, and edits of it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_bastion.config import parse_config
from mcp_bastion.errors import ConfigError

MINIMAL: dict[str, Any] = {
    "public_base_url": "https://gw.example",
    "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
    "servers": [{"name": "demo", "upstream": "http://127.0.0.1:9001/mcp"}],
}


def write(tmp_path: Path, data: Any, name: str = "bastion.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def edit(**changes: Any) -> dict[str, Any]:
    """MINIMAL with changes at `__`-separated paths (`servers__0__upstream="x"`); `...` deletes a key."""
    data = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


def refusal(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="bastion.yaml")
    return caught.value
