"""The one error tree of mcp-bastion.

Every failure the gateway reports is a :class:`BastionError`. Errors from the
libraries underneath (joserfc, httpx, pydantic, yaml, the OS) are translated into
this tree at the adapter that calls them and never travel further::

    BastionError                      status  error / JSON-RPC code
    ├── ConfigError                     -     a user's mistake in config or CLI input
    ├── AuthenticationError            401    RFC 6750 challenge
    │   ├── MissingToken               401    (no error code, RFC 6750 §3.1)
    │   └── InvalidToken               401    invalid_token
    ├── AuthorizationError             403    forbidden
    │   └── InsufficientScope          403    insufficient_scope (+ the scopes needed)
    ├── RequestRejected                4xx    edge and protocol checks (origin, size, headers)
    │   └── ProtocolError              400    JSON-RPC error with a code (-32700, -32600, -32020…)
    ├── KeySourceError                 -      discovery / JWKS fetch failed (keeps last good keys)
    ├── UpstreamError                  502    upstream unreachable or answered garbage
    │   └── UpstreamTimeout            504    upstream did not answer in time
    ├── QuotaExceeded                  429    a quota refused the request (+ Retry-After)
    │   └── QuotaUnavailable           503    a fail-closed quota's store is unreachable
    └── OAuthError                     400    the development IdP's OAuth error responses

Messages are safe to show to clients: they never contain a token, a secret or an
upstream's own error text.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BastionError",
    "ConfigError",
    "InsufficientScope",
    "InvalidToken",
    "KeySourceError",
    "MissingToken",
    "OAuthError",
    "ProtocolError",
    "QuotaExceeded",
    "QuotaUnavailable",
    "RequestRejected",
    "UpstreamError",
    "UpstreamTimeout",
]


class BastionError(Exception):
    """Root of every error mcp-bastion raises on purpose."""

    status: ClassVar[int] = 500
    error: ClassVar[str] = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BastionError):
    """The configuration (or a CLI argument) is wrong. Says where and what was expected."""

    error = "invalid_config"

    def __init__(self, message: str, *, source: str = "", path: str = "", hint: str = "") -> None:
        where = ": ".join(part for part in (source, path) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.path = path
        self.hint = hint


class AuthenticationError(BastionError):
    status = 401
    error = "invalid_token"


class MissingToken(AuthenticationError):
    """No bearer token was presented; the challenge carries no error code (RFC 6750 §3.1)."""

    error = ""


class InvalidToken(AuthenticationError):
    """The token is malformed, expired, for another audience, or badly signed."""

    error = "invalid_token"


class AuthorizationError(BastionError):
    status = 403
    error = "forbidden"


class InsufficientScope(AuthorizationError):
    """A valid token without the scopes this call needs; the client may step up."""

    error = "insufficient_scope"

    def __init__(self, message: str, *, scopes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.scopes = scopes


class RequestRejected(BastionError):
    """An edge or transport check failed before authentication or forwarding."""

    status = 400
    error = "invalid_request"

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # type: ignore[misc]  # instance value narrows the class default


class ProtocolError(RequestRejected):
    """A JSON-RPC level failure, answered as a JSON-RPC error object."""

    def __init__(
        self, message: str, *, code: int, status: int = 400, request_id: Any = None, data: Any = None
    ) -> None:
        super().__init__(message, status=status)
        self.code = code
        self.request_id = request_id
        self.data = data


class KeySourceError(BastionError):
    """Discovery metadata or a JWKS could not be fetched or was unusable."""

    status = 503
    error = "temporarily_unavailable"


class UpstreamError(BastionError):
    status = 502
    error = "bad_gateway"


class UpstreamTimeout(UpstreamError):
    status = 504
    error = "gateway_timeout"


class QuotaExceeded(BastionError):
    """A quota or concurrency cap refused the request (docs/quotas.md); `quota` names it."""

    status = 429
    error = "rate_limited"

    def __init__(self, message: str, *, quota: str, retry_after: int) -> None:
        super().__init__(message)
        self.quota = quota
        self.retry_after = retry_after  # whole seconds, at least 1 (RFC 9110 §10.2.3)


class QuotaUnavailable(QuotaExceeded):
    """A quota with `on_store_error: closed` could not be checked: its store is unreachable."""

    status = 503
    error = "temporarily_unavailable"


class OAuthError(BastionError):
    """An OAuth error response of the development authorization server (RFC 6749 §5.2)."""

    status = 400

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error  # type: ignore[misc]
        self.status = status  # type: ignore[misc]
