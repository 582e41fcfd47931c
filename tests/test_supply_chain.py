"""SC-01: dependency floors above the CVEs in the security catalog, declared and installed.

No per-version advisory data is reachable from the machines this suite runs on, so instead of
an audit (scripts/audit, which says so honestly) this pins what the catalog names: the
declared lower bounds stay above the fixed versions, the installed versions meet them, and the
JOSE libraries with unfixed key-confusion and timing advisories are not installed at all.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# Direct dependencies: the version each advisory was fixed in.
FLOORS = {
    "h11": "0.16.0",  # CVE-2025-43859: request smuggling via lenient chunked-encoding line endings
    "starlette": "0.40.0",  # CVE-2024-47874: unbounded multipart form fields (DoS); the dev IdP parses forms
    "mcp": "1.23.0",  # CVE-2025-66416: DNS rebinding protection off by default (the demo upstreams)
    "cryptography": "44.0.1",  # CVE-2024-12797: vulnerable OpenSSL in the bundled wheels
    "python-multipart": "0.0.18",  # CVE-2024-53981: form parsing DoS (the dev IdP)
}
# Not dependencies of ours, but pulled in by others (PyJWT comes with the MCP SDK): when present,
# they must be past these.
TRANSITIVE_FLOORS = {
    "pyjwt": "2.10.1",  # CVE-2024-53861: partial issuer match
    "authlib": "1.6.5",  # CVE-2025-61920 and earlier JOSE advisories
}
# Never: python-jose (CVE-2024-33663 algorithm confusion, CVE-2024-33664 JWE bomb) and
# python-ecdsa (CVE-2024-23342 Minerva timing attack, no fix planned).
FORBIDDEN = ("python-jose", "ecdsa")


def _declared() -> dict[str, Requirement]:
    """The direct dependencies and the `demo` extra's (what `pip install mcp-bastion[demo]` pulls)."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["demo"]]
    return {_normal(r.name): r for r in map(Requirement, lines)}


# A production install pulls none of the demo's web stack (issue 9: the MCP SDK, Starlette and
# uvicorn were runtime dependencies only because of the demo).
DEMO_ONLY = ("mcp", "starlette", "uvicorn", "python-multipart", "h11")


def test_a_production_install_declares_none_of_the_demos_dependencies() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    runtime = {_normal(Requirement(r).name) for r in project["dependencies"]}
    assert runtime.isdisjoint(DEMO_ONLY)


@pytest.mark.parametrize(
    "modules",
    [
        "mcp_bastion.cli, mcp_bastion.serving, mcp_bastion.app",  # serve, check-config
        "mcp_bastion.registry, mcp_bastion.registry.report",  # tools, scopes export
    ],
)
def test_production_commands_import_none_of_the_demos_dependencies(modules: str) -> None:
    # Each in a fresh interpreter: nothing a production command imports may need the extra.
    code = (
        f"import sys; import {modules}; "
        "print(' '.join(sorted(m for m in ('mcp', 'starlette', 'uvicorn', 'multipart', 'h11') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize(("name", "floor"), sorted(FLOORS.items()))
def test_sc01_declared_lower_bound_is_at_least_the_fixed_version(name: str, floor: str) -> None:
    requirement = _declared()[_normal(name)]
    lower = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=", ">")]
    assert lower, f"{name} has no lower bound in pyproject.toml"
    assert max(lower) >= Version(floor)
    # The bound actually excludes the vulnerable versions, whatever else the specifier says.
    assert not requirement.specifier.contains(_just_below(floor), prereleases=True)


@pytest.mark.parametrize(("name", "floor"), sorted(FLOORS.items()))
def test_sc01_installed_version_meets_the_floor(name: str, floor: str) -> None:
    installed = _installed(name)
    assert installed is not None, f"{name} is a dependency but is not installed"
    assert installed >= Version(floor)


@pytest.mark.parametrize(("name", "floor"), sorted(TRANSITIVE_FLOORS.items()))
def test_sc01_transitive_jose_libraries_are_absent_or_past_their_advisories(name: str, floor: str) -> None:
    installed = _installed(name)
    assert installed is None or installed >= Version(floor)


@pytest.mark.parametrize("name", FORBIDDEN)
def test_sc01_python_jose_and_ecdsa_are_not_installed(name: str) -> None:
    assert _installed(name) is None
    requiring = [
        dist.metadata["Name"]
        for dist in metadata.distributions()
        if any(
            _normal(Requirement(r).name) == name
            for r in dist.requires or []
            if ";" not in r or "extra" not in r
        )
    ]
    assert requiring == []


def _just_below(version: str) -> str:
    release = Version(version).release
    if release[-1] > 0:
        return ".".join(map(str, (*release[:-1], release[-1] - 1)))
    return ".".join(map(str, (*release[:-2], release[-2] - 1, 999))) if len(release) > 1 else "0"
