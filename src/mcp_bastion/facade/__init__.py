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

from ._build import FACADE_PATH, Facade, build_facade, facade_issuer
from ._upstream import UpstreamClient, UpstreamLogin

__all__ = ["FACADE_PATH", "Facade", "UpstreamClient", "UpstreamLogin", "build_facade", "facade_issuer"]
