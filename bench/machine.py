"""What the numbers were measured on: the machine, the versions, the commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from .nginx import NGINX
from .targets import FASTMCP_PYTHON, NATIVE, REPO


def describe() -> dict[str, object]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gb": _ram_gb(),
        "kernel": platform.release(),
        **_gateway_source(),
        "gateway_build": _gateway_build(),
        "versions": {
            "python": platform.python_version(),
            **{
                name: _version(name)
                for name in ("mcp-bastion", "uvicorn", "uvloop", "httptools", "httpx", "orjson", "joserfc")
            },
            "nginx": _output([NGINX, "-v"]).removeprefix("nginx version: "),
            "wrk": _output(["wrk", "-v"]).split(" [")[0].removeprefix("wrk "),
            **_fastmcp_versions(),
        },
    }


def _gateway_source() -> dict[str, object]:
    """Which gateway code runs: a committed revision (bench/run --ref) or the work tree."""
    import mcp_bastion

    pinned = os.environ.get("BENCH_GATEWAY_COMMIT")
    if pinned:
        return {"commit": pinned[:7], "source": "git archive of the commit", "uncommitted_changes": False}
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "source": str(Path(mcp_bastion.__file__).parent),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src")),
    }


def _gateway_build() -> str:
    """What `mcp-bastion --version` says under the compiled build (targets C, D, C2)."""
    if NATIVE is None:
        return "interpreted: no compiled build (scripts/build-native failed or was not run)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (NATIVE, os.environ.get("PYTHONPATH")))))
    return _output([str(REPO / ".venv" / "bin" / "mcp-bastion"), "--version"], env=env)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _fastmcp_versions() -> dict[str, str]:
    if not FASTMCP_PYTHON.exists():
        return {"fastmcp": "not installed"}
    code = "import importlib.metadata as m; print(*(m.version(n) for n in ('fastmcp', 'mcp', 'uvicorn')))"
    text = _output([str(FASTMCP_PYTHON), "-c", code]).split()
    if len(text) != 3:
        return {"fastmcp": "unknown"}
    return {"fastmcp": text[0], "fastmcp_mcp": text[1], "fastmcp_uvicorn": text[2]}


def _output(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    except OSError:
        return "not installed"
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else ""


def _git(*args: str) -> str:
    return _output(["git", "-C", str(REPO), *args])
