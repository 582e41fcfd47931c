"""`mcp-bastion serve` with metrics on: the metrics listener beside the MCP one, and with
several workers one metrics port per worker (the first free of port … port+N-1)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..support.prometheus import parse_exposition


def _free_ports(count: int) -> int:
    """The first of `count` consecutive loopback ports that are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise AssertionError("no run of free ports")


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early: {log.read_text()}")
            try:
                return http.get(url)
            except httpx.TransportError:
                time.sleep(0.05)  # polling a subprocess's port: there is no event to wait on
    raise AssertionError(f"{url} did not answer in time: {log.read_text()}")


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_exposes_metrics_on_their_own_port_per_worker(tmp_path: Path, workers: int) -> None:
    port = _free_ports(1)
    metrics_port = _free_ports(workers)
    while metrics_port <= port < metrics_port + workers:
        metrics_port = _free_ports(workers)
    config = tmp_path / "bastion.yaml"
    config.write_text(
        f"public_base_url: http://127.0.0.1:{port}\nlisten: {{port: {port}}}\naudit: {{sink: none}}\n"
        "servers:\n  - name: demo\n    upstream: http://127.0.0.1:9/mcp\n    auth: false\n"
        f"telemetry: {{metrics: {{enabled: true, port: {metrics_port}}}}}\n"
    )
    command = [
        sys.executable,
        "-m",
        "mcp_bastion.cli",
        "serve",
        "--config",
        str(config),
        "--workers",
        str(workers),
    ]
    log = tmp_path / "serve.log"
    with (
        log.open("w") as stderr,
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr) as process,
    ):
        try:
            assert _wait_for(f"http://127.0.0.1:{port}/healthz", process, log).status_code == 200
            for worker_port in range(metrics_port, metrics_port + workers):
                answer = _wait_for(f"http://127.0.0.1:{worker_port}/metrics", process, log)
                assert answer.status_code == 200
                assert "mcp_bastion_open_connections" in parse_exposition(answer.text).types
            assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404  # not on the MCP port
            process.terminate()
            assert process.wait(timeout=15) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=15)
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in log.read_text()
