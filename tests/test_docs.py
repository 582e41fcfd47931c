"""The docs describe the code that exists: every config key documented, nothing documented that is not."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from mcp_bastion.config import model

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _models() -> list[type[BaseModel]]:
    return [
        value
        for value in vars(model).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == model.__name__
        and not value.__name__.startswith("_")
    ]


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "config.md").read_text()
    missing = [
        f"{m.__name__}.{name}" for m in _models() for name in m.model_fields if f"`{name}`" not in text
    ]
    assert missing == []


def test_every_documented_key_exists() -> None:
    text = (DOCS / "config.md").read_text()
    fields = {name for m in _models() for name in m.model_fields}
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert documented
    assert documented - fields == set()
