"""Locate the Node.js 22 tool chain installed by scripts/install-node-tools."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "node"


@cache
def node_bin_dir() -> Path:
    """Install (once, idempotently) and return the folder holding the Node 22 binary."""
    out = subprocess.run(
        [str(REPO / "scripts" / "install-node-tools")], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def node_env(**extra: str) -> dict[str, str]:
    """The environment for running Node 22 tools: Node 22 first on PATH, a scratch HOME kept."""
    env = dict(os.environ)
    env["PATH"] = f"{node_bin_dir()}{os.pathsep}{NODE_DIR / 'node_modules' / '.bin'}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env
