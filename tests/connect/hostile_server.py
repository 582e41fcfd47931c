"""A protected MCP endpoint and its authorization server, both configurable to misbehave.

One Starlette app on loopback plays the resource (``/mcp`` answers 401 until it sees the
token it issued, then a fixed JSON-RPC result), its RFC 9728 metadata, and an RFC 8414
authorization server whose ``/authorize`` redirects at once (as an auto-approving IdP
does). Each field of :class:`Misbehaviour` turns one honest answer into a hostile one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..support.servers import bind_loopback, serve_asgi

__all__ = ["HONEST", "HostileServer", "Misbehaviour", "running_hostile_server"]

ISSUER = "{base}"  # placeholders filled with the server's base URL
TOKEN = "the-only-token"


@dataclass(frozen=True)
class Misbehaviour:
    authorization_endpoint: str = "{base}/authorize"
    code_challenge_methods: tuple[str, ...] = ("S256",)
    iss_supported: bool = True
    iss_in_redirect: str | None = "{base}"  # None: no iss parameter in the redirect
    state: str | None = None  # None: echo the client's state
    prm_resource: str = "{base}/mcp"
    metadata_issuer: str = "{base}"


HONEST = Misbehaviour()


@dataclass
class HostileServer:
    base: str
    behaviour: Misbehaviour
    token_requests: list[dict[str, str]] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    metadata_requests: int = 0

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def fill(self, value: str) -> str:
        return value.replace("{base}", self.base)

    async def mcp(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            prm = f"{self.base}/.well-known/oauth-protected-resource/mcp"
            challenge = f'Bearer resource_metadata="{prm}", scope="read"'
            return Response(status_code=401, headers={"www-authenticate": challenge})
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {"ok": True}})

    async def prm(self, request: Request) -> Response:
        resource = self.fill(self.behaviour.prm_resource)
        return JSONResponse({"resource": resource, "authorization_servers": [self.base]})

    async def metadata(self, request: Request) -> Response:
        self.metadata_requests += 1
        b = self.behaviour
        return JSONResponse(
            {
                "issuer": self.fill(b.metadata_issuer),
                "authorization_endpoint": self.fill(b.authorization_endpoint),
                "token_endpoint": f"{self.base}/token",
                "registration_endpoint": f"{self.base}/register",
                "code_challenge_methods_supported": list(b.code_challenge_methods),
                "token_endpoint_auth_methods_supported": ["none"],
                "authorization_response_iss_parameter_supported": b.iss_supported,
            }
        )

    async def register(self, request: Request) -> Response:
        body = await request.json()
        return JSONResponse({"client_id": "hostile-client", **body}, status_code=201)

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        answer = {"code": "the-code", "state": self.behaviour.state or params["state"]}
        if self.behaviour.iss_in_redirect is not None:
            answer["iss"] = self.fill(self.behaviour.iss_in_redirect)
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(answer)}", status_code=302)

    async def token(self, request: Request) -> Response:
        self.token_requests.append(dict(await request.form()))  # type: ignore[arg-type]
        return JSONResponse({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/mcp", self.mcp, methods=["POST"]),
                Route("/.well-known/oauth-protected-resource/mcp", self.prm),
                Route("/.well-known/oauth-authorization-server", self.metadata),
                Route("/register", self.register, methods=["POST"]),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )


@contextlib.contextmanager
def running_hostile_server(behaviour: Misbehaviour = HONEST) -> Iterator[HostileServer]:
    sock = bind_loopback()
    server = HostileServer(f"http://127.0.0.1:{sock.getsockname()[1]}", behaviour)
    with serve_asgi(server.app(), sock=sock):
        yield server
