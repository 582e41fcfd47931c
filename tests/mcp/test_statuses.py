"""Which upstream statuses a client may see, written out from the Streamable HTTP transport.

Each row is read off the spec (2025-11-25 basic/transports.mdx), not off the code:

- §Sending Messages 4: a POST of only notifications/responses is answered 202 Accepted with
  no body, or an error status whose body MAY be a JSON-RPC error response;
- §Sending Messages 5: a POST carrying a request is answered with JSON or an SSE stream:
  a 200; a 202 there would leave the client waiting for a response that never comes;
- §Listening 3: a GET is answered with an SSE stream or 405 Method Not Allowed;
- §Session Management 3-5: a terminated session is 404 to any request naming it; a DELETE
  may be refused with 405; a session-less request may get 400;
- redirects, 401/403/407 (the upstream refusing the *gateway's* credential) and 5xx are
  nothing a client can act on: the gateway's own 502 ("refuse").

"empty": relayed with no body; "answer": a JSON or SSE body, checked; "rpc-errors": relayed
only if the body is JSON-RPC error responses; "session-gone": the gateway's own 404 -32001.
"""

from __future__ import annotations

import pytest

from mcp_bastion.mcp.statuses import status_use

REQUEST = dict(expects_response=True, has_session=False)
REQUEST_IN_SESSION = dict(expects_response=True, has_session=True)
NO_REQUEST = dict(expects_response=False, has_session=False)
NO_REQUEST_IN_SESSION = dict(expects_response=False, has_session=True)
STREAM = dict(expects_response=False, has_session=False)
STREAM_IN_SESSION = dict(expects_response=False, has_session=True)

