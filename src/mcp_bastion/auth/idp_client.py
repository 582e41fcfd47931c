"""The gateway as a confidential client of an IdP: its token and introspection endpoints.

Endpoints come from the configuration or from the IdP's own metadata (RFC 8414, whose
`issuer` must be the configured one): never from a challenge, a token or an upstream, so
nobody but the operator chooses where the gateway sends a caller's token (a subject token
sent to an attacker's "token endpoint" would be a stolen token).

Every POST is bounded like a JWKS fetch (auth/fetch.py): https only (loopback http in
development), no redirects, the connection checked for internal addresses, one deadline,
a size cap. Client authentication: `client_secret_basic`, `client_secret_post` (RFC 6749
§2.3.1) or `private_key_jwt` (RFC 7523 §2.2, a one-minute assertion with a fresh `jti`).

Failures are `IdpCallError`s whose message is a summary safe for the audit feed: the IdP's
`error` code when it is one (RFC 6749 §5.2 characters), the HTTP status; never its
`error_description`, which is the IdP's prose and may quote what it was sent.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from ..config.identity import IdpClientConfig
from ..config.model import IdentityProviderConfig
from ..errors import BastionError, KeySourceError
from ..urls import Reach
from .discovery import metadata_urls
from .fetch import _connection_guard, check_fetch_target, check_fetch_url, fetch_json
from .keys import compatible

__all__ = ["MAX_ANSWER_BYTES", "IdpCallError", "IdpClient", "assertion_key"]

MAX_ANSWER_BYTES = 65_536  # a token or introspection answer is a few kB; more is an attack
ASSERTION_SECONDS = 60
_ERROR_CODE = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$")  # RFC 6749 §5.2 `error`


class IdpCallError(BastionError):
    """The IdP could not be asked, or refused: `message` is a summary for the audit feed."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.idp_error = error
        self.http_status = status


