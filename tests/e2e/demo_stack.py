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

from mcp_bastion.demo.stack import DemoOptions, DemoStack, build_demo_stack
from mcp_bastion.demo.upstreams import MCP_PATH, build_demo_upstream, build_notes_upstream

from ..support.servers import bind_loopback, serve_asgi

__all__ = ["running_demo_stack", "running_demo_upstreams"]


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
