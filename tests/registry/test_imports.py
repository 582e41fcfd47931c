"""`tools` and `scopes export` are production commands: they must run without the [demo] extra."""

from __future__ import annotations

import subprocess
import sys


def test_the_registry_commands_import_none_of_the_demos_dependencies() -> None:
    code = (
        "import sys; import mcp_bastion.registry, mcp_bastion.registry.report; "
        "print(' '.join(sorted(m for m in ('mcp', 'starlette', 'uvicorn', 'multipart', 'h11') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert out.stdout.strip() == ""
