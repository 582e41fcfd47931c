"""The development IdP's configuration: one immutable object, validated when built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from ..errors import ConfigError
from ._policy import SIGNING_ALGORITHMS
from ._rfc8707 import resource_problem
from ._scopes import is_scope_token

_SOURCE = "devidp"
# Usernames are echoed into tokens (`sub`) and pages; keep them boring.
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


def is_username(value: str) -> bool:
    """Whether ``value`` is an acceptable username (1-64 chars of ``A-Za-z0-9._@+-``)."""
    return _USERNAME.fullmatch(value) is not None


@dataclass(frozen=True)
class StaticClient:
    """A pre-registered confidential client for the client credentials grant.

    With ``exchange_from`` it may also use RFC 8693 token exchange: it presents users' tokens
    issued for those resources (its own audience) and obtains tokens for ``resources``.
    """

    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    resources: tuple[str, ...]
    exchange_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class DevIdpSettings:
    """Settings of the embedded development authorization server.

    ``resources`` maps each resource URL (RFC 8707) to the scopes it accepts; ``users``
    maps usernames to the scopes they may be granted (``None``: any username, any scope of
    the resource). ``auto_approve`` skips the consent page and approves as that user.
    Building an instance validates it and raises :class:`~mcp_bastion.errors.ConfigError`.
    """

    issuer: str
    resources: Mapping[str, tuple[str, ...]]
    users: Mapping[str, tuple[str, ...]] | None = None
    auto_approve: str | None = None
    access_token_ttl: int = 300
    refresh_token_ttl: int = 86_400
    code_ttl: int = 60
    signing_alg: str = "ES256"
    clients: tuple[StaticClient, ...] = ()
    allow_http_cimd: bool = False
    #: Metadata documents at loopback addresses, over https only (tests; never in production).
    allow_loopback_cimd: bool = False
    #: The only CAs trusted for metadata documents (a private PKI, tests); None: the system's.
    cimd_ca_file: str | None = None
    registration_limit_per_minute: int = 60
    #: The line under the consent form, saying whose server this is.
    consent_note: str = "Development authorization server: not for production."

    def __post_init__(self) -> None:
        # Freeze copies, so a caller mutating its dict cannot change a running IdP.
        object.__setattr__(self, "resources", _frozen(self.resources))
        if self.users is not None:
            object.__setattr__(self, "users", _frozen(self.users))
        object.__setattr__(self, "clients", tuple(self.clients))
        _check_issuer(self.issuer)
        _check_resources(self.resources)
        _check_users(self.users, self.auto_approve)
        _check_numbers(self)
        _check_clients(self.clients, self.resources)

    @property
    def scopes_supported(self) -> tuple[str, ...]:
        """Every scope of every resource, sorted, for the metadata document."""
        return tuple(sorted({scope for scopes in self.resources.values() for scope in scopes}))


def _frozen(mapping: Mapping[str, tuple[str, ...]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({key: tuple(value) for key, value in mapping.items()})


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(message, source=_SOURCE, path=path)


def _check_issuer(issuer: str) -> None:
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail("issuer", "must be an absolute http(s) URL, e.g. http://127.0.0.1:8000/idp")
    # RFC 8414 §2: no query or fragment; a trailing '/' would break path-inserted metadata.
    if parts.query or parts.fragment or "#" in issuer or issuer.endswith("/") or "@" in parts.netloc:
        raise _fail("issuer", "must have no query, fragment, userinfo or trailing '/'")


def _check_scopes(path: str, scopes: tuple[str, ...]) -> None:
    for scope in scopes:
        if not isinstance(scope, str) or not is_scope_token(scope):
            raise _fail(path, f"{scope!r} is not a scope token (RFC 6749 §3.3)")


def _check_resources(resources: Mapping[str, tuple[str, ...]]) -> None:
    if not resources:
        raise _fail("resources", "at least one resource is required")
    for resource, scopes in resources.items():
        problem = resource_problem(resource)
        if problem is not None:
            raise _fail(f"resources[{resource!r}]", problem)
        _check_scopes(f"resources[{resource!r}]", scopes)


def _check_users(users: Mapping[str, tuple[str, ...]] | None, auto_approve: str | None) -> None:
    for name, scopes in (users or {}).items():
        if not is_username(name):
            raise _fail(f"users[{name!r}]", "usernames are 1-64 characters of A-Za-z0-9._@+-")
        _check_scopes(f"users[{name!r}]", scopes)
    if auto_approve is None:
        return
    if not is_username(auto_approve):
        raise _fail("auto_approve", "usernames are 1-64 characters of A-Za-z0-9._@+-")
    if users is not None and auto_approve not in users:
        raise _fail("auto_approve", f"{auto_approve!r} is not one of the configured users")


def _check_numbers(settings: DevIdpSettings) -> None:
    for name in ("access_token_ttl", "refresh_token_ttl", "code_ttl", "registration_limit_per_minute"):
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _fail(name, "must be a positive integer")
    if settings.signing_alg not in SIGNING_ALGORITHMS:
        raise _fail("signing_alg", f"must be one of {', '.join(SIGNING_ALGORITHMS)}")


def _check_clients(clients: tuple[StaticClient, ...], resources: Mapping[str, tuple[str, ...]]) -> None:
    seen: set[str] = set()
    for index, client in enumerate(clients):
        path = f"clients[{index}]"
        if not client.client_id or "://" in client.client_id or client.client_id in seen:
            raise _fail(path, "client_id must be unique, non-empty and not a URL")
        if not client.client_secret:
            raise _fail(path, "client_secret must not be empty")
        _check_scopes(path, client.scopes)
        unknown = [r for r in (*client.resources, *client.exchange_from) if r not in resources]
        if unknown:
            raise _fail(path, f"resources {unknown} are not configured in resources")
        seen.add(client.client_id)
