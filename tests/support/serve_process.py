"""`mcp-bastion serve` as an operator runs it: a real subprocess, its stderr log watched line
by line, signals sent to it, raw sockets to its port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from .servers import bind_loopback

START_TIMEOUT_S = 20.0


def free_port() -> int:
    sock = bind_loopback()
    port = int(sock.getsockname()[1])
    sock.close()  # free again for serve to bind (loopback, ephemeral range)
    return port


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, wanted: Callable[[str], bool], timeout: float = START_TIMEOUT_S) -> str:
        """The first log line (from the start) that `wanted` accepts; fails after `timeout`."""

        def found() -> str | None:
            hit = next((line for line in self.lines if wanted(line)), None)
            return hit if hit is not None or self.process.poll() is None else ""

        with self._changed:
            line = self._changed.wait_for(found, timeout)
        assert line, f"no such log line within {timeout}s (exit {self.process.poll()}):\n{self.log}"
        return line

    def wait_for_text(self, text: str, timeout: float = START_TIMEOUT_S) -> str:
        return self.wait_for_line(lambda line: text in line, timeout)

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_until_serving(self, http: httpx.Client, timeout: float = START_TIMEOUT_S) -> None:
        """Poll /healthz until it answers (for a log level that hides "listening on")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early:\n{self.log}"
            try:
                if http.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)  # polling a subprocess's port: there is no event to wait on
        raise AssertionError(f"serve did not answer within {timeout}s:\n{self.log}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then the exit status (fails if it does not exit within `timeout`)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def write_config(path: Path, config: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def serve_process(
    config: Path, port: int, *args: str, env: dict[str, str] | None = None, ready: str = "listening on"
) -> Iterator[ServeProcess]:
    """Run `mcp-bastion serve --config CONFIG ARGS...` until it logs `ready`; kill it on the way
    out if the test left it running."""
    command = [sys.executable, "-m", "mcp_bastion.cli", "serve", "--config", str(config), *args]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    served = ServeProcess(process, port)
    reader = threading.Thread(target=served._read, daemon=True)
    reader.start()
    try:
        served.wait_for_text(ready)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
        reader.join(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
