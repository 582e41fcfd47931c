"""Grants without a browser: machine-to-machine and enterprise-managed tokens for `connect`.

``connect --grant`` picks one; each turns (authorization server, resource, scope) into a
token with one or two token endpoint calls. None of them stores anything on disk: the
credential it starts from is what lasts, and a new token is obtained when one expires
or the server answers 401.

- ``client_credentials`` (RFC 6749 §4.4; the MCP extension
  ``io.modelcontextprotocol/oauth-client-credentials``): the client authenticates with its
  secret, or with a ``private_key_jwt`` assertion (RFC 7523 §2.2) it signs with its key.
- ``jwt_bearer`` (RFC 7523 §2.1; workload identity federation, MCP SEP-1933): the grant is a
  JWT the platform hands the workload in a file (a Kubernetes projected service account
  token, a CI job's OIDC token), read again at every grant because the platform rotates it.
- ``id_jag`` (the MCP extension ``io.modelcontextprotocol/enterprise-managed-authorization``):
  the user's ID token from the enterprise IdP is exchanged there (RFC 8693) for an Identity
  Assertion JWT Authorization Grant addressed to the MCP server's authorization server,
  which is then presented there with the jwt-bearer grant. The ID token only ever goes to
  the IdP the user configured, never to a server that discovery named.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from ..auth.keys import compatible
from ._errors import ConnectError
from ._urls import require_web_url
from .discovery import AuthServerMetadata, discover_auth_server
from .registration import secret_method
from .tokens import ClientRegistration, StoredTokens, authenticated, json_object, token_request

__all__ = [
    "ClientAuth",
    "ClientCredentialsGrant",
    "Grant",
    "IdJagGrant",
    "JwtBearerGrant",
    "SigningKey",
    "load_signing_key",
    "read_credential_file",
]

log = logging.getLogger(__name__)

JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN)
ID_JAG: Final = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN: Final = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 (a URN)
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# A client assertion is single-use and short-lived (RFC 7523 §3: exp; a fresh jti each time).
ASSERTION_SECONDS: Final = 60
SIGNING_ALGS: Final = ("ES256", "RS256", "PS256", "EdDSA")
MAX_CREDENTIAL_BYTES: Final = 64 * 1024


class Grant(Protocol):
    """One way to obtain a token without a browser."""

    @property
    def name(self) -> str: ...

    async def obtain(
        self, http: httpx.AsyncClient, metadata: AuthServerMetadata, resource: str, scope: str | None
    ) -> StoredTokens: ...


def read_credential_file(path: Path, what: str, *, private: bool = False) -> str:
    """The stripped text of a credential file. ``private``: refuse a file that others may read
    (a private key, as ssh refuses one), since anyone who can read it can be this client."""
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode  # of the file opened, not of a path swapped since
            if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConnectError(
                    f"{what} {path} is open to other users (mode {stat.S_IMODE(mode):o}): chmod 600 {path}"
                )
            raw = handle.read(MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise ConnectError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > MAX_CREDENTIAL_BYTES:
        raise ConnectError(f"{what} {path} is larger than {MAX_CREDENTIAL_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        raise ConnectError(f"{what} {path} is empty")
    return text


@dataclass(frozen=True)
class SigningKey:
    """A client's private key and the algorithm it signs its assertions with."""

    key: RSAKey | ECKey | OKPKey
    alg: str

    def assertion(self, client_id: str, audience: str, now: float) -> str:
        """RFC 7523 §2.2/§3: iss = sub = the client; aud = the authorization server's issuer
        (draft-ietf-oauth-rfc7523bis: the issuer alone, so the assertion is good nowhere else)."""
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": int(now),
            "exp": int(now) + ASSERTION_SECONDS,
            "jti": os.urandom(16).hex(),
        }
        header = {"alg": self.alg, "typ": "JWT", "kid": self.key.thumbprint()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # joserfc's note on short RSA keys
            return jwt.encode(header, claims, self.key, algorithms=[self.alg])


def load_signing_key(path: Path, alg: str | None = None) -> SigningKey:
    """A private key from a PEM (PKCS#8, or a traditional EC/RSA key) or JWK file, mode 0600.

    Without ``alg``, the key type says: EC P-256 signs ES256, RSA RS256, Ed25519 EdDSA.
    """
    text = read_credential_file(path, "the private key file", private=True)
    key = _import_private_key(text)
    if key is None:
        raise ConnectError(f"{path} holds no private RSA, EC (P-256) or Ed25519 key (PEM or JWK)")
    chosen = alg or ("RS256" if isinstance(key, RSAKey) else "EdDSA" if isinstance(key, OKPKey) else "ES256")
    if chosen not in SIGNING_ALGS or not compatible(key, chosen):
        raise ConnectError(f"the key in {path} cannot sign {chosen} (one of {', '.join(SIGNING_ALGS)})")
    return SigningKey(key, chosen)


def _import_private_key(text: str) -> RSAKey | ECKey | OKPKey | None:
    candidates: list[object] = []
    if text.startswith("{"):
        with contextlib.suppress(JoseError, ValueError, TypeError, KeyError):
            candidates.append(JWKRegistry.import_key(orjson.loads(text)))
    else:
        for kind in (ECKey, RSAKey, OKPKey):
            try:
                candidates.append(kind.import_key(text.encode()))
            except (JoseError, ValueError, TypeError):
                continue
    for key in candidates:
        if isinstance(key, (RSAKey, ECKey, OKPKey)) and key.is_private:
            return key
    return None


@dataclass(frozen=True)
class ClientAuth:
    """A client registered in advance, and how it proves it: a secret, a key, or nothing."""

    client_id: str
    secret: str | None = None
    key: SigningKey | None = None

    def authenticate(self, metadata: AuthServerMetadata) -> tuple[ClientRegistration, dict[str, str]]:
        """The registration the token request authenticates with, and the form fields it adds."""
        if self.key is not None:
            if "private_key_jwt" not in metadata.token_auth_methods:
                raise ConnectError(
                    f"the authorization server {metadata.issuer} does not accept private_key_jwt"
                )
            assertion = self.key.assertion(self.client_id, metadata.issuer, time.time())
            fields = {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
            return ClientRegistration(self.client_id, None, "private_key_jwt"), fields
        if self.secret is not None:
            return ClientRegistration(self.client_id, self.secret, secret_method(metadata)), {}
        return ClientRegistration(self.client_id, None, "none"), {}


async def _grant(
    http: httpx.AsyncClient,
    metadata: AuthServerMetadata,
    client: ClientAuth,
    form: dict[str, str],
    resource: str,
    scope: str | None,
) -> StoredTokens:
    registration, fields = client.authenticate(metadata)
    form = {**form, **fields, "resource": resource}  # RFC 8707: the token is for this server only
    if scope:
        form["scope"] = scope
    return await token_request(http, metadata, registration, form)


@dataclass(frozen=True)
class ClientCredentialsGrant:
    client: ClientAuth
    name: str = "client_credentials"

    async def obtain(
        self, http: httpx.AsyncClient, metadata: AuthServerMetadata, resource: str, scope: str | None
    ) -> StoredTokens:
        form = {"grant_type": "client_credentials"}
        return await _grant(http, metadata, self.client, form, resource, scope)


@dataclass(frozen=True)
class JwtBearerGrant:
    """RFC 7523 §2.1 with the assertion the environment supplies in ``assertion_file``."""

    client: ClientAuth
    assertion_file: Path
    name: str = "jwt_bearer"

    async def obtain(
        self, http: httpx.AsyncClient, metadata: AuthServerMetadata, resource: str, scope: str | None
    ) -> StoredTokens:
        assertion = read_credential_file(self.assertion_file, "the assertion file")
        form = {"grant_type": JWT_BEARER, "assertion": assertion}
        return await _grant(http, metadata, self.client, form, resource, scope)


@dataclass(frozen=True)
class IdJagGrant:
    """Enterprise-managed authorization: ID token -> ID-JAG at the IdP -> access token at the AS."""

    client: ClientAuth  # at the MCP server's authorization server
    idp_issuer: str
    idp_client: ClientAuth
    id_token_file: Path
    name: str = "id_jag"

    async def obtain(
        self, http: httpx.AsyncClient, metadata: AuthServerMetadata, resource: str, scope: str | None
    ) -> StoredTokens:
        id_jag = await self.exchange(http, metadata.issuer, resource, scope)
        form = {"grant_type": JWT_BEARER, "assertion": id_jag}
        return await _grant(http, metadata, self.client, form, resource, scope)

    async def exchange(self, http: httpx.AsyncClient, audience: str, resource: str, scope: str | None) -> str:
        """RFC 8693 at the IdP: the ID-JAG for ``audience`` (the AS's issuer) and ``resource``."""
        idp = await discover_auth_server(http, require_web_url(self.idp_issuer, "--idp-issuer"))
        if idp is None:
            raise ConnectError(f"the IdP {self.idp_issuer} publishes no metadata (RFC 8414 / OIDC)")
        registration, fields = self.idp_client.authenticate(idp)
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "requested_token_type": ID_JAG,
            "audience": audience,
            "resource": resource,
            "subject_token": read_credential_file(self.id_token_file, "the ID token file"),
            "subject_token_type": ID_TOKEN,
            **fields,
        }
        if scope:
            form["scope"] = scope
        body, status = await _post_form(http, idp.token_endpoint, registration, form)
        token = body.get("access_token")
        if status != 200 or not isinstance(token, str) or not token:
            error = body.get("error")
            code = (
                error if isinstance(error, str) and error.isascii() and len(error) < 64 else "no error code"
            )
            raise ConnectError(f"the IdP {idp.issuer} refused the token exchange ({status}, {code})")
        if body.get("issued_token_type") != ID_JAG:
            # RFC 8693 §2.2.1: what was issued is named; anything else is not a grant to present.
            raise ConnectError(f"the IdP {idp.issuer} issued a token that is not an ID-JAG")
        return token


async def _post_form(
    http: httpx.AsyncClient, endpoint: str, client: ClientRegistration, form: dict[str, str]
) -> tuple[dict[str, Any], int]:
    headers, form = authenticated(client, form)
    try:
        response = await http.post(endpoint, data=form, headers=headers)
    except httpx.HTTPError as exc:
        raise ConnectError(f"{endpoint} could not be reached: {type(exc).__name__}") from None
    return json_object(response), response.status_code
