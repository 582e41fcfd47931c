"""Turning a BastionError into an HTTP answer: the one place errors meet the wire.

401 carries the RFC 9728 challenge (with `scope=`), 403 insufficient_scope names what the
call needs, protocol errors are JSON-RPC error objects echoing the request id. Messages
are ours: nothing from a token or an upstream body is ever reflected.
"""

from __future__ import annotations

import orjson

from ..asgi import Headers, Send
from ..auth.bearer import challenge
from ..errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    InsufficientScope,
    ProtocolError,
    QuotaExceeded,
    RequestRejected,
    UpstreamError,
    UpstreamTimeout,
)
from ..mcp.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, error_body
from ..route import ServerRoute
from .exchange import Exchange

__all__ = ["JSON", "Reply", "error_reply", "send_reply"]

REQUEST_TIMEOUT = -32001  # the code the MCP SDKs use for a request that timed out
FORBIDDEN = -32003  # implementation-defined server error range (JSON-RPC 2.0 §5.1)
RATE_LIMITED = -32029  # the same range; no MCP spec defines one (429 as a mnemonic)
JSON = (b"content-type", b"application/json")
Reply = tuple[int, Headers, bytes]
_CLOSE_AFTER = frozenset({408, 413, 431})


def error_reply(route: ServerRoute, err: BastionError, ex: Exchange | None) -> Reply:
    request_id = ex.calls[0].id if ex is not None and len(ex.calls) == 1 else None
    if isinstance(err, AuthenticationError):
        www = challenge(route.metadata_url, route.start_scopes, err.error, err.message if err.error else "")
        body = {"error": err.error or "unauthorized", "error_description": err.message}
        return 401, [JSON, (b"www-authenticate", www.encode())], orjson.dumps(body)
    if isinstance(err, InsufficientScope):
        www = challenge(route.metadata_url, err.scopes, "insufficient_scope", err.message)
        body = {
            "error": "insufficient_scope",
            "error_description": err.message,
            "scope": " ".join(err.scopes),
        }
        return 403, [JSON, (b"www-authenticate", www.encode())], orjson.dumps(body)
    if isinstance(err, AuthorizationError):
        # Refused for a reason other than scopes (a policy rule): no challenge, no step-up to
        # offer; a JSON-RPC error echoing the id, so the client can tell which call failed.
        return 403, [JSON], error_body(request_id, FORBIDDEN, err.message)
    if isinstance(err, QuotaExceeded):
        # RFC 9110 §10.2.3 / RFC 6585 §4: Retry-After in whole seconds, so a client can back off.
        retry = (b"retry-after", str(err.retry_after).encode())
        return err.status, [JSON, retry], error_body(request_id, RATE_LIMITED, err.message)
    if isinstance(err, ProtocolError):
        rid = err.request_id if err.request_id is not None else request_id
        return err.status, [JSON], error_body(rid, err.code, err.message, err.data)
    if isinstance(err, RequestRejected):
        return err.status, [JSON], error_body(None, INVALID_REQUEST, err.message)
    if isinstance(err, UpstreamTimeout):
        return err.status, [JSON], error_body(request_id, REQUEST_TIMEOUT, "Upstream timed out")
    if isinstance(err, UpstreamError):
        return err.status, [JSON], error_body(request_id, INTERNAL_ERROR, f"Upstream error: {err.message}")
    return 500, [JSON], error_body(request_id, INTERNAL_ERROR, "Internal error")


async def send_reply(send: Send, reply: Reply) -> None:
    status, headers, body = reply
    headers = [*headers, (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
    if status in _CLOSE_AFTER:
        # The client may still be sending (a slow or oversized body): do not keep reading it.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
