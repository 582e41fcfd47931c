"""The bench's token issuer: a local ES256 key, its JWKS served over HTTP on loopback.

The gateway and FastMCP fetch the keys like they would from any IdP; the bench mints the
access tokens (RFC 9068 shape: `typ: at+jwt`, `aud` = the target's resource URL).
"""

from __future__ import annotations

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from joserfc import jws
from joserfc.jwk import ECKey

KID = "bench-key-1"


class LocalIssuer:
    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.jwks_uri = f"{self.url}/jwks"
        self.jwks_requests = 0
        self._thread = threading.Thread(target=self._server.serve_forever, name="issuer", daemon=True)

    def start(self) -> LocalIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self.key.as_dict(private=False), kid=KID, use="sig", alg="ES256")]}

    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": self.jwks_uri}

    def token(
        self, audience: str, scopes: str, *, subject: str = "bench-user", ttl: int = 3600, **extra: object
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "client_id": "bench-client",
            "scope": scopes,
            **extra,
        }
        header = {"alg": "ES256", "typ": "at+jwt", "kid": KID}
        return jws.serialize_compact(header, orjson.dumps(claims), self.key, algorithms=["ES256"])


def _handler(issuer: LocalIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/jwks":
                issuer.jwks_requests += 1
                body = orjson.dumps(issuer.jwks())
            elif self.path in (
                "/.well-known/oauth-authorization-server",
                "/.well-known/openid-configuration",
            ):
                body = orjson.dumps(issuer.metadata())
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the bench prints its own report

    return Handler
