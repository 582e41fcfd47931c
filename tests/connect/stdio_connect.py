"""The official SDK's stdio client spawning ``mcp-bastion connect --headless``, with a browser.

``connect --headless`` prints the authorization URL on stderr. :class:`ScriptedBrowser`
reads that stderr (through a pipe, in a thread), follows each URL with a cookie-keeping
HTTP client as a browser would (the development IdP auto-approves, so the redirects end
at connect's loopback callback, which completes the login), and records what it saw::

    async with connect_client(url, store) as (client, browser):
        await client.list_tools()
    assert browser.authorizations[0]["resource"] == url
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcp_bastion.connect.login import HEADLESS_PROMPT

__all__ = ["CONNECT", "ScriptedBrowser", "connect_client", "connect_params"]

# The installed entry point of this venv, so the test runs exactly what a user runs.
CONNECT = str(Path(sys.executable).with_name("mcp-bastion"))
TIMEOUT_S = 20.0


@dataclass
class ScriptedBrowser:
    """Reads connect's stderr; opens every login URL it prints by following the redirects."""

    follow: Callable[[str], None] | None = None
    authorizations: list[dict[str, str]] = field(default_factory=list)
    callbacks: list[dict[str, str]] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self, stream: int) -> None:
        with os.fdopen(stream, "r", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                self.stderr.append(line)
                if line.startswith(HEADLESS_PROMPT):
                    url = line[len(HEADLESS_PROMPT) :].strip()
                    self.authorizations.append(dict(parse_qsl(urlsplit(url).query)))
                    (self.follow or self._follow)(url)

    def _follow(self, url: str) -> None:
        try:
            with httpx.Client(follow_redirects=True, timeout=TIMEOUT_S, trust_env=False) as http:
                final = http.get(url).url  # connect's loopback callback, after the IdP's redirects
            self.callbacks.append(dict(parse_qsl(final.query.decode())))
        except httpx.HTTPError as exc:  # recorded: the test's assertions say what was expected
            self.errors.append(f"{type(exc).__name__}: {exc}")

    @property
    def text(self) -> str:
        return "".join(self.stderr)


def connect_params(
    url: str, store: Path, extra: Sequence[str] = (), *, debug: bool = False
) -> StdioServerParameters:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(store.parent)}
    args = [
        *(["--debug"] if debug else []),
        "connect",
        "--headless",
        "--token-store",
        str(store),
        *extra,
        url,
    ]
    return StdioServerParameters(command=CONNECT, args=args, env=env)


@contextlib.asynccontextmanager
async def connect_client(
    url: str,
    store: Path,
    *,
    mode: str = "legacy",
    extra: Sequence[str] = (),
    browser: ScriptedBrowser | None = None,
    debug: bool = False,
) -> AsyncIterator[tuple[Client, ScriptedBrowser]]:
    """An SDK client talking to ``mcp-bastion connect --headless URL`` over stdio."""
    browser = browser if browser is not None else ScriptedBrowser()
    read_fd, write_fd = os.pipe()
    reader = threading.Thread(target=browser.run, args=(read_fd,), daemon=True)
    reader.start()
    try:
        with os.fdopen(write_fd, "w") as errlog:
            transport = stdio_client(connect_params(url, store, extra, debug=debug), errlog=errlog)
            async with Client(transport, mode=mode, read_timeout_seconds=TIMEOUT_S) as client:
                yield client, browser
    finally:
        reader.join(TIMEOUT_S)