TABLE = [
    # --- a POST carrying at least one request ---
    ("POST", 200, REQUEST, "answer"),
    ("POST", 200, REQUEST_IN_SESSION, "answer"),
    ("POST", 202, REQUEST, "refuse"),
    ("POST", 202, REQUEST_IN_SESSION, "refuse"),
    ("POST", 201, REQUEST, "refuse"),
    ("POST", 203, REQUEST, "refuse"),
    ("POST", 204, REQUEST, "refuse"),
    ("POST", 206, REQUEST, "refuse"),
    ("POST", 100, REQUEST, "refuse"),
    ("POST", 300, REQUEST, "refuse"),
    ("POST", 301, REQUEST, "refuse"),
    ("POST", 302, REQUEST, "refuse"),
    ("POST", 303, REQUEST, "refuse"),
    ("POST", 304, REQUEST, "refuse"),
    ("POST", 307, REQUEST, "refuse"),
    ("POST", 308, REQUEST, "refuse"),
    ("POST", 400, REQUEST, "rpc-errors"),
    ("POST", 400, REQUEST_IN_SESSION, "rpc-errors"),
    ("POST", 401, REQUEST, "refuse"),
    ("POST", 402, REQUEST, "rpc-errors"),
    ("POST", 403, REQUEST, "refuse"),
    ("POST", 404, REQUEST, "rpc-errors"),
    ("POST", 404, REQUEST_IN_SESSION, "session-gone"),
    ("POST", 405, REQUEST, "rpc-errors"),
    ("POST", 406, REQUEST, "rpc-errors"),
    ("POST", 407, REQUEST, "refuse"),
    ("POST", 408, REQUEST, "rpc-errors"),
    ("POST", 409, REQUEST, "rpc-errors"),
    ("POST", 413, REQUEST, "rpc-errors"),
    ("POST", 415, REQUEST, "rpc-errors"),
    ("POST", 422, REQUEST, "rpc-errors"),
    ("POST", 429, REQUEST, "rpc-errors"),
    ("POST", 499, REQUEST, "rpc-errors"),
    ("POST", 500, REQUEST, "refuse"),
    ("POST", 501, REQUEST, "refuse"),
    ("POST", 502, REQUEST, "refuse"),
    ("POST", 503, REQUEST, "refuse"),
    ("POST", 504, REQUEST, "refuse"),
    ("POST", 599, REQUEST, "refuse"),
    # --- a POST of only notifications and responses ---
    # The spec says 202; a 200 is tolerated because its body is still checked, and with no
    # request in the POST no response in it can be relayed (UP-04).
    ("POST", 200, NO_REQUEST, "answer"),
    ("POST", 202, NO_REQUEST, "empty"),
    ("POST", 202, NO_REQUEST_IN_SESSION, "empty"),
    ("POST", 201, NO_REQUEST, "refuse"),
    ("POST", 204, NO_REQUEST, "refuse"),  # the spec says 202, nothing else
    ("POST", 302, NO_REQUEST, "refuse"),
    ("POST", 400, NO_REQUEST, "rpc-errors"),
    ("POST", 401, NO_REQUEST, "refuse"),
    ("POST", 403, NO_REQUEST, "refuse"),
    ("POST", 404, NO_REQUEST, "rpc-errors"),
    ("POST", 404, NO_REQUEST_IN_SESSION, "session-gone"),
    ("POST", 405, NO_REQUEST, "rpc-errors"),
    ("POST", 407, NO_REQUEST, "refuse"),
    ("POST", 500, NO_REQUEST, "refuse"),
    # --- GET: the notification stream ---
    ("GET", 200, STREAM, "answer"),
    ("GET", 200, STREAM_IN_SESSION, "answer"),
    ("GET", 405, STREAM, "empty"),
    ("GET", 405, STREAM_IN_SESSION, "empty"),
    ("GET", 202, STREAM, "refuse"),
    ("GET", 204, STREAM, "refuse"),
    ("GET", 301, STREAM, "refuse"),
    ("GET", 302, STREAM_IN_SESSION, "refuse"),
    ("GET", 307, STREAM, "refuse"),
    ("GET", 400, STREAM, "rpc-errors"),
    ("GET", 401, STREAM, "refuse"),
    ("GET", 403, STREAM_IN_SESSION, "refuse"),
    ("GET", 404, STREAM, "rpc-errors"),
    ("GET", 404, STREAM_IN_SESSION, "session-gone"),
    ("GET", 406, STREAM, "rpc-errors"),
    ("GET", 407, STREAM, "refuse"),
    ("GET", 500, STREAM, "refuse"),
    ("GET", 503, STREAM_IN_SESSION, "refuse"),
    # --- DELETE: ending a session ---
    ("DELETE", 200, STREAM_IN_SESSION, "empty"),
    ("DELETE", 202, STREAM_IN_SESSION, "empty"),
    ("DELETE", 204, STREAM_IN_SESSION, "empty"),
    ("DELETE", 405, STREAM_IN_SESSION, "empty"),
    ("DELETE", 201, STREAM_IN_SESSION, "refuse"),
    ("DELETE", 206, STREAM_IN_SESSION, "refuse"),
    ("DELETE", 302, STREAM_IN_SESSION, "refuse"),
    ("DELETE", 308, STREAM_IN_SESSION, "refuse"),
    ("DELETE", 400, STREAM_IN_SESSION, "rpc-errors"),
    ("DELETE", 401, STREAM_IN_SESSION, "refuse"),
    ("DELETE", 403, STREAM_IN_SESSION, "refuse"),
    ("DELETE", 404, STREAM_IN_SESSION, "session-gone"),
    ("DELETE", 404, STREAM, "rpc-errors"),
    ("DELETE", 407, STREAM_IN_SESSION, "refuse"),
    ("DELETE", 409, STREAM_IN_SESSION, "rpc-errors"),
    ("DELETE", 500, STREAM_IN_SESSION, "refuse"),
]


@pytest.mark.parametrize(("method", "status", "request_kind", "use"), TABLE)
def test_status_use(method: str, status: int, request_kind: dict[str, bool], use: str) -> None:
    assert status_use(method, status, **request_kind) == use


def test_every_redirect_is_refused_whatever_the_request() -> None:
    # A Location pointing at a cloud metadata address must never reach a client, and a client
    # must never follow an upstream's redirect carrying its own token (issue 9).
    for method in ("POST", "GET", "DELETE"):
        for status in range(300, 400):
            for expects_response in (False, True):
                for has_session in (False, True):
                    use = status_use(
                        method, status, expects_response=expects_response, has_session=has_session
                    )
                    assert use == "refuse", (method, status)


def test_every_5xx_is_refused_whatever_the_request() -> None:
    for method in ("POST", "GET", "DELETE"):
        for status in range(500, 600):
            for has_session in (False, True):
                assert status_use(method, status, expects_response=False, has_session=has_session) == "refuse"
