"""The bytes of a response head, with the response-splitting guard, and the server's own
plain-text answers (for requests that never became an app's business)."""

from __future__ import annotations

__all__ = ["plain_answer", "response_head"]

_STATUS_LINES = {
    200: b"HTTP/1.1 200 OK\r\n",
    202: b"HTTP/1.1 202 Accepted\r\n",
    204: b"HTTP/1.1 204 No Content\r\n",
}
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def plain_answer(status: int, message: bytes, *, close: bool) -> bytes:
    body = message + b"\n"
    return (
        response_head(status, [(b"content-type", b"text/plain; charset=utf-8")], len(body), close=close)
        + body
    )


def response_head(
    status: int, headers: list[tuple[bytes, bytes]], length: int | None, *, close: bool
) -> bytes:
    line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "").encode())
    parts = [line]
    for name, value in headers:
        parts += [name, b": ", value, b"\r\n"]
    if length is not None:
        parts += [b"content-length: ", str(length).encode(), b"\r\n"]
    if close:
        parts.append(b"connection: close\r\n")
    block = b"".join(parts)
    # Response splitting guard: every header line ends in exactly one CRLF, and nothing else
    # in the head is a CR or LF (header values from an upstream are relayed through here).
    lines = len(headers) + (length is not None) + close + 1
    if block.count(b"\n") != lines or block.count(b"\r") != lines:
        raise RuntimeError("refusing to send a response header with a line break")
    return block + b"\r\n"
