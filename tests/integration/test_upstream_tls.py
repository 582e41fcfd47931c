"""HTTPS upstreams (`servers[].upstream_tls`): a real uvicorn upstream serving TLS with
certificates made by `openssl`, optionally requiring a client certificate (mutual TLS)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support.certificates import Pem, make_ca, make_leaf
from ..support.gateway import post_mcp, running_gateway
from ..support.issuer import running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import serve_asgi

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pem]:
    base = tmp_path_factory.mktemp("pki")
    ca, other_ca = make_ca(base / "ca"), make_ca(base / "other", "other-ca")
    return {
        "ca": ca,
        "other_ca": other_ca,
        "upstream": make_leaf(ca, base, "upstream"),
        "gateway": make_leaf(ca, base, "gateway", client=True),
        "stranger": make_leaf(other_ca, base / "other", "stranger", client=True),
    }


def _tls_upstream(pki: dict[str, Pem], *, require_client: bool) -> Any:
    options: dict[str, Any] = {
        "ssl_certfile": str(pki["upstream"].certificate),
        "ssl_keyfile": str(pki["upstream"].key),
    }
    if require_client:
        options.update(ssl_ca_certs=str(pki["ca"].certificate), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


def _status(upstream_tls: dict[str, str] | None, pki: dict[str, Pem], *, require_client: bool = False) -> int:
    upstream = RecordingUpstream()
    with (
        running_issuer() as issuer,
        serve_asgi(upstream, **_tls_upstream(pki, require_client=require_client)) as up,
    ):
        url = f"https://127.0.0.1:{up.port}/mcp"
        server: dict[str, Any] = {"name": "tls", "upstream": url, "upstream_auth": {"type": "none"}}
        if upstream_tls is not None:
            server["upstream_tls"] = upstream_tls
        with running_gateway(issuer.issuer, {}, servers=[server]) as gw, httpx.Client(timeout=10) as http:
            token = issuer.token(audience=gw.url("tls"))
            answer = post_mcp(http, gw.url("tls"), CALL, token=token)
            if answer.status_code == 200:
                assert answer.json()["result"]["tools"]
                assert upstream.seen
            else:
                assert not upstream.seen  # nothing reached an upstream the gateway could not trust
            return answer.status_code


def test_an_https_upstream_is_reached_with_its_ca_bundle(pki: dict[str, Pem]) -> None:
    assert _status({"ca_bundle": str(pki["ca"].certificate)}, pki) == 200


def test_an_upstream_certificate_from_another_ca_is_refused(pki: dict[str, Pem]) -> None:
    # The system's CAs (no ca_bundle) and a bundle of another CA both fail: 502, nothing sent.
    assert _status(None, pki) == 502
    assert _status({"ca_bundle": str(pki["other_ca"].certificate)}, pki) == 502


def test_mutual_tls_presents_the_gateways_client_certificate(pki: dict[str, Pem]) -> None:
    with_cert = {
        "ca_bundle": str(pki["ca"].certificate),
        "client_certificate": str(pki["gateway"].certificate),
        "client_key": str(pki["gateway"].key),
    }
    assert _status(with_cert, pki, require_client=True) == 200


def test_an_upstream_requiring_a_client_certificate_refuses_the_gateway_without_one(
    pki: dict[str, Pem],
) -> None:
    assert _status({"ca_bundle": str(pki["ca"].certificate)}, pki, require_client=True) == 502
    stranger = {
        "ca_bundle": str(pki["ca"].certificate),
        "client_certificate": str(pki["stranger"].certificate),
        "client_key": str(pki["stranger"].key),
    }
    assert _status(stranger, pki, require_client=True) == 502


def test_tls_files_that_cannot_be_used_are_refused_at_load(tmp_path: Path, pki: dict[str, Pem]) -> None:
    from mcp_bastion.config import load_config
    from mcp_bastion.errors import ConfigError

    from ..support.serve_process import write_config

    bad_key = tmp_path / "bad.key"
    bad_key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"certificate": str(tmp_path / "missing.crt"), "key": str(pki["upstream"].key)}, {}, "listen.tls"),
        ({"certificate": str(pki["upstream"].certificate), "key": str(bad_key)}, {}, "listen.tls"),
        ({"certificate": str(pki["upstream"].certificate), "key": str(pki["gateway"].key)}, {}, "listen.tls"),
        ({}, {"ca_bundle": str(tmp_path / "missing-ca.pem")}, "servers[0].upstream_tls"),
    ]
    for listen_tls, upstream_tls, where in cases:
        config: dict[str, Any] = {
            "public_base_url": "https://gw.example",
            "audit": {"sink": "none"},
            "servers": [{"name": "a", "upstream": "https://up.example/mcp", "auth": False}],
        }
        if listen_tls:
            config["listen"] = {"tls": listen_tls}
        if upstream_tls:
            config["servers"][0]["upstream_tls"] = upstream_tls
        path = write_config(tmp_path / "bastion.yaml", config)
        with pytest.raises(ConfigError) as refused:
            load_config(path)
        assert refused.value.path == where
        assert "cannot use the TLS files" in refused.value.message
