"""Label values for metrics, each from a set fixed in code or config: never a client's or an
upstream's text as such.

A label value makes a new time series. A method name, a tool name or a reason sentence taken
from a request would let any caller create series without bound and exhaust the gateway's and
Prometheus's memory (and would copy caller text into an operator's dashboards). So:

- server: a configured server name;
- method: one of the MCP methods below, the HTTP method for a request with no JSON-RPC body,
  else `other`; tool names are never labels (they are span attributes, capped in length);
- decision: allow, deny or error;
- reason: a fixed vocabulary derived from the status the gateway chose, not its message.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MCP_METHODS", "method_label", "reason_label"]

MCP_METHODS: Final = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
        "response",  # a client's response to a server request (the audit event's name for it)
        "GET",
        "POST",
        "DELETE",
    }
)

# The gateway's own refusals, by the status it chose (pipeline/replies.py, errors.py).
_REFUSALS: Final = {
    400: "invalid_request",
    401: "invalid_token",
    403: "forbidden",
    404: "session_not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    421: "misdirected",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
    504: "upstream_timeout",
}
_INSUFFICIENT_SCOPE: Final = "the token lacks scopes this call needs"  # pipeline/authorize.py
_MISSING_TOKEN: Final = "no bearer token"  # noqa: S105  # the message of auth/bearer.py, not a secret


def method_label(method: str) -> str:
    if not method:
        return "response"  # a client's response to a server's request carries no method
    return method if method in MCP_METHODS else "other"


def reason_label(decision: str, status: int, reason: str) -> str:
    """A bounded reason: `ok`, `client_disconnected`, or the kind of refusal."""
    if reason == "client disconnected":
        return "client_disconnected"
    if decision == "allow":
        return "ok"
    if status == 401 and reason == _MISSING_TOKEN:
        return "missing_token"
    if status == 403 and reason == _INSUFFICIENT_SCOPE:
        return "insufficient_scope"
    return _REFUSALS.get(status, "other")
