"""Fixtures for the development IdP: a real uvicorn server on loopback and a movable clock."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from mcp_bastion.devidp import DevIdp, DevIdpSettings, build_devidp
from tests.support.servers import bind_loopback, serve_asgi

REDIRECT = "http://127.0.0.1/callback"
SCOPES = ("notes:read", "notes:write")


class FakeClock:
    """A clock tests move by hand; the server thread reads it."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    assert response.status_code in (302, 303), response.text
    return dict(httpx.URL(response.headers["location"]).params)


@dataclass
class RunningIdp:
    """A served DevIdp with helpers that speak its protocol."""

    idp: DevIdp
    base: str
    clock: FakeClock
    http: httpx.Client
    verifier: str = ""

    @property
    def issuer(self) -> str:
        return self.idp.settings.issuer

    @property
    def resource(self) -> str:
        return f"{self.base}/mcp"

    def path(self, endpoint: str) -> str:
        return f"{httpx.URL(self.issuer).path.rstrip('/')}/{endpoint}"

    def register(self, **metadata: Any) -> dict[str, Any]:
        body = {
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            **metadata,
        }
        response = self.http.post(self.path("register"), json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def authorize_params(self, client_id: str, **overrides: Any) -> dict[str, Any]:
        self.verifier, challenge = pkce_pair()
        params: dict[str, Any] = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "state": "state-123",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.resource,
            "scope": "notes:read",
        }
        params.update(overrides)
        return {name: value for name, value in params.items() if value is not None}

    def authorize(self, client_id: str, **overrides: Any) -> httpx.Response:
        return self.http.get(self.path("authorize"), params=self.authorize_params(client_id, **overrides))

    def get_code(self, client_id: str, **overrides: Any) -> str:
        query = query_of(self.authorize(client_id, **overrides))
        assert "code" in query, query
        return query["code"]

    def token(self, **form: Any) -> httpx.Response:
        return self.http.post(self.path("token"), data={k: v for k, v in form.items() if v is not None})

    def redeem(self, client_id: str, code: str, **overrides: Any) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_verifier": self.verifier,
            "resource": self.resource,
            **overrides,
        }
        return self.token(**form)

    def code_flow(self, client_id: str) -> dict[str, Any]:
        response = self.redeem(client_id, self.get_code(client_id))
        assert response.status_code == 200, response.text
        return response.json()

    def claims(self, token: str) -> dict[str, Any]:
        """Verify ``token`` against the published JWKS and return its claims."""
        keys = KeySet.import_key_set(self.http.get(self.path("jwks")).json())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA" is deprecated by RFC 9864
            decoded = jwt.decode(token, keys, algorithms=[self.idp.settings.signing_alg])
        assert decoded.header["typ"] == "at+jwt"
        assert decoded.header["kid"] == self.idp.jwks()["keys"][0]["kid"]
        return decoded.claims


MakeIdp = Callable[..., RunningIdp]


@pytest.fixture
def make_idp() -> Iterator[MakeIdp]:
    """Start IdPs on loopback: ``make_idp(issuer_path="/idp", events=None, **settings_overrides)``."""
    with contextlib.ExitStack() as stack:

        def start(
            issuer_path: str = "/idp", signing_key: Any = None, events: Any = None, **overrides: Any
        ) -> RunningIdp:
            sock = bind_loopback()
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            settings: dict[str, Any] = {
                "issuer": f"{base}{issuer_path}",
                "resources": {f"{base}/mcp": SCOPES},
                "auto_approve": "alice",
            }
            # An override may be a function of the base URL (the port is known only now).
            settings.update(
                {key: value(base) if callable(value) else value for key, value in overrides.items()}
            )
            clock = FakeClock()
            idp = build_devidp(
                DevIdpSettings(**settings), signing_key=signing_key, clock=clock, events=events
            )
            stack.enter_context(serve_asgi(idp.app, sock=sock))
            http = stack.enter_context(httpx.Client(base_url=base, timeout=10))
            return RunningIdp(idp, base, clock, http)

        yield start


@pytest.fixture
def running(make_idp: MakeIdp) -> RunningIdp:
    """One auto-approving IdP with issuer path /idp."""
    return make_idp()
