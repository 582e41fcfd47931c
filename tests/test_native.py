"""The compiled build (src/mcp_bastion/native.py): the suite runs once on the source and once on
the compiled wheel (scripts/test); these tests pin which of the two is under test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mcp_bastion
from mcp_bastion.native import COMPILED, build_description, compiled_modules

EXPECT_COMPILED = os.environ.get("MCP_BASTION_EXPECT_COMPILED") == "1"


def test_the_build_under_test_is_the_one_announced() -> None:
    # scripts/test sets MCP_BASTION_EXPECT_COMPILED=1 for the pass over build/native; a wheel
    # that silently fell back to Python, or a stale .so in src/, fails here.
    if EXPECT_COMPILED:
        assert compiled_modules() == COMPILED
        assert build_description().startswith("compiled request path")
    else:
        assert compiled_modules() == ()
        assert build_description() == "interpreted (pure Python)"


def test_every_listed_module_has_its_source_beside_it() -> None:
    package = Path(mcp_bastion.__file__).parent
    for name in COMPILED:
        relative = Path(*name.split(".")[1:]).with_suffix(".py")
        assert (package / relative).is_file(), name
    assert len(set(COMPILED)) == len(COMPILED)
    assert list(COMPILED) == sorted(COMPILED)


def test_version_names_the_build() -> None:
    # The installed entry point, so the compiled pass checks the build it ships.
    command = Path(sys.executable).parent / "mcp-bastion"
    result = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"mcp-bastion {mcp_bastion.__version__}: {build_description()}"
