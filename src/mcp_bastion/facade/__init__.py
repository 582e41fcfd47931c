"""The authorization facade: the gateway as the authorization server for an IdP without DCR.

MCP clients register themselves (Client ID Metadata Documents first, Dynamic Client
Registration as the fallback); Entra ID and most Okta tenants accept neither. For an
identity provider configured with ``facade``, the gateway publishes RFC 8414 metadata at
``{public_base_url}/oauth/{name}``, accepts CIMD and DCR, signs the user in at the IdP as
one pre-registered confidential client (code flow, PKCE, ID token checked), asks the user
to consent *per MCP client*, and issues its own short-lived, audience-bound RFC 9068 tokens
with refresh rotation and RFC 7009 revocation. The gateway's verifier trusts the facade as
one more issuer.

It is the development IdP's authorization-server core (:mod:`mcp_bastion.devidp`) with a
different :class:`~mcp_bastion.devidp.Login` step: see ``docs/facade.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..audit import AuditSink
from ..config import LoadedConfig
from ..errors import ConfigError
from ._issuer import FACADE_PATH, facade_issuer

if TYPE_CHECKING:
    from ._build import Facade

__all__ = ["FACADE_PATH", "INSTALL_HINT", "build_facade", "facade_issuer"]

INSTALL_HINT = "pip install 'mcp-bastion[facade]'"


def build_facade(
    loaded: LoadedConfig,
    index: int,
    resources: Mapping[str, tuple[str, ...]],
    clock: Callable[[], float],
    sink: AuditSink | None = None,
) -> Facade:
    """The facade of ``identity_providers[index]`` for ``resources`` (URL → scopes).

    The facade serves HTML pages and forms with Starlette (the ``[facade]`` extra); a gateway
    without facades never imports it, and one with a facade but without the extra is refused.
    """
    try:
        from ._build import build_facade as build
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in ("starlette", "multipart", "python_multipart"):
            raise
        raise ConfigError(
            f"a facade is configured, and it needs the [facade] extra ({missing} is not installed)",
            source=loaded.path or "",
            path=f"identity_providers[{index}].facade",
            hint=INSTALL_HINT,
        ) from None
    return build(loaded, index, resources, clock, sink)
