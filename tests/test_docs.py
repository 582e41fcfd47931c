"""The docs describe the code that exists: every config key documented, nothing documented that is not."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from mcp_bastion.config import model, telemetry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THREATS = DOCS / "threats.md"


def _models() -> list[type[BaseModel]]:
    return [
        value
        for module in (model, telemetry)  # a section with its own model module
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == module.__name__
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


_CASE_ID = re.compile(r"\b(?:TV|DM|AS|JR|TS|TP|UP|SL|SC)-\d{2}\b")


def _cited_case_ids(*roots: Path) -> set[str]:
    cited: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py") if root.is_dir() else [root]:
            cited |= set(_CASE_ID.findall(path.read_text(encoding="utf-8")))
    return cited


def test_every_cited_threat_id_is_defined_in_the_shipped_catalogue() -> None:
    # A comment saying "TV-08" must resolve for a reader who has only the repository.
    defined = set(
        re.findall(r"^\| ((?:TV|DM|AS|JR|TS|TP|UP|SL|SC)-\d{2}) \|", THREATS.read_text(), re.MULTILINE)
    )
    cited = _cited_case_ids(ROOT / "src", ROOT / "tests", ROOT / "docs" / "security.md")
    assert cited, "the pattern finds nothing: the check would pass vacuously"
    assert sorted(cited - defined) == []
