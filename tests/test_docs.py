"""The docs describe the code that exists: every config key documented, nothing documented that is not."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

from pydantic import BaseModel

import mcp_bastion.config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THREATS = DOCS / "threats.md"


def _models() -> list[type[BaseModel]]:
    # The config models, wherever they live: every module of the config package.
    modules = [
        importlib.import_module(f"mcp_bastion.config.{info.name}")
        for info in pkgutil.iter_modules(mcp_bastion.config.__path__)
    ]
    assert {"base", "model"} <= {module.__name__.rsplit(".", 1)[1] for module in modules}
    return [
        value
        for module in modules
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


# `tests/x.py::name`, then any `::other` citations of the same file that follow it.
_CITED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)[^`]*`((?:\s*,\s*`::\w+[^`]*`)*)")


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def test_every_test_the_docs_cite_exists() -> None:
    # docs/security.md maps each hostile case to the tests that hold it: a renamed or deleted
    # test must not leave a row pointing at nothing (five did, before this check).
    cited: list[tuple[str, str, str]] = []
    for doc in [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]:
        for match in _CITED_TEST.finditer(doc.read_text(encoding="utf-8")):
            names = [match.group(2), *re.findall(r"`::(\w+)", match.group(3))]
            cited += [(doc.name, match.group(1), name) for name in names]
    assert len(cited) > 100, "the pattern finds too little: the check would pass vacuously"
    known: dict[str, set[str]] = {}
    missing = []
    for doc_name, test_file, name in cited:
        path = ROOT / test_file
        if test_file not in known:
            known[test_file] = _defined_names(path) if path.exists() else set()
        if name not in known[test_file]:
            missing.append(f"{doc_name}: {test_file}::{name}")
    assert missing == []
