"""Where the request path meets the route's safety filters (`safety/`), if it has any.

- `ScreenArguments`, the stage between Authorize and Forward: each `tools/call`'s arguments
  through the filters; a deny refuses the request (403, a JSON-RPC error echoing the id, in
  the gateway's words only), a redaction rewrites the body that goes upstream.
- `screen_results(ex)`, handed to the `ResponseGuard`: each response to a screened call,
  JSON or SSE, through the filters before the client sees it; a deny replaces the response
  with the gateway's own JSON-RPC error for that id.
- `screen_definitions(ex, known)`, from the `tools/list` filter: each learned definition.

Every verdict is recorded on the Exchange per call (`Exchange.filters`), for the audit event.
A route without filters costs one attribute check per request here.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ..errors import AuthorizationError
from ..safety.chain import SafetyChain, ToolFilters
from ..safety.verdict import CallContext
from .exchange import Exchange
from .replies import FORBIDDEN

__all__ = ["REFUSED", "ScreenArguments", "ScreenedResults", "screen_definitions", "screen_results"]

# What a client is told: a policy refused, never what a filter found.
REFUSED: Final = "refused by a safety policy"


class ScreenArguments:
    async def __call__(self, ex: Exchange) -> None:
        chain = ex.route.safety
        if chain is None:
            return
        rewritten: dict[int, Any] = {}
        for i, call in enumerate(ex.calls):
            if call.method != "tools/call" or call.name is None:
                continue
            filters = chain.for_tool(call.name)
            if not filters.arguments:
                continue
            params = call.params or {}
            screened = await chain.screen_arguments(
                filters, _context(ex, chain, call.name), params.get("arguments")
            )
            record(ex, i, screened.entries)
            if screened.denied:
                raise AuthorizationError(REFUSED)
            if screened.changed:
                rewritten[i] = screened.value
        if rewritten:
            _rewrite_body(ex, rewritten)


def _rewrite_body(ex: Exchange, arguments: dict[int, Any]) -> None:
    if ex.headers.params:
        # 2026-07-28 mirrors chosen arguments into Mcp-Param-* headers: the upstream would get
        # the redacted value in the body and the original in a header. Refused, not half-redacted.
        raise AuthorizationError(REFUSED)
    doc = orjson.loads(ex.body)  # parsed before (ParseMcp): a list exactly when a batch
    messages = doc if isinstance(doc, list) else [doc]
    for i, value in arguments.items():
        messages[i]["params"]["arguments"] = value
    ex.body = orjson.dumps(doc)


class ScreenedResults:
    """The responses of one exchange that the filters read, by request id."""

    __slots__ = ("_any", "_chain", "_ex", "_targets")

    def __init__(
        self, ex: Exchange, chain: SafetyChain, targets: dict[str | int, tuple[int, str, ToolFilters]]
    ) -> None:
        self._ex = ex
        self._chain = chain
        self._targets = targets
        # A GET stream may replay responses to earlier POSTs (resumption): their tool is
        # unknown here, so every result filter of the server reads them.
        self._any = ex.http_method == "GET" and bool(chain.any_tool.results)

    def claims(self, request_id: str | int | None) -> bool:
        if self._any:
            return True
        return (
            isinstance(request_id, (str, int))
            and not isinstance(request_id, bool)
            and request_id in self._targets
        )

    async def screen(self, message: dict[str, Any]) -> dict[str, Any]:
        rid = message.get("id")
        target = (
            self._targets.pop(rid, None)
            if isinstance(rid, (str, int)) and not isinstance(rid, bool)
            else None
        )
        if target is None:
            index, tool, filters = 0, "", self._chain.any_tool
        else:
            index, tool, filters = target
        error = "result" not in message
        key = "error" if error else "result"
        screened = await self._chain.screen_result(
            filters, _context(self._ex, self._chain, tool), message[key], error
        )
        record(self._ex, index, screened.entries)
        if screened.denied:
            self._ex.outcome, self._ex.reason = "deny", REFUSED
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": FORBIDDEN, "message": REFUSED}}
        if screened.changed:
            message[key] = screened.value
        return message


def screen_results(ex: Exchange) -> ScreenedResults | None:
    """What the `ResponseGuard` hands each claimed response to; None when nothing is screened."""
    chain = ex.route.safety
    if chain is None:
        return None
    targets: dict[str | int, tuple[int, str, ToolFilters]] = {}
    for i, call in enumerate(ex.calls):
        if call.method == "tools/call" and call.name is not None and call.id is not None:
            filters = chain.for_tool(call.name)
            if filters.results:
                targets[call.id] = (i, call.name, filters)
    if not targets and not (ex.http_method == "GET" and chain.any_tool.results):
        return None
    return ScreenedResults(ex, chain, targets)


def screen_definitions(ex: Exchange, known: list[tuple[Any, str, Any]]) -> None:
    """Judge the definitions a `tools/list` answer taught; the flags go to this call's audit."""
    chain = ex.route.safety
    assert chain is not None
    entries = chain.screen_tools(known)
    if entries:
        index = next((i for i, c in enumerate(ex.calls) if c.method == "tools/list"), 0)
        record(ex, index, tuple(entries))


def record(ex: Exchange, index: int, entries: tuple[str, ...]) -> None:
    """Add filter verdicts to call `index`'s audit event."""
    if not entries:
        return
    if ex.filters is None:
        ex.filters = {}
    ex.filters[index] = ex.filters.get(index, ()) + entries


def _context(ex: Exchange, chain: SafetyChain, tool: str) -> CallContext:
    principal = ex.principal
    subject = principal.subject if principal is not None else None
    return CallContext(chain.server, tool, subject, principal.client_id if principal is not None else None)
