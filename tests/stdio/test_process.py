"""`PluginProcess.stop`: the MCP stdio close sequence, down to SIGKILL for a plug-in that ignores the rest."""

from __future__ import annotations

import signal
import sys
import time

from mcp_bastion.stdio.process import PluginProcess, ProcessSpec

from .plugins import PLUGIN, alive


def _spec(*flags: str, stop_timeout: float) -> ProcessSpec:
    return ProcessSpec("plug", (sys.executable, PLUGIN, *flags), None, {}, 1_048_576, 10.0, stop_timeout)


async def test_a_plugin_ignoring_stdin_closing_and_sigterm_is_killed_and_reaped() -> None:
    process = PluginProcess(_spec("--stubborn", stop_timeout=0.3), lambda _: None)
    await process.start(None)
    pid = process.pid
    assert pid is not None
    started = time.monotonic()
    await process.stop()
    took = time.monotonic() - started
    assert process.returncode == -signal.SIGKILL
    assert not alive(pid)  # reaped: not even a zombie is left
    assert took >= 0.6  # stdin closed, 0.3 s, SIGTERM (ignored), 0.3 s, then SIGKILL


async def test_a_well_behaved_plugin_exits_when_its_stdin_closes() -> None:
    process = PluginProcess(_spec(stop_timeout=10.0), lambda _: None)
    await process.start(None)
    pid = process.pid
    assert pid is not None
    await process.stop()
    assert process.returncode == 0  # it exited on its own: no signal was sent
    assert not alive(pid)
