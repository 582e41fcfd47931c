"""Registered clients, and finding the client a request names.

Three sources, in order: pre-configured confidential clients (:class:`StaticClient`),
dynamically registered clients (RFC 7591), and Client ID Metadata Documents (an https
``client_id`` that is fetched). Token-endpoint authentication (RFC 6749 §2.3) is here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import OAuthError
from ._events import IdpEvent, IdpEvents, NoEvents, error_reason
from ._secrets import digest, digest_matches
from ._settings import StaticClient

if TYPE_CHECKING:
    from ._cimd import ClientMetadataDocuments
    from ._client_auth import PresentedClient
    from ._stores import ClientStore

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True)
class RegisteredClient:
    """What the IdP knows about a client. Confidential clients carry a secret digest."""

    client_id: str
    redirect_uris: tuple[str, ...] = ()
    grant_types: frozenset[str] = frozenset({AUTHORIZATION_CODE})
    client_name: str | None = None
    secret_digest: str | None = field(default=None, repr=False)
    #: client_credentials only: the scopes and resources it may get (None: any).
    scopes: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None

    @property
    def confidential(self) -> bool:
        """Whether the client authenticates with a secret."""
        return self.secret_digest is not None


def from_static(client: StaticClient) -> RegisteredClient:
    """A :class:`StaticClient` as a registered confidential client_credentials client."""
    return RegisteredClient(
        client_id=client.client_id,
        grant_types=frozenset({CLIENT_CREDENTIALS}),
        secret_digest=digest(client.client_secret),
        scopes=client.scopes,
        resources=client.resources,
    )


class ClientLookup:
    """Finds clients for the authorization and token endpoints."""

    def __init__(
        self,
        static: Sequence[StaticClient],
        store: ClientStore,
        documents: ClientMetadataDocuments,
        events: IdpEvents | None = None,
    ) -> None:
        self._static = {client.client_id: from_static(client) for client in static}
        self._store = store
        self._documents = documents
        self._events = events or NoEvents()

    async def for_authorization(self, client_id: str | None) -> RegisteredClient:
        """The client of an authorization request; unknown → ``invalid_client`` (error page)."""
        if client_id is None:
            raise OAuthError("invalid_request", "client_id is required")
        client = await self._known(client_id)
        if client is None and self._documents.is_document_url(client_id):
            client = await self._document_client(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id: register the client first")
        if AUTHORIZATION_CODE not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use the authorization code flow")
        return client

    async def _document_client(self, client_id: str) -> RegisteredClient:
        """A Client ID Metadata Document client: its document fetched (or cached) and checked.
        A fetch is a registration event; a cache hit registers nothing new, and is none."""
        cached = self._documents.cached(client_id)
        if cached is not None:
            return cached
        try:
            client = await self._documents.fetch(client_id)
        except OAuthError as exc:
            reason = error_reason(exc.error, exc.message)
            self._events.record(IdpEvent("registration", False, "cimd", reason, 400, client_id[:2048]))
            raise
        self._events.record(IdpEvent("registration", True, "cimd", "ok", 0, client_id))
        return client

    async def authenticate(self, presented: PresentedClient) -> RegisteredClient:
        """The client a token request authenticates as (RFC 6749 §2.3); failure → 401."""
        client = await self._known(presented.client_id)
        if client is None and self._documents.is_document_url(presented.client_id):
            # A metadata-document client is public; what it may do is bound into its code
            # or refresh token, so the document need not be fetched again here.
            client = RegisteredClient(presented.client_id, grant_types=_PUBLIC_GRANTS)
        if client is None:
            raise OAuthError("invalid_client", "unknown client", status=401)
        if client.secret_digest is not None:
            if presented.secret is None or not digest_matches(presented.secret, client.secret_digest):
                raise OAuthError("invalid_client", "client authentication failed", status=401)
        elif presented.secret is not None:
            raise OAuthError("invalid_client", "this public client has no secret", status=401)
        return client

    async def _known(self, client_id: str) -> RegisteredClient | None:
        return self._static.get(client_id) or await self._store.get(client_id)


_PUBLIC_GRANTS = frozenset({AUTHORIZATION_CODE, REFRESH_TOKEN})
