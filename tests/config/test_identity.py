"""The enterprise identity settings (config/identity.py): presets, the gateway's IdP client,
exchange credentials, and the secrets they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from joserfc.jwk import ECKey, RSAKey

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, config_warnings, load_config, parse_config
from mcp_bastion.errors import ConfigError

IDP = {"name": "corp", "issuer": "https://login.example/tenant/v2.0"}


def config(idp: dict[str, Any] | None = None, **server: Any) -> dict[str, Any]:
    return {
        "public_base_url": "https://gw.example",
        "identity_providers": [{**IDP, **(idp or {})}],
        "servers": [{"name": "files", "upstream": "https://up.example/mcp", **server}],
    }


def test_a_preset_fills_claims_and_drops_typ_unless_given() -> None:
    entra = parse_config(config({"preset": "entra"})).identity_providers[0]
    assert (entra.require_typ, entra.claims.scopes, entra.claims.client_id) == (
        None,
        ("scp", "roles"),
        ("azp", "appid"),
    )
    given = parse_config(config({"preset": "okta", "require_typ": "at+jwt", "claims": {"subject": "uid"}}))
    okta = given.identity_providers[0]
    assert (okta.require_typ, okta.claims.subject, okta.claims.scopes) == ("at+jwt", "uid", ("scope", "scp"))


def test_an_unknown_preset_is_refused() -> None:
    with pytest.raises(ConfigError, match="preset"):
        parse_config(config({"preset": "ping"}))


@pytest.mark.parametrize(
    ("client", "refusal"),
    [
        ({"client_id": "gw"}, "secret"),
        ({"client_id": "gw", "auth_method": "private_key_jwt", "secret": {"env": "S"}}, "private_key"),
        (
            {"client_id": "gw", "secret": {"env": "S"}, "private_key": {"env": "K"}},
            "only used with private_key_jwt",
        ),
    ],
)
def test_client_credentials_match_the_auth_method(client: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ConfigError, match=refusal):
        parse_config(config({"client": client}))


def test_exchange_types_name_their_idp_and_only_they_do() -> None:
    with pytest.raises(ConfigError, match="type 'exchange' names its IdP here"):
        parse_config(config(upstream_auth={"type": "exchange"}))
    with pytest.raises(ConfigError, match="only used with exchange"):
        parse_config(config(upstream_auth={"type": "minted", "exchange": {"identity_provider": "corp"}}))


def test_client_secrets_are_read_with_the_others(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    idp = {"client": {"client_id": "gw", "secret": {"env": "CORP_SECRET"}}}
    path.write_text(
        yaml.safe_dump(
            config(idp, upstream_auth={"type": "exchange", "exchange": {"identity_provider": "corp"}})
        )
    )
    loaded = load_config(path, {"CORP_SECRET": "s3cret"})
    assert loaded.secret("identity_providers[0].client.secret") == "s3cret"
    with pytest.raises(ConfigError, match="CORP_SECRET is not set"):
        load_config(path, {})


def test_an_exchange_through_an_idp_without_a_client_is_refused_at_build() -> None:
    loaded = LoadedConfig(
        parse_config(config(upstream_auth={"type": "obo", "exchange": {"identity_provider": "corp"}})), {}
    )
    with pytest.raises(ConfigError, match="has no `client`"):
        build_gateway(loaded)


def test_audiences_and_machine_clients_name_defined_servers() -> None:
    for key, value in (("audiences", {"flies": ["api://x"]}), ("machine_clients", ["flies"])):
        with pytest.raises(ConfigError, match="'flies'"):
            build_gateway(LoadedConfig(parse_config(config({key: value})), {}))


def test_a_client_assertion_key_that_cannot_sign_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    client = {"client_id": "gw", "auth_method": "private_key_jwt", "private_key": {"env": "KEY"}}
    path.write_text(yaml.safe_dump(config({"client": {**client, "assertion_algorithm": "RS256"}})))
    ec_key = orjson.dumps(ECKey.generate_key("P-256").as_dict(private=True)).decode()
    # An EC key for RS256 would fail every exchange; a public key signs nothing.
    with pytest.raises(ConfigError, match=r"identity_providers\[0\].client.private_key.*cannot sign RS256"):
        load_config(path, {"KEY": ec_key})
    public = orjson.dumps(RSAKey.generate_key(2048).as_dict(private=False)).decode()
    with pytest.raises(ConfigError, match="must be a private RSA, EC or OKP JWK"):
        load_config(path, {"KEY": public})
    rsa = orjson.dumps(RSAKey.generate_key(2048).as_dict(private=True)).decode()
    assert load_config(path, {"KEY": rsa}).secret("identity_providers[0].client.private_key") == rsa


def test_a_preset_without_typ_draws_no_typ_warning() -> None:
    # The preset checks the IdP's own access-token marker instead (ID tokens stay refused).
    with_preset = config_warnings(parse_config(config({"preset": "keycloak"})))
    assert not [w for w in with_preset if w.path.endswith("require_typ")]
    without = config_warnings(parse_config(config({"require_typ": None})))
    assert [w for w in without if w.path.endswith("require_typ")]


def test_a_configured_endpoint_must_be_https() -> None:
    client = {"client_id": "gw", "secret": {"env": "S"}, "token_endpoint": "http://idp.example/token"}
    server = {"upstream_auth": {"type": "exchange", "exchange": {"identity_provider": "corp"}}}
    loaded = LoadedConfig(
        parse_config(config({"client": client}, **server)), {"identity_providers[0].client.secret": "s"}
    )
    with pytest.raises(ConfigError, match=r"client.token_endpoint: refusing to fetch a non-https URL"):
        build_gateway(loaded)


@pytest.mark.parametrize("kind", ["exchange", "obo"])
def test_exchanging_the_callers_token_needs_auth(kind: str) -> None:
    # With auth: false no caller token reaches the gateway: every call would fail with 502.
    auth = {"type": kind, "exchange": {"identity_provider": "corp"}}
    with pytest.raises(ConfigError, match="with auth: false there is none") as refused:
        parse_config(config(auth=False, upstream_auth=auth))
    assert "servers[0].upstream_auth.type" in str(refused.value)
    machine = {"type": "client_credentials", "exchange": {"identity_provider": "corp"}}
    assert parse_config(config(auth=False, upstream_auth=machine)).servers[0].upstream_auth.type == (
        "client_credentials"
    )
