"""Which client a token request claims to be, and how it proves it (RFC 6749 §2.3).

``client_secret_basic`` (the Authorization header), ``client_secret_post`` (form fields)
or ``none`` (a public client sends only ``client_id``). Pure parsing; the secret check
against the registered client happens in :mod:`._clients`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from ..errors import OAuthError
from ._params import Params


@dataclass(frozen=True)
class PresentedClient:
    """The client identity and secret a token request carries."""

    client_id: str
    secret: str | None = field(repr=False)
    method: str


def presented_client(authorization: str | None, params: Params) -> PresentedClient:
    """Parse the client's credentials; more than one method is ``invalid_request`` (RFC 6749 §2.3)."""
    form_id, form_secret = params.get("client_id"), params.get("client_secret")
    if authorization is not None:
        basic_id, basic_secret = _parse_basic(authorization)
        if form_secret is not None:
            raise OAuthError("invalid_request", "use only one client authentication method")
        if form_id is not None and form_id != basic_id:
            raise OAuthError("invalid_request", "client_id differs from the authenticated client")
        return PresentedClient(basic_id, basic_secret, "client_secret_basic")
    if form_id is None:
        raise OAuthError("invalid_client", "client_id is required", status=401)
    return PresentedClient(form_id, form_secret, "client_secret_post" if form_secret else "none")


def _parse_basic(authorization: str) -> tuple[str, str]:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "the token endpoint accepts only Basic authentication", status=401)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from exc
    client_id, separator, secret = decoded.partition(":")
    if not separator or not client_id:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)
