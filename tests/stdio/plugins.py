"""Helpers for the stdio tests: a gateway in front of a `command:` server, and JSON-RPC over it."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..support.gateway import RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer, running_issuer

MODERN = "2026-07-28"
MODERN_META = "io.modelcontextprotocol/protocolVersion"
# What a call in flight on a process that goes away is told, whichever of its pipes closes first.
STOPPED = {
    "the stdio plug-in was stopped",
    "the stdio plug-in exited",
    "the stdio plug-in closed its output",
}
PLUGIN = str(Path(__file__).resolve().parents[1] / "fixtures" / "stdio_plugin.py")


def plugin_server(*flags: str, name: str = "plug", **options: Any) -> dict[str, Any]:
    """A `command:` server running the hostile test plug-in with `flags`."""
    return {"name": name, "command": [sys.executable, PLUGIN, *flags], **options}


class Caller:
    """One user's JSON-RPC over the gateway (a real HTTP client on loopback)."""

    def __init__(self, http: httpx.Client, url: str, token: str) -> None:
        self.http, self.url, self.token = http, url, token

    def post(self, body: object) -> httpx.Response:
        return post_mcp(self.http, self.url, body, token=self.token)

    def call(self, tool: str, request_id: object = 1, **arguments: Any) -> dict[str, Any]:
        params = {"name": tool, "arguments": arguments}
        answer: dict[str, Any] = self.post(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        ).json()
        return answer

    def text(self, tool: str, request_id: object = 1, **arguments: Any) -> str:
        answer = self.call(tool, request_id, **arguments)
        assert "result" in answer, answer
        return str(answer["result"]["content"][0]["text"])

    def events(
        self,
        tool: str,
        request_id: object = 1,
        meta: dict[str, Any] | None = None,
        modern: bool = False,
        **arguments: Any,
    ) -> list[dict[str, Any]]:
        """A call whose answer is an event stream (a progress token, or logs asked for): every
        message of it, in order. `modern`: a 2026-07-28 request (header and envelope)."""
        meta = dict(meta or {})
        headers = None
        if modern:
            meta[MODERN_META] = MODERN
            headers = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": tool}
        params = {"name": tool, "arguments": arguments, "_meta": meta}
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        response = post_mcp(self.http, self.url, body, token=self.token, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        return sse_messages(response.text)

    def identity(self) -> str:
        return self.text("whoami")[::-1]  # the plug-in reverses it (fixtures/stdio_plugin.py)


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an event stream's `data:` lines, in order."""
    messages = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
        if data.strip():
            messages.append(json.loads(data))
    return messages


@dataclass
class Stack:
    issuer: LocalIssuer
    gw: RunningGateway
    clients: list[httpx.Client]

    def caller(self, subject: str, server: str = "plug", timeout: float = 30) -> Caller:
        token = self.issuer.token(audience=self.gw.url(server), subject=subject)
        http = httpx.Client(timeout=timeout, trust_env=False)
        self.clients.append(http)
        return Caller(http, self.gw.url(server), token)

    @property
    def jwks_url(self) -> str:
        return f"{self.gw.base_url}/.well-known/jwks.json"


@contextlib.contextmanager
def stdio_gateway(*servers: dict[str, Any], secrets: dict[str, str] | None = None) -> Iterator[Stack]:
    """The gateway in front of `servers`, with a test issuer; every client closed at the end."""
    with running_issuer() as issuer, running_gateway(issuer.issuer, {}, secrets, servers=list(servers)) as gw:
        stack = Stack(issuer, gw, [])
        try:
            yield stack
        finally:
            for http in stack.clients:
                http.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition under a deadline (a process's death is not an event we can await here)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def eventually(who: Caller, tool: str, timeout: float = 10.0, **arguments: Any) -> str:
    """The tool's text once the caller's process is back (after a restart's backoff)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = who.call(tool, 9, **arguments)
        if "result" in answer:
            return str(answer["result"]["content"][0]["text"])
        assert "restarts in" in answer["error"]["message"], answer  # the backoff, nothing else
        assert time.monotonic() < deadline
        time.sleep(0.02)
