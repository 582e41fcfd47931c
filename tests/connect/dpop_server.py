"""A DPoP-only MCP endpoint and authorization server on loopback (RFC 9449), nonces configurable.

The authorization server lists ``dpop_signing_alg_values_supported``, checks the proof of
every token request (signature by the ``jwk`` it carries, ``typ``, ``htm``, ``htu``,
``iat``, a ``jti`` never seen before) and binds each token it issues to that key's
thumbprint. The resource accepts only ``Authorization: DPoP`` with a valid proof from the
bound key whose ``ath`` is the token's hash; a bound token presented as Bearer is refused,
as RFC 9449 §7.1 requires of a server. The checks are written here, independently of
:mod:`mcp_bastion.connect.dpop`, with joserfc's verifier.

With ``offer_dpop`` off it is a plain OAuth server: no DPoP in its metadata, Bearer tokens,
which the resource accepts as Bearer (bound tokens still only as DPoP).

``as_nonce`` and ``rs_nonce`` say what each side demands: ``none``, ``once`` (one fixed nonce, demanded
until presented: the honest case), ``endless`` (a new nonce on every request), ``garbage``
(a nonce that is not ``1*NQCHAR``) or ``huge`` (4 KiB).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..support.servers import bind_loopback, serve_asgi

__all__ = ["DpopServer", "running_dpop_server"]

HONEST_NONCE = "honest-nonce-1"


@dataclass
class DpopServer:
    base: str
    as_nonce: str = "none"
    rs_nonce: str = "none"
    expires_in: int = 3600
    offer_dpop: bool = True
    token_proofs: list[dict[str, Any]] = field(default_factory=list)  # checked claims + "jkt"
    token_forms: list[dict[str, str]] = field(default_factory=list)
    mcp_authorizations: list[str | None] = field(default_factory=list)
    mcp_proofs: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    bound: dict[str, str] = field(default_factory=dict)  # token -> jkt
    jtis: set[str] = field(default_factory=set)
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def _nonce(self, mode: str) -> str:
        return {
            "once": HONEST_NONCE,
            "endless": f"nonce-{next(self._counter)}",
            "garbage": 'bad "nonce" \\ with spaces',
            "huge": "n" * 4096,
        }[mode]

    def _check(self, proof: str | None, method: str, url: str) -> dict[str, Any] | str:
        """The proof's claims (plus ``jkt``), or why it is refused."""
        if not proof:
            return "no proof"
        try:
            header = json.loads(base64.urlsafe_b64decode(proof.split(".")[0] + "=="))
            key = ECKey.import_key(header["jwk"])
            token = jws.deserialize_compact(proof, key, algorithms=["ES256"])
            claims = json.loads(token.payload)
        except (JoseError, ValueError, KeyError, TypeError):
            return "bad signature or shape"
        if header.get("typ") != "dpop+jwt" or "d" in header["jwk"]:
            return "bad header"
        if claims.get("htm") != method or claims.get("htu") != url:
            return "htm/htu mismatch"
        if not isinstance(claims.get("iat"), int) or abs(time.time() - claims["iat"]) > 60:
            return "stale iat"
        jti = claims.get("jti")
        if not isinstance(jti, str) or jti in self.jtis:
            return "replayed jti"
        self.jtis.add(jti)
        claims["jkt"] = key.thumbprint()
        return claims

    async def mcp(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        self.mcp_authorizations.append(authorization)
        prm = f"{self.base}/.well-known/oauth-protected-resource/mcp"
        scheme, _, token = (authorization or "").partition(" ")
        if scheme == "Bearer" and self.bound.get(token) == "":
            body = await request.json()
            return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {"ok": True}})
        if scheme != "DPoP" or not self.bound.get(token):
            # RFC 9449 §7.1: a bound token presented as Bearer is not accepted.
            self.refused.append(scheme or "none")
            return Response(status_code=401, headers={"www-authenticate": f'DPoP resource_metadata="{prm}"'})
        checked = self._check(request.headers.get("dpop"), "POST", self.url)
        if isinstance(checked, str):
            self.refused.append(checked)
            return Response(status_code=401, headers={"www-authenticate": 'DPoP error="invalid_dpop_proof"'})
        self.mcp_proofs.append(checked)
        digest = hashlib.sha256(token.encode()).digest()
        if checked.get("ath") != base64.urlsafe_b64encode(digest).rstrip(b"=").decode():
            self.refused.append("ath")
            return Response(status_code=401, headers={"www-authenticate": 'DPoP error="invalid_token"'})
        if checked["jkt"] != self.bound[token]:
            self.refused.append("jkt")
            return Response(status_code=401, headers={"www-authenticate": 'DPoP error="invalid_token"'})
        if self.rs_nonce != "none" and (self.rs_nonce != "once" or checked.get("nonce") != HONEST_NONCE):
            challenge = f'DPoP error="use_dpop_nonce", resource_metadata="{prm}"'
            headers = {"www-authenticate": challenge, "dpop-nonce": self._nonce(self.rs_nonce)}
            return Response(status_code=401, headers=headers)
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": {"ok": True}})

    async def prm(self, request: Request) -> Response:
        return JSONResponse({"resource": self.url, "authorization_servers": [self.base]})

    async def metadata(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.base,
                "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token",
                "registration_endpoint": f"{self.base}/register",
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                **({"dpop_signing_alg_values_supported": ["ES256"]} if self.offer_dpop else {}),
            }
        )

    async def register(self, request: Request) -> Response:
        return JSONResponse({"client_id": "dpop-client", **(await request.json())}, status_code=201)

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        answer = urlencode({"code": "the-code", "state": params["state"]})
        return RedirectResponse(f"{params['redirect_uri']}?{answer}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_forms.append(form)
        if not self.offer_dpop:
            self.token_proofs.append({"dpop": request.headers.get("dpop")})
            token = f"bearer-{next(self._counter)}"
            self.bound[token] = ""  # not bound
            return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        checked = self._check(request.headers.get("dpop"), "POST", f"{self.base}/token")
        if isinstance(checked, str):
            self.refused.append(checked)
            return JSONResponse({"error": "invalid_dpop_proof"}, status_code=400)
        self.token_proofs.append(checked)
        if self.as_nonce != "none" and (self.as_nonce != "once" or checked.get("nonce") != HONEST_NONCE):
            headers = {"dpop-nonce": self._nonce(self.as_nonce)}
            return JSONResponse({"error": "use_dpop_nonce"}, status_code=400, headers=headers)
        if form.get("grant_type") == "refresh_token":
            old = form.get("refresh_token", "").removeprefix("refresh-for-")
            if self.bound.get(old) != checked["jkt"]:
                # RFC 9449 §5.0: a public client's refresh token is bound to its key too.
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
        token = f"token-{next(self._counter)}"
        self.bound[token] = checked["jkt"]
        answer = {
            "access_token": token,
            "token_type": "DPoP",
            "expires_in": self.expires_in,
            "refresh_token": f"refresh-for-{token}",
        }
        return JSONResponse(answer)

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
def running_dpop_server(**behaviour: Any) -> Iterator[DpopServer]:
    sock = bind_loopback()
    server = DpopServer(f"http://127.0.0.1:{sock.getsockname()[1]}", **behaviour)
    with serve_asgi(server.app(), sock=sock):
        yield server
