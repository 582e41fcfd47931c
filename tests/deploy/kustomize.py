"""The part of `kustomize build` our manifests use, for offline checks: resources (files and
kustomization folders), `labels` (never on selectors here), `configMapGenerator` from files
(created, or replacing a base's in an overlay).
No cluster or kustomize binary exists here (TESTING.md); what this does not understand it
refuses, so a manifest that grows past it fails the tests instead of passing unchecked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "labels", "resources", "configMapGenerator"}


def build(folder: Path) -> list[dict[str, Any]]:
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN
    if unknown:
        raise ValueError(f"{folder}: kustomization keys this renderer does not handle: {sorted(unknown)}")
    resources: list[dict[str, Any]] = []
    for entry in spec.get("resources", ()):
        path = (folder / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for generator in spec.get("configMapGenerator", ()):
        resources = _generate(folder, generator, resources)
    for label in spec.get("labels", ()):
        if label.get("includeSelectors", False):
            raise ValueError(f"{folder}: labels on selectors are not handled")
        for resource in resources:
            resource.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    return resources


def _generate(
    folder: Path, generator: dict[str, Any], resources: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A ConfigMap from files; `behavior: replace` (an overlay's) swaps the base's of that name
    for it, as kustomize does, and fails when the base has none."""
    if set(generator) - {"name", "files", "behavior"}:
        raise ValueError(f"{folder}: configMapGenerator keys beyond name, files and behavior")
    behavior = generator.get("behavior", "create")
    name = generator["name"]
    existing = [r for r in resources if r["kind"] == "ConfigMap" and r["metadata"]["name"] == name]
    if behavior == "replace" and len(existing) != 1:
        raise ValueError(f"{folder}: configMapGenerator {name!r} replaces a ConfigMap the resources lack")
    if behavior not in ("create", "replace") or (behavior == "create" and existing):
        raise ValueError(f"{folder}: configMapGenerator {name!r}: behavior {behavior!r} is not handled here")
    data = {Path(file).name: (folder / file).read_text() for file in generator["files"]}
    made = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    return [r for r in resources if not any(r is e for e in existing)] + [made]


def by_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind]


def one(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in by_kind(resources, kind) if name is None or r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
