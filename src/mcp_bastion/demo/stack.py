"""The one-command demo: development IdP, two sample upstreams and the gateway, wired by config.

The gateway trusts the development IdP only because the config built here says so, exactly
as it would trust an enterprise IdP. The IdP and the gateway share the public port; the
sample upstreams listen on ephemeral loopback ports nobody else needs to know.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from ..app import build_gateway
from ..config import BastionConfig, LoadedConfig, parse_config
from ..devidp import DevIdpSettings, StaticClient, build_devidp
from ..errors import ConfigError
from ..registry.resources import published_resources
from .router import PrefixRouter
from .upstreams import MCP_PATH, build_demo_upstream, build_notes_upstream
from .whoami import WHOAMI, build_whoami_upstream

__all__ = [
    "DemoOptions",
    "DemoStack",
    "build_demo_stack",
    "check_bind",
    "listen_socket",
    "run_demo",
    "uvicorn_server",
]

DEMO_SERVERS = ("demo", "notes")
#: The gateway's client at the development IdP, for token exchange (``--exchange``).
GATEWAY_CLIENT_ID = "mcp-bastion-gateway"


@dataclass(frozen=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    auto_approve: str | None = None
    allow_remote: bool = False
    # A `serve` config to run beside the demo (examples/dev.yaml): its resources are
    # registered with the development IdP, and its loopback upstreams named `demo` and
    # `notes` are the demo's sample servers.
    serve_config: BastionConfig | None = None
    # A third server, `whoami`, reached with `upstream_auth: {type: exchange}`: the gateway
    # trades the user's token at the IdP for one addressed to that upstream (RFC 8693).
    exchange: bool = False


@dataclass(frozen=True)
class DemoStack:
    base_url: str
    issuer: str
    config: BastionConfig
    app: Any
    upstream_apps: dict[str, Any]
    exchange: bool = False

    @property
    def server_names(self) -> tuple[str, ...]:
        return (*DEMO_SERVERS, WHOAMI) if self.exchange else DEMO_SERVERS

    def server_url(self, name: str) -> str:
        return f"{self.base_url}/{name}/mcp"

    def client_config(self) -> dict[str, Any]:
        return {
            "mcpServers": {name: {"type": "http", "url": self.server_url(name)} for name in self.server_names}
        }


def check_bind(host: str, allow_remote: bool) -> None:
    """The development IdP issues tokens to anyone who asks: keep it on loopback unless told."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ConfigError(
            f"refusing to bind the demo (with its development IdP) to {host}",
            hint="use 127.0.0.1, or pass --allow-remote if you really mean to expose it",
        )


def build_demo_stack(options: DemoOptions, upstream_urls: dict[str, str], *, port: int) -> DemoStack:
    display_host = f"[{options.host}]" if ":" in options.host else options.host
    base = f"http://{display_host}:{port}"
    issuer = f"{base}/idp"
    resources: dict[str, tuple[str, ...]] = {
        f"{base}/{name}/mcp": ("tools.read", "tools.write", "admin") for name in DEMO_SERVERS
    }
    if options.serve_config is not None:
        resources.update(_companion_resources(options.serve_config, issuer))
    exchange = _ExchangeWiring(base, upstream_urls[WHOAMI]) if options.exchange else None
    if exchange is not None:
        resources.update(exchange.resources)
    idp = build_devidp(
        DevIdpSettings(
            issuer=issuer,
            resources=resources,
            auto_approve=options.auto_approve,
            clients=exchange.idp_clients if exchange is not None else (),
        )
    )
    identity_provider: dict[str, Any] = {"name": "devidp", "issuer": issuer, "allow_insecure_http": True}
    servers: list[dict[str, Any]] = [
        {"name": "demo", "upstream": upstream_urls["demo"], "title": "Demo tools"},
        {"name": "notes", "upstream": upstream_urls["notes"], "title": "Notes"},
    ]
    if exchange is not None:
        identity_provider["client"] = exchange.gateway_client
        servers.append(exchange.server)
    config = parse_config(
        {
            "public_base_url": base,
            "allowed_hosts": [f"localhost:{port}", f"127.0.0.1:{port}"],
            "identity_providers": [identity_provider],
            "servers": servers,
            "audit": {"sink": "stdout"},
        },
        source="<demo>",
    )
    # A fresh session key per run: the demo is one process, so nothing needs to share it.
    session_key = base64.b64encode(os.urandom(32)).decode()
    secrets = {"sessions.key": session_key}
    if exchange is not None:
        secrets["identity_providers[0].client.secret"] = exchange.secret
    gateway = build_gateway(LoadedConfig(config, secrets))
    app = PrefixRouter([(idp.path_prefixes, idp.app)], fallback=gateway)
    return DemoStack(base, issuer, config, app, {}, exchange=options.exchange)


