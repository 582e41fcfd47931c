"""Where a facade lives (pure, and free of the web stack the facade itself needs)."""

from __future__ import annotations

from ..config.model import BastionConfig, IdentityProviderConfig

#: Facades live under this path of the gateway: ``{public_base_url}/oauth/{idp name}``.
FACADE_PATH = "/oauth"


def facade_issuer(config: BastionConfig, provider: IdentityProviderConfig) -> str:
    """The issuer URL of ``provider``'s facade (its tokens' ``iss``)."""
    return f"{config.public_base_url}{FACADE_PATH}/{provider.name}"
