"""The real demo stack in-process: two SDK upstreams, the development IdP and the gateway.

Wired exactly as ``mcp-bastion demo`` wires it (``build_demo_stack``), but served on
pre-bound loopback sockets by the test's own uvicorn threads, so a test knows every URL
before anything starts and can use the stack from its own event loop::

    with running_demo_stack() as demo:
        demo.server_url("demo")   # http://127.0.0.1:PORT/demo/mcp
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_bastion.demo.stack import DemoOptions, DemoStack, build_demo_stack
from mcp_bastion.demo.upstreams import MCP_PATH, build_demo_upstream, build_notes_upstream
from mcp_bastion.demo.whoami import WHOAMI, build_whoami_upstream

from ..support.servers import bind_loopback, serve_asgi

__all__ = ["running_demo_stack", "running_demo_upstreams", "running_exchange_demo_stack"]


@contextlib.contextmanager
def running_demo_upstreams() -> Iterator[dict[str, str]]:
    """The ``demo`` and ``notes`` SDK upstreams on loopback; yields their ``/mcp`` URLs by name."""
    with serve_asgi(build_demo_upstream()) as demo, serve_asgi(build_notes_upstream()) as notes:
        yield {"demo": f"{demo.base_url}{MCP_PATH}", "notes": f"{notes.base_url}{MCP_PATH}"}


@contextlib.contextmanager
def running_demo_stack(auto_approve: str = "alice") -> Iterator[DemoStack]:
    """The whole demo (dev IdP at ``<base>/idp`` and the gateway on one port) until the block exits."""
    with running_demo_upstreams() as urls:
        sock = bind_loopback()
        stack = build_demo_stack(DemoOptions(auto_approve=auto_approve), urls, port=sock.getsockname()[1])
        # lifespan "on": the router fans start-up out to the IdP and the gateway (key warm-up).
        with serve_asgi(stack.app, sock=sock, lifespan="on"):
            yield stack


@contextlib.contextmanager
def running_exchange_demo_stack(auto_approve: str = "alice") -> Iterator[tuple[DemoStack, list[str]]]:
    """The demo with ``exchange`` (``mcp-bastion demo --exchange``): also the ``whoami`` upstream,
    which the gateway reaches with RFC 8693 token exchange at the dev IdP. Yields the stack and
    the list of every ``Authorization`` header the ``whoami`` upstream received."""
    with running_demo_upstreams() as urls:
        whoami_sock, sock = bind_loopback(), bind_loopback()
        urls[WHOAMI] = f"http://127.0.0.1:{whoami_sock.getsockname()[1]}{MCP_PATH}"
        options = DemoOptions(auto_approve=auto_approve, exchange=True)
        stack = build_demo_stack(options, urls, port=sock.getsockname()[1])
        received: list[str] = []
        whoami = _recording_authorization(build_whoami_upstream(stack.issuer, urls[WHOAMI]), received)
        with serve_asgi(whoami, sock=whoami_sock), serve_asgi(stack.app, sock=sock, lifespan="on"):
            yield stack, received


def _recording_authorization(app: ASGIApp, received: list[str]) -> ASGIApp:
    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            received.extend(v.decode() for k, v in scope["headers"] if k.lower() == b"authorization")
        await app(scope, receive, send)

    return recorded
