"""Tokens and client registrations kept between runs, and the token endpoint calls.

The store is one JSON file, mode 0600, written atomically (a 0600 temporary file then
``os.replace``), keyed by authorization server issuer + resource: a token is only ever
sent to the resource it was issued for (RFC 8707), and a registration only reused at the
authorization server that issued it. With DPoP (:mod:`.dpop`) the entry also keeps the
private key the tokens are bound to. :class:`EntryStore` holds that logic over any place
that can load and store one JSON entry by key; :class:`TokenStore` is the file, and
:mod:`.keyring_store` the OS keyring.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import quote

import httpx

from ._errors import ConnectError
from .discovery import AuthServerMetadata
from .dpop import DpopKey, Prover

__all__ = [
    "BEARER",
    "DPOP",
    "ClientRegistration",
    "EntryStore",
    "StoredTokens",
    "TokenStore",
    "TokenStoreProtocol",
    "default_store_path",
    "exchange",
    "refresh",
]

log = logging.getLogger(__name__)

# Refresh this long before `expires_in` runs out: clock skew and the request's own latency.
EXPIRY_MARGIN_S: Final = 30
MAX_TOKEN_RESPONSE_BYTES: Final = 64 * 1024
# Token types (RFC 6750, RFC 9449 §5): the scheme a token is presented with.
BEARER: Final = "Bearer"
DPOP: Final = "DPoP"


@dataclass
class ClientRegistration:
    client_id: str
    client_secret: str | None = None
    token_endpoint_auth_method: str = "none"  # noqa: S105 (an auth method's name, RFC 7591)
    redirect_uri: str | None = None


@dataclass
class StoredTokens:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    scope: str | None = None
    token_type: str = BEARER  # DPOP: bound to the store entry's key

    def fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - EXPIRY_MARGIN_S


@dataclass
class _Entry:
    tokens: StoredTokens | None = None
    client: ClientRegistration | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def default_store_path() -> Path:
    """``$XDG_CONFIG_HOME/mcp-bastion/connect-tokens.json`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mcp-bastion" / "connect-tokens.json"


class TokenStoreProtocol(Protocol):
    """What :class:`~.oauth.Authorizer` needs of a store, whatever keeps the entries."""

    def tokens(self, issuer: str, resource: str) -> StoredTokens | None: ...
    def client(self, issuer: str, resource: str) -> ClientRegistration | None: ...
    def dpop_key(self, issuer: str, resource: str) -> DpopKey | None: ...
    def save(
        self,
        issuer: str,
        resource: str,
        *,
        tokens: StoredTokens | None = None,
        client: ClientRegistration | None = None,
        dpop_key: DpopKey | None = None,
    ) -> None: ...
    def forget_tokens(self, issuer: str, resource: str) -> None: ...


class EntryStore:
    """Tokens, registrations and DPoP keys by (issuer, resource), over one entry per key.

    Subclasses load and store the JSON object of one key; everything else is here.
    """

    def _load(self, key: str) -> dict[str, Any]:
        raise NotImplementedError

    def _store(self, key: str, entry: dict[str, Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def _key(issuer: str, resource: str) -> str:
        return quote(issuer, safe="") + " " + quote(resource, safe="")

    def tokens(self, issuer: str, resource: str) -> StoredTokens | None:
        raw = self._load(self._key(issuer, resource)).get("tokens")
        try:
            return StoredTokens(**raw) if isinstance(raw, dict) else None
        except TypeError:
            return None

    def client(self, issuer: str, resource: str) -> ClientRegistration | None:
        raw = self._load(self._key(issuer, resource)).get("client")
        try:
            return ClientRegistration(**raw) if isinstance(raw, dict) else None
        except TypeError:
            return None

    def dpop_key(self, issuer: str, resource: str) -> DpopKey | None:
        return DpopKey.from_jwk(self._load(self._key(issuer, resource)).get("dpop_key"))

    def save(
        self,
        issuer: str,
        resource: str,
        *,
        tokens: StoredTokens | None = None,
        client: ClientRegistration | None = None,
        dpop_key: DpopKey | None = None,
    ) -> None:
        key = self._key(issuer, resource)
        entry = self._load(key)
        if tokens is not None:
            entry["tokens"] = asdict(tokens)
        if client is not None:
            entry["client"] = asdict(client)
        if dpop_key is not None:
            entry["dpop_key"] = dpop_key.private_jwk()
        self._store(key, entry)

    def forget_tokens(self, issuer: str, resource: str) -> None:
        key = self._key(issuer, resource)
        entry = self._load(key)
        if entry.pop("tokens", None) is not None:
            self._store(key, entry)


class TokenStore(EntryStore):
    """The entries in one 0600 JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self, key: str) -> dict[str, Any]:
        entry = self._read().get(key)
        return entry if isinstance(entry, dict) else {}

    def _store(self, key: str, entry: dict[str, Any]) -> None:
        data = self._read()
        data[key] = entry
        self._write(data)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConnectError(f"cannot read the token store {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("the token store %s is not JSON; starting afresh", self.path)
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".connect-tokens.")  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


async def token_request(
    http: httpx.AsyncClient,
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    form: dict[str, str],
    prover: Prover | None = None,
) -> StoredTokens:
    headers, form = authenticated(client, form)
    response = await _post_token(http, metadata.token_endpoint, form, headers, prover)
    body = json_object(response)
    if (
        prover is not None
        and response.status_code == 400
        and body.get("error") == "use_dpop_nonce"
        and prover.note_nonce(metadata.token_endpoint, response.headers)
    ):
        # RFC 9449 §8: sign again with the server's nonce, once; a server that answers the
        # nonce with yet another demand is refused below rather than followed forever.
        response = await _post_token(http, metadata.token_endpoint, form, headers, prover)
        body = json_object(response)
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        error = body.get("error")
        code = error if isinstance(error, str) and error.isascii() and len(error) < 64 else "no error code"
        raise ConnectError(
            f"the token endpoint refused the {form['grant_type']} grant ({response.status_code}, {code})"
        )
    token_type = _token_type(body.get("token_type"), dpop=prover is not None)
    expires_in = body.get("expires_in")
    refresh_token = body.get("refresh_token")
    scope = body.get("scope")
    return StoredTokens(
        access_token=body["access_token"],
        refresh_token=refresh_token if isinstance(refresh_token, str) else None,
        expires_at=time.time() + expires_in if isinstance(expires_in, int | float) else None,
        scope=scope if isinstance(scope, str) else form.get("scope"),
        token_type=token_type,
    )


def _token_type(value: object, *, dpop: bool) -> str:
    kind = value.lower() if isinstance(value, str) else None
    if kind == DPOP.lower() and dpop:
        return DPOP  # RFC 9449 §5: bound to the key that signed our proof
    if kind == BEARER.lower():
        if dpop:
            # RFC 9449 §5: an AS may still issue a Bearer token; it is then used as one.
            log.info("the authorization server issued a Bearer token despite the DPoP proof")
        return BEARER
    raise ConnectError("the token endpoint issued a token that is neither Bearer nor DPoP-bound")


async def _post_token(
    http: httpx.AsyncClient,
    endpoint: str,
    form: dict[str, str],
    headers: dict[str, str],
    prover: Prover | None,
) -> httpx.Response:
    if prover is not None:
        headers = {**headers, "dpop": prover.proof("POST", endpoint)}  # a fresh proof per attempt
    try:
        response = await http.post(endpoint, data=form, headers=headers)
    except httpx.HTTPError as exc:
        raise ConnectError(f"the token endpoint could not be reached: {type(exc).__name__}") from None
    if prover is not None and response.status_code == 200:
        prover.note_nonce(endpoint, response.headers)  # §8.2: the next proof uses the new nonce
    return response


def authenticated(client: ClientRegistration, form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and form of a token request ``client`` authenticates (RFC 6749 §2.3.1):
    HTTP Basic, the secret in the form, or the client id alone (a public client)."""
    headers = {"accept": "application/json"}
    method = client.token_endpoint_auth_method
    if method == "client_secret_basic" and client.client_secret is not None:
        # Both parts form-urlencoded before base64 (§2.3.1).
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return headers, form
    form = {**form, "client_id": client.client_id}
    if method == "client_secret_post" and client.client_secret:
        form["client_secret"] = client.client_secret
    return headers, form


def json_object(response: httpx.Response) -> dict[str, Any]:
    if len(response.content) > MAX_TOKEN_RESPONSE_BYTES:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def exchange(
    http: httpx.AsyncClient,
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    resource: str,
    scope: str | None,
    prover: Prover | None = None,
) -> StoredTokens:
    """The authorization code grant with the PKCE verifier and the RFC 8707 resource."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        "resource": resource,
    }
    tokens = await token_request(http, metadata, client, form, prover)
    if tokens.scope is None:
        tokens.scope = scope
    return tokens


async def refresh(
    http: httpx.AsyncClient,
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    tokens: StoredTokens,
    resource: str,
    prover: Prover | None = None,
) -> StoredTokens:
    """The refresh token grant; keeps the old refresh token when none is rotated in."""
    assert tokens.refresh_token is not None
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "resource": resource}
    fresh = await token_request(http, metadata, client, form, prover)
    if fresh.refresh_token is None:
        fresh.refresh_token = tokens.refresh_token
    if fresh.scope is None:
        fresh.scope = tokens.scope
    return fresh
