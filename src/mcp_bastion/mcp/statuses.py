"""Which upstream HTTP statuses the Streamable HTTP transport defines, per request.

An upstream answer is relayed only when its status means something to an MCP client for
the request it answers (transports §Sending Messages, §Listening, §Session Management):

- 200 to anything (a JSON body or an SSE stream);
- 202 to a POST that carries no request (only notifications or responses);
- 405 to a GET (no stream offered) or a DELETE (sessions not terminable by clients), and
  200/202/204 to a DELETE;
- 404 to a request that named a session: the session expired, the client re-initializes;
- another 4xx only when its body is JSON-RPC error responses (checked when relayed).

Everything else, redirects first (a `Location` pointing at a cloud metadata address must
never reach a client, and a client must never follow an upstream's redirect with its
token), is the gateway's own 502.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["StatusUse", "status_use"]

StatusUse = Literal["answer", "empty", "session-gone", "rpc-errors", "refuse"]
_DELETE_OK: Final = frozenset({200, 202, 204})
# Not a JSON-RPC level refusal: the upstream refused our credential (401/403; its challenge
# means nothing to the client) or wants proxy credentials (407).
_NEVER_RELAYED_4XX: Final = frozenset({401, 403, 407})


def status_use(http_method: str, status: int, *, expects_response: bool, has_session: bool) -> StatusUse:
    """How to use an upstream answer with `status` to `http_method` (see the module docstring).

    `expects_response`: the POST carries at least one request (a message with an id and a
    method); `has_session`: the request named an upstream session (session era).
    """
    if status == 200:
        return "answer" if http_method != "DELETE" else "empty"
    empty = (
        (status == 202 and not expects_response)
        if http_method == "POST"
        else status == 405 or (http_method == "DELETE" and status in _DELETE_OK)
    )
    if empty:
        return "empty"
    if status == 404 and has_session:
        return "session-gone"
    if 400 <= status < 500 and status not in _NEVER_RELAYED_4XX:
        return "rpc-errors"
    return "refuse"
