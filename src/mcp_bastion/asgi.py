"""The ASGI vocabulary every part of mcp-bastion speaks (ASGI 3.0, HTTP and lifespan scopes).

One set of names for the gateway, its HTTP server, the demo's router and the development IdP.
Messages stay plain dicts: typed dicts would cost a conversion per message on the request
path, and the ASGI servers we run under hand us plain dicts anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["ASGIApp", "AnyASGIApp", "Headers", "Message", "Receive", "Scope", "Send"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]  # raw (name, value) pairs, names lower-case
# An app of another framework (Starlette types its messages as MutableMapping), as the demo's
# router mounts it beside ours: any ASGI 3 callable.
AnyASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