class IdpClient:
    """Authenticated POSTs to one IdP's token and introspection endpoints."""

    def __init__(
        self,
        provider: IdentityProviderConfig,
        client: IdpClientConfig,
        http: httpx.AsyncClient,
        *,
        secret: str | None,
        private_key: str | None,
        clock: Callable[[], float],
    ) -> None:
        self.provider = provider
        self.client = client
        self._http = http
        self._secret = secret
        self._clock = clock
        self._key = assertion_key(private_key, client.assertion_algorithm) if private_key else None
        self._endpoints: dict[str, str] = {}
        self._discovery: asyncio.Lock | None = None
        self._reach = Reach(provider.allow_insecure_http, provider.allow_private_network)

    @property
    def client_id(self) -> str:
        return self.client.client_id

    async def endpoint(self, name: str) -> str:
        """`token_endpoint` or `introspection_endpoint`: configured, or from the IdP's metadata."""
        configured = getattr(self.client, name)
        if isinstance(configured, str):
            return configured
        known = self._endpoints.get(name)
        if known is not None:
            return known
        if self._discovery is None:
            self._discovery = asyncio.Lock()
        async with self._discovery:  # one discovery at a time, whatever the load
            if name not in self._endpoints:
                self._endpoints.update(await self._discover())
        found = self._endpoints.get(name)
        if found is None:
            raise IdpCallError(f"the IdP's metadata names no {name}")
        return found

    async def _discover(self) -> dict[str, str]:
        provider = self.provider
        last: KeySourceError | None = None
        for url in metadata_urls(provider.issuer):
            try:
                document = await fetch_json(
                    self._http,
                    url,
                    timeout=provider.fetch_timeout_seconds,
                    allow_insecure_http=provider.allow_insecure_http,
                    allow_private_network=provider.allow_private_network,
                )
            except KeySourceError as exc:
                last = exc
                continue
            if not isinstance(document, dict) or document.get("issuer") != provider.issuer:
                # RFC 8414 §3.3: another issuer's document is a mix-up, not a fallback.
                raise IdpCallError("the IdP's metadata names another issuer")
            found: dict[str, str] = {}
            for name in ("token_endpoint", "introspection_endpoint"):
                value = document.get(name)
                if isinstance(value, str):
                    try:
                        await check_fetch_target(
                            value,
                            timeout=provider.fetch_timeout_seconds,
                            allow_insecure_http=provider.allow_insecure_http,
                            allow_private_network=provider.allow_private_network,
                        )
                    except KeySourceError as exc:
                        raise IdpCallError(f"the IdP's {name} is refused: {exc.message}") from None
                    found[name] = value
            return found
        raise IdpCallError(f"the IdP's metadata cannot be had: {last.message if last else 'no document'}")

    async def post(self, name: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST `form` to the named endpoint, authenticated; (status, JSON object) back."""
        url = await self.endpoint(name)
        try:
            check_fetch_url(url, allow_insecure_http=self.provider.allow_insecure_http)
        except KeySourceError as exc:
            raise IdpCallError(exc.message) from None
        body, headers = self._authenticated(dict(form), url)
        timeout = self.provider.fetch_timeout_seconds
        try:
            async with (
                asyncio.timeout(timeout),
                self._http.stream(
                    "POST",
                    url,
                    content=body,
                    headers=headers,
                    timeout=timeout,
                    follow_redirects=False,
                    extensions={"trace": _connection_guard(timeout, self._reach)},
                ) as response,
            ):
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise IdpCallError(f"the IdP sent an answer over {MAX_ANSWER_BYTES} bytes")
                status = response.status_code
        except (httpx.TimeoutException, TimeoutError):
            raise IdpCallError(f"the IdP did not answer within {timeout:g} s") from None
        except KeySourceError as exc:
            raise IdpCallError(exc.message) from None
        except httpx.HTTPError as exc:
            raise IdpCallError(f"cannot reach the IdP ({type(exc).__name__})") from None
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise IdpCallError(
                f"the IdP answered HTTP {status} with a body that is not JSON", status=status
            ) from None
        if not isinstance(answer, dict):
            raise IdpCallError(
                f"the IdP answered HTTP {status} with JSON that is not an object", status=status
            )
        return status, answer

    def _authenticated(self, form: dict[str, str], url: str) -> tuple[bytes, dict[str, str]]:
        headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
        method = self.client.auth_method
        client_id = self.client.client_id
        if method == "client_secret_basic":
            assert self._secret is not None
            # RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
            pair = f"{_form_quote(client_id)}:{_form_quote(self._secret)}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif method == "client_secret_post":
            assert self._secret is not None
            form["client_id"] = client_id
            form["client_secret"] = self._secret
        else:
            form["client_id"] = client_id
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = self._assertion(url)
        return httpx.QueryParams(form).__str__().encode("ascii"), headers

    def _assertion(self, audience: str) -> str:
        assert self._key is not None
        now = int(self._clock())
        claims = {
            "iss": self.client.client_id,
            "sub": self.client.client_id,
            "aud": audience,  # RFC 7523 §3: the endpoint it is sent to (Entra ID and Okta require it)
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": os.urandom(16).hex(),  # single use: the IdP refuses a replayed assertion
        }
        header = {"alg": self.client.assertion_algorithm, "typ": "JWT", "kid": self._key.thumbprint()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.encode(header, claims, self._key, algorithms=[self.client.assertion_algorithm])


def summarize(status: int, answer: dict[str, Any], what: str) -> IdpCallError:
    """The IdP's refusal as an audit summary: its `error` code when well-formed, and the status."""
    error = answer.get("error")
    code = error if isinstance(error, str) and _ERROR_CODE.match(error) else None
    detail = f"{code} (HTTP {status})" if code else f"HTTP {status}"
    return IdpCallError(f"{what} refused by the IdP: {detail}", error=code, status=status)


def _form_quote(text: str) -> str:
    return quote(text, safe="").replace("%20", "+")


def assertion_key(text: str, alg: str) -> RSAKey | ECKey | OKPKey:
    try:
        key = JWKRegistry.import_key(orjson.loads(text))
    except (JoseError, ValueError, TypeError, KeyError):
        key = None
    if not isinstance(key, (RSAKey, ECKey, OKPKey)) or not key.is_private:
        raise ValueError("the client's private_key must be a private RSA, EC or OKP JWK")
    if not compatible(key, alg):
        # Caught at start-up, not on the first exchange of the first request.
        raise ValueError(f"the client's private_key cannot sign {alg} (client.assertion_algorithm)")
    return key
