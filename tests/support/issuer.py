"""A token issuer the test controls: real keys, a real JWKS + metadata server on loopback.

Tests mint exactly the tokens they need (valid, expired, wrong audience, odd headers) and
the gateway fetches the keys over HTTP like it would from any IdP.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from joserfc import jws
from joserfc.jwk import ECKey

from .servers import bind_loopback, serve_asgi


@dataclass
class LocalIssuer:
    issuer: str
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256"))
    kid: str = "test-key-1"
    jwks_requests: int = 0
    extra_keys: list[dict[str, Any]] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        public = dict(self.key.as_dict(private=False), kid=self.kid, use="sig", alg="ES256")
        return {"keys": [public, *self.extra_keys]}

    def token(
        self,
        *,
        audience: str | list[str],
        scopes: str = "tools.read tools.write",
        subject: str = "alice",
        client_id: str = "test-client",
        ttl: int = 300,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "scope": scopes,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        protected = {"alg": "ES256", "typ": "at+jwt", "kid": self.kid}
        protected.update(header or {})
        return jws.serialize_compact(protected, orjson.dumps(body), self.key, algorithms=["ES256"])

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/jwks":
            self.jwks_requests += 1
            body = orjson.dumps(self.jwks())
        elif path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            body = orjson.dumps({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks"})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def running_issuer() -> Iterator[LocalIssuer]:
    sock = bind_loopback()
    issuer = LocalIssuer(f"http://127.0.0.1:{sock.getsockname()[1]}")
    with serve_asgi(issuer.app, sock=sock):
        yield issuer
