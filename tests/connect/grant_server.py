"""A protected MCP endpoint, its authorization server and an enterprise IdP, for ``--grant``.

One Starlette app on loopback: ``/mcp`` answers 401 until it sees a token the AS issued;
the AS (issuer ``{base}``) records every token request and issues tokens for any grant
(or refuses with ``refuse``, its description quoting what it was sent, as a careless AS
might); the IdP (issuer ``{base}/idp``) answers RFC 8693 token exchanges with an ID-JAG
(or with ``idp_issued_type``). Fields of :class:`GrantServer` steer the hostile cases.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..support.servers import bind_loopback, serve_asgi

__all__ = ["GrantServer", "running_grant_server"]

ID_JAG = "urn:ietf:params:oauth:token-type:id-jag"


@dataclass
class GrantServer:
    base: str
    token_endpoint: str = "{base}/token"
    auth_methods: tuple[str, ...] = ("client_secret_basic", "private_key_jwt", "none")
    refuse: str | None = None  # an OAuth error code for every token request
    idp_issued_type: str = ID_JAG
    expires_in: int = 3600
    unauthorized: int = 0  # 401s answered by /mcp
    token_requests: list[tuple[dict[str, str], str | None]] = field(default_factory=list)
    idp_requests: list[dict[str, str]] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    _serial: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    async def mcp(self, request: Request) -> Response:
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
        if token not in self.issued:
            self.unauthorized += 1
            prm = f"{self.base}/.well-known/oauth-protected-resource/mcp"
            return Response(
                status_code=401, headers={"www-authenticate": f'Bearer resource_metadata="{prm}"'}
            )
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {"ok": True}})

    async def prm(self, request: Request) -> Response:
        return JSONResponse({"resource": self.url, "authorization_servers": [self.base]})

    async def metadata(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.base,
                "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": self.token_endpoint.replace("{base}", self.base),
                "token_endpoint_auth_methods_supported": list(self.auth_methods),
            }
        )

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append((form, request.headers.get("authorization")))
        if self.refuse is not None:
            description = f"refused {form}"  # quotes the secrets it was sent: never to be echoed
            return JSONResponse({"error": self.refuse, "error_description": description}, status_code=400)
        token = f"token-{next(self._serial)}"
        self.issued.add(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    async def idp_metadata(self, request: Request) -> Response:
        idp = f"{self.base}/idp"
        return JSONResponse(
            {"issuer": idp, "authorization_endpoint": f"{idp}/authorize", "token_endpoint": f"{idp}/token"}
        )

    async def idp_token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.idp_requests.append(form)
        return JSONResponse(
            {"access_token": "the-id-jag", "issued_token_type": self.idp_issued_type, "token_type": "N_A"}
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/mcp", self.mcp, methods=["POST"]),
                Route("/.well-known/oauth-protected-resource/mcp", self.prm),
                Route("/.well-known/oauth-authorization-server", self.metadata),
                Route("/token", self.token, methods=["POST"]),
                Route("/.well-known/oauth-authorization-server/idp", self.idp_metadata),
                Route("/idp/token", self.idp_token, methods=["POST"]),
            ]
        )


@contextlib.contextmanager
def running_grant_server(**fields: object) -> Iterator[GrantServer]:
    sock = bind_loopback()
    server = GrantServer(f"http://127.0.0.1:{sock.getsockname()[1]}", **fields)  # type: ignore[arg-type]
    with serve_asgi(server.app(), sock=sock):
        yield server
