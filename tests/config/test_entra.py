"""The Entra ID options (config/entra.py): which tenant, and v1.0 tokens only when asked."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bastion.auth.entra import issuer_aliases
from mcp_bastion.config import parse_config
from mcp_bastion.errors import ConfigError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"


def _provider(**idp: Any) -> Any:
    config = {
        "public_base_url": "https://gw.example",
        "identity_providers": [{"name": "entra", "issuer": V2, "preset": "entra", **idp}],
        "servers": [{"name": "files", "upstream": "https://up.example/mcp"}],
    }
    return parse_config(config).identity_providers[0]


def test_the_v1_issuer_is_an_alias_only_with_accept_v1() -> None:
    assert issuer_aliases(_provider()) == ()
    assert issuer_aliases(_provider(entra={"tenant_id": TENANT})) == ()
    # The tenant comes from the v2.0 issuer when not given.
    assert issuer_aliases(_provider(entra={"accept_v1": True})) == (f"https://sts.windows.net/{TENANT}/",)


@pytest.mark.parametrize(
    ("idp", "refusal"),
    [
        ({"preset": "okta", "entra": {"accept_v1": True}}, "need preset: entra"),
        ({"entra": {"accept_v1": True, "tenant_id": "f8cdef31-a31e-4b4a-93e4-5f571e91255a"}}, "differs"),
        ({"issuer": "https://login.example/common/v2.0", "entra": {"accept_v1": True}}, "needs the tenant"),
        ({"entra": {"tenant_id": "not-a-guid"}}, "tenant_id"),
    ],
)
def test_inconsistent_entra_options_are_refused(idp: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ConfigError, match=refusal):
        _provider(**idp)