class _ExchangeWiring:
    """The `whoami` server behind token exchange: its IdP resources, the gateway's client at
    the IdP (a fresh secret per run) and the gateway's server entry."""

    def __init__(self, base: str, upstream: str) -> None:
        self.secret = base64.urlsafe_b64encode(os.urandom(32)).decode()
        front = f"{base}/{WHOAMI}/mcp"
        scopes = ("tools.read", "tools.write", "admin")
        # The upstream is a resource of its own: the exchanged token's audience.
        self.resources = {front: scopes, upstream: scopes}
        # The gateway may present its users' tokens for `front` and obtain tokens for `upstream`.
        self.idp_clients = (StaticClient(GATEWAY_CLIENT_ID, self.secret, (), (upstream,), (front,)),)
        self.gateway_client = {
            "client_id": GATEWAY_CLIENT_ID,
            "auth_method": "client_secret_basic",
            "secret": {"env": "MCP_BASTION_DEMO_GATEWAY_SECRET"},  # never read: passed in memory
        }
        self.server = {
            "name": WHOAMI,
            "upstream": upstream,
            "title": "Who the upstream sees",
            "upstream_auth": {"type": "exchange", "exchange": {"identity_provider": "devidp"}},
        }


def _companion_resources(config: BastionConfig, issuer: str) -> dict[str, tuple[str, ...]]:
    """The resources and scopes of a `serve` config that trusts this demo's IdP, exactly as
    `mcp-bastion scopes export` publishes them."""
    if issuer not in (idp.issuer for idp in config.identity_providers):
        raise ConfigError(
            f"the --serve-config file does not trust this demo's development IdP ({issuer})",
            hint=f"give it an identity provider with issuer: {issuer} (see examples/dev.yaml)",
        )
    return {r.resource: tuple(s.value for s in r.scopes) for r in published_resources(config)}


def sample_upstream_ports(config: BastionConfig | None) -> dict[str, int]:
    """The loopback ports at which a `serve` config expects the sample servers, by name."""
    ports: dict[str, int] = {}
    for server in config.servers if config is not None else ():
        parts = urlsplit(server.upstream or "")
        local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
        if server.name in DEMO_SERVERS and local and parts.path == MCP_PATH and parts.port:
            ports[server.name] = parts.port
    return ports


def listen_socket(host: str, port: int, hint: str = "pick another --port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})", hint=hint) from None
    sock.listen(1024)
    return sock


async def run_demo(options: DemoOptions, announce: Callable[[DemoStack], None]) -> None:
    """Serve the whole demo until interrupted."""
    check_bind(options.host, options.allow_remote)
    public = listen_socket(options.host, options.port)
    fixed = sample_upstream_ports(options.serve_config)
    taken = "the --serve-config file puts a sample server on this port: free it or change the file"
    names = (*DEMO_SERVERS, WHOAMI) if options.exchange else DEMO_SERVERS
    upstream_socks = {name: listen_socket("127.0.0.1", fixed.get(name, 0), taken) for name in names}
    urls = {name: f"http://127.0.0.1:{s.getsockname()[1]}/mcp" for name, s in upstream_socks.items()}
    stack = build_demo_stack(options, urls, port=public.getsockname()[1])
    builders: dict[str, Callable[[], Any]] = {"demo": build_demo_upstream, "notes": build_notes_upstream}
    if options.exchange:
        builders[WHOAMI] = lambda: build_whoami_upstream(stack.issuer, urls[WHOAMI])
    servers = [(uvicorn_server(builders[name]()), sock) for name, sock in upstream_socks.items()] + [
        (uvicorn_server(stack.app, access_log=False), public)
    ]
    tasks = [asyncio.ensure_future(server.serve(sockets=[sock])) for server, sock in servers]
    # uvicorn has no "started" event to await; its lifespan completing is ours.
    await stack.app.started.wait()
    announce(stack)
    await tasks[-1]
    for server, _ in servers[:-1]:
        server.should_exit = True
    await asyncio.gather(*tasks[:-1], return_exceptions=True)


def uvicorn_server(app: Any, **options: Any) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", interface="asgi3", lifespan="on", **options)
    return uvicorn.Server(config)


def render_announcement(stack: DemoStack, auto_approve: str | None) -> str:
    lines = [
        "mcp-bastion demo is running",
        f"  gateway          {stack.base_url}",
        f"  MCP server demo  {stack.server_url('demo')}",
        f"  MCP server notes {stack.server_url('notes')}",
        *(
            [f"  MCP server whoami {stack.server_url(WHOAMI)}   (token exchange: call the tool whoami)"]
            if stack.exchange
            else []
        ),
        f"  development IdP  {stack.issuer}   (login: {'auto-approved as ' + auto_approve if auto_approve else 'any user name on the consent page'})",
        f"  gateway JWKS     {stack.base_url}/.well-known/jwks.json",
        "",
        "Paste into your MCP client's configuration:",
        json.dumps(stack.client_config(), indent=2),
        "",
        "Audit events follow on stdout, one JSON object per line. Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
