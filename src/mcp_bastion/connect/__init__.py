"""`mcp-bastion connect URL`: a local stdio MCP server in front of a remote, OAuth-protected one.

A desktop client that only speaks stdio runs ``mcp-bastion connect https://host/mcp``; this
package relays its JSON-RPC lines to the remote Streamable HTTP server (:mod:`.relay`) and
does the OAuth client work on its behalf (:mod:`.oauth`): discovery (:mod:`.discovery`),
registration (:mod:`.registration`), the browser login (:mod:`.login`) and the token store
(:mod:`.tokens`). stdout carries only MCP messages; every log line goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import httpx

from ._errors import ConnectError
from ._urls import require_web_url
from .oauth import AuthOptions, Authorizer
from .relay import Relay, encode_line

__all__ = ["AuthOptions", "ConnectError", "ConnectOptions", "run_connect"]

log = logging.getLogger(__name__)

MAX_LINE_BYTES: Final = 16 * 1024 * 1024
PARSE_ERROR: Final = -32700
TIMEOUT: Final = httpx.Timeout(30.0, read=300.0)  # a tool call may stream for minutes
SHUTDOWN_GRACE_S: Final = 5.0


@dataclass(frozen=True)
class ConnectOptions:
    url: str
    auth: AuthOptions


def run_connect(
    options: ConnectOptions, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> int:
    """Serve stdio until the client closes stdin; the exit status."""
    require_web_url(options.url, "the server URL")
    return asyncio.run(_serve(options, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer))


async def _serve(options: ConnectOptions, stdin: BinaryIO, stdout: BinaryIO) -> int:
    lock = asyncio.Lock()

    async def write(message: Any) -> None:
        async with lock:
            stdout.write(encode_line(message))
            stdout.flush()

    # trust_env=False: no proxy or netrc from the environment sees the tokens.
    async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, follow_redirects=False) as http:
        relay = Relay(http, options.url, Authorizer(http, options.url, options.auth), write)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            line = await asyncio.to_thread(stdin.readline, MAX_LINE_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_LINE_BYTES:
                await write(_error(None, "message too large"))
                break  # the rest of that line cannot be framed any more
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                await write(_error(None, "Parse error"))
                continue
            task = asyncio.create_task(relay.forward(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await relay.close()
    return 0


def _error(request_id: Any, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": PARSE_ERROR, "message": text}}
