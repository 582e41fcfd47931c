"""The load workloads: what is sent, in which protocol era, at which concurrency, checked how."""

from __future__ import annotations

from dataclasses import dataclass

from .load import Request
from .targets import Target

_META = (
    '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},'
    '"io.modelcontextprotocol/clientCapabilities":{}}'
)
CALL = '{"jsonrpc":"2.0","id":@N@,"method":"tools/call","params":{"name":"%s","arguments":{"n":@N@}}}'
STATELESS_CALL = (
    '{"jsonrpc":"2.0","id":@N@,"method":"tools/call","params":{"name":"echo","arguments":{"n":@N@},'
    + _META
    + "}}"
)
LIST = '{"jsonrpc":"2.0","id":@N@,"method":"tools/list","params":{}}'
INITIALIZE = (
    '{"jsonrpc":"2.0","id":@N@,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
    '"capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
)


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    era: str  # legacy (session id), modern (2026-07-28, no session), initialize (no session yet)
    body: str
    check: str
    connections: int

    @property
    def method(self) -> str:
        return {"list": "tools/list", "session": "initialize"}.get(self.check, "tools/call")

    def request(self, target: Target) -> Request:
        expected = target.expected_tools if self.check == "list" else 0
        return Request(self.body, self.check, target.headers(self.era), expected, self.method)


WORKLOADS = (
    Workload("call_json_c1", "tools/call, JSON answer, c=1 (latency)", "legacy", CALL % "echo", "echo", 1),
    Workload(
        "call_json_c32", "tools/call, JSON answer, c=32 (throughput)", "legacy", CALL % "echo", "echo", 32
    ),
    Workload("call_sse_c1", "tools/call, SSE answer, c=1", "legacy", CALL % "echo_sse", "echo", 1),
    Workload("call_sse_c32", "tools/call, SSE answer, c=32", "legacy", CALL % "echo_sse", "echo", 32),
    Workload("list_c32", "tools/list of 200 tools, filtered by scopes, c=32", "legacy", LIST, "list", 32),
    Workload(
        "stateless_c1",
        "2026-07-28 stateless tools/call (Mcp-Method/Mcp-Name), c=1",
        "modern",
        STATELESS_CALL,
        "echo",
        1,
    ),
    Workload(
        "stateless_c32",
        "2026-07-28 stateless tools/call (Mcp-Method/Mcp-Name), c=32",
        "modern",
        STATELESS_CALL,
        "echo",
        32,
    ),
    Workload(
        "new_session_c32",
        "new session: initialize (+ sealed id at the gateway), c=32",
        "initialize",
        INITIALIZE,
        "session",
        32,
    ),
)
WORKERS = Workload(
    "workers_call_json_c32",
    "tools/call JSON c=32: serve --workers 1 vs 2",
    "legacy",
    CALL % "echo",
    "echo",
    32,
)
# Cedar off (C) and on (CC, CA), interleaved round by round like the others.
CEDAR = tuple(
    Workload(
        f"cedar_{w.name}", f"{w.title}: Cedar off (C) vs on (CC, CA)", w.era, w.body, w.check, w.connections
    )
    for w in WORKLOADS
    if w.name in ("call_json_c1", "call_json_c32", "list_c32")
)
HOLD = CALL % "hold"
PINNING = (
    Workload(
        "pinning_list_c32",
        "tools/list of 200 tools, c=32: pinning off (O), record (C, the default), enforce (K)",
        "legacy",
        LIST,
        "list",
        32,
    ),
    Workload(
        "pinning_call_json_c32",
        "tools/call JSON c=32: pinning off (O), record (C, the default), enforce (K)",
        "legacy",
        CALL % "echo",
        "echo",
        32,
    ),
)
