"""The errors of `mcp-bastion connect`: one class, in the package's error tree."""

from __future__ import annotations

from ..errors import BastionError

__all__ = ["ConnectError"]


class ConnectError(BastionError):
    """The remote server or its authorization server cannot be used safely, or refused us.

    Messages name what was wrong (an endpoint, a check) and never carry a token, a code,
    a client secret or a server's own error text beyond its OAuth ``error`` code.
    """

    status = 502
    error = "connect_failed"
