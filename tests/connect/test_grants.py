"""``connect --grant``: tokens without a browser, and what each grant sends where.

The real relay and authorizer run against :mod:`grant_server` on loopback (an MCP
endpoint, its authorization server and an enterprise IdP); the proof of each property is
what the servers recorded: which credential reached which endpoint, and what did not.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from mcp_bastion.cli import main
from mcp_bastion.connect import ConnectError
from mcp_bastion.connect.grants import (
    ClientAuth,
    ClientCredentialsGrant,
    Grant,
    IdJagGrant,
    JwtBearerGrant,
    load_signing_key,
)
from mcp_bastion.connect.oauth import AuthOptions, Authorizer
from mcp_bastion.connect.relay import Relay

from .grant_server import running_grant_server

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
SECRET = "s3cret-never-logged"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def _initialize(url: str, store: Path, grant: Grant) -> list[Any]:
    written: list[Any] = []

    async def write(message: Any) -> None:
        written.append(message)

    options = AuthOptions(store_path=store, grant=grant)
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        relay = Relay(http, url, Authorizer(http, url, options), write)
        await asyncio.wait_for(relay.forward(INITIALIZE), 20)
    return written


def _ok(written: list[Any]) -> bool:
    return written == [{"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}]


def _key_file(path: Path, mode: int = 0o600) -> tuple[Path, ECKey]:
    key = ECKey.generate_key("P-256", private=True)
    path.write_bytes(key.as_pem(private=True))
    os.chmod(path, mode)
    return path, key


async def test_client_credentials_with_a_secret_authenticates_with_basic_and_stores_nothing(
    tmp_path: Path,
) -> None:
    grant = ClientCredentialsGrant(ClientAuth("svc", SECRET))
    with running_grant_server() as server:
        written = await _initialize(server.url, tmp_path / "t.json", grant)
    assert _ok(written)
    [(form, authorization)] = server.token_requests
    assert form == {"grant_type": "client_credentials", "resource": server.url}  # RFC 8707
    assert authorization == "Basic " + base64.b64encode(f"svc:{SECRET}".encode()).decode()
    # The credential is what lasts: no token of a machine grant is written to disk.
    assert not (tmp_path / "t.json").exists()


async def test_a_token_about_to_expire_is_renewed_by_the_grant_before_it_is_sent(tmp_path: Path) -> None:
    # 10 s of life is inside the 30 s margin: the second request obtains a new token first,
    # rather than sending one the server may already refuse.
    grant = ClientCredentialsGrant(ClientAuth("svc", SECRET))
    written: list[Any] = []

    async def write(message: Any) -> None:
        written.append(message)

    with running_grant_server(expires_in=10) as server:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            authorizer = Authorizer(
                http, server.url, AuthOptions(store_path=tmp_path / "t.json", grant=grant)
            )
            relay = Relay(http, server.url, authorizer, write)
            await asyncio.wait_for(relay.forward(INITIALIZE), 20)
            await asyncio.wait_for(relay.forward({**INITIALIZE, "id": 2}), 20)
    assert [m.get("result") for m in written] == [{"ok": True}, {"ok": True}]
    # The first send has no token (the 401), then every send finds the token inside the
    # margin and is preceded by a grant: the retry of the first request, and the second.
    assert server.unauthorized == 1
    assert len(server.token_requests) == 3


async def test_a_private_key_jwt_assertion_is_for_this_issuer_short_lived_and_single_use(
    tmp_path: Path,
) -> None:
    path, key = _key_file(tmp_path / "key.pem")
    grant = ClientCredentialsGrant(ClientAuth("svc", key=load_signing_key(path)))
    with running_grant_server() as server:
        assert _ok(await _initialize(server.url, tmp_path / "t.json", grant))
        assert _ok(await _initialize(server.url, tmp_path / "t.json", grant))
    claims = []
    for form, authorization in server.token_requests:
        assert authorization is None
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        token = jwt.decode(form["client_assertion"], key, algorithms=["ES256"])  # signed by the key
        assert token.header["alg"] == "ES256"
        claims.append(token.claims)
    for c in claims:
        # RFC 7523 §3: iss = sub = the client; aud = the AS's issuer (an assertion good nowhere else).
        assert (c["iss"], c["sub"], c["aud"]) == ("svc", "svc", server.base)
        assert c["exp"] - c["iat"] == 60
    assert claims[0]["jti"] != claims[1]["jti"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=oct)
def test_a_private_key_others_can_read_is_refused(
    mode: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Anyone who can read the key can be the client (ssh refuses such keys for the same reason).
    path, _key = _key_file(tmp_path / "key.pem", mode)
    status = main(
        ["connect", "--grant", "client_credentials", "--client-id", "svc", "--private-key-file", str(path),
         "https://gw.example.com/mcp"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert "open to other users" in err
    assert "chmod 600" in err
    assert "PRIVATE KEY" not in err


async def test_a_token_endpoint_over_plain_http_never_gets_the_secret(tmp_path: Path) -> None:
    grant = ClientCredentialsGrant(ClientAuth("svc", SECRET))
    with running_grant_server(token_endpoint="http://as.example.com/token") as server:
        written = await _initialize(server.url, tmp_path / "t.json", grant)
    message = written[0]["error"]["message"]
    assert "token_endpoint must use https" in message
    assert server.token_requests == []


async def test_a_refused_grant_is_reported_by_its_code_alone_and_not_retried(tmp_path: Path) -> None:
    # SEP-1933: a refused jwt-bearer grant is surfaced, not retried nor swapped for another grant.
    assertion = tmp_path / "workload.jwt"
    assertion.write_text("eyJ.workload.assertion\n")
    grant = JwtBearerGrant(ClientAuth("wl", SECRET), assertion)
    with running_grant_server(refuse="invalid_grant") as server:
        written = await _initialize(server.url, tmp_path / "t.json", grant)
    message = written[0]["error"]["message"]
    assert "invalid_grant" in message
    assert SECRET not in message
    assert "workload" not in message
    [(form, _)] = server.token_requests
    assert form["grant_type"] == JWT_BEARER
    assert form["assertion"] == "eyJ.workload.assertion"


async def test_the_assertion_file_is_read_again_at_every_grant(tmp_path: Path) -> None:
    # Platforms rotate workload tokens in place (projected service account tokens).
    assertion = tmp_path / "workload.jwt"
    grant = JwtBearerGrant(ClientAuth("wl"), assertion)
    with running_grant_server() as server:
        for text in ("first", "second"):
            assertion.write_text(text)
            assert _ok(await _initialize(server.url, tmp_path / "t.json", grant))
    assert [form["assertion"] for form, _ in server.token_requests] == ["first", "second"]
    assert all(form["client_id"] == "wl" for form, _ in server.token_requests)


def _id_jag(server_base: str, tmp_path: Path) -> IdJagGrant:
    id_token = tmp_path / "id-token.jwt"
    id_token.write_text("the-users-id-token")
    return IdJagGrant(
        client=ClientAuth("mcp-client", SECRET),
        idp_issuer=f"{server_base}/idp",
        idp_client=ClientAuth("idp-client"),
        id_token_file=id_token,
    )


async def test_the_id_token_goes_to_the_idp_alone_and_the_id_jag_to_the_authorization_server(
    tmp_path: Path,
) -> None:
    with running_grant_server() as server:
        written = await _initialize(server.url, tmp_path / "t.json", _id_jag(server.base, tmp_path))
    assert _ok(written)
    [exchange] = server.idp_requests
    assert exchange == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
        "audience": server.base,  # the MCP server's AS, by its issuer
        "resource": server.url,
        "subject_token": "the-users-id-token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "client_id": "idp-client",
    }
    [(form, authorization)] = server.token_requests
    assert form == {"grant_type": JWT_BEARER, "assertion": "the-id-jag", "resource": server.url}
    assert authorization == "Basic " + base64.b64encode(f"mcp-client:{SECRET}".encode()).decode()
    assert "the-users-id-token" not in str(server.token_requests)


async def test_an_idp_answer_that_is_not_an_id_jag_is_never_presented(tmp_path: Path) -> None:
    # RFC 8693 §2.2.1 names what was issued; an access token for the IdP's own APIs is no grant.
    issued = "urn:ietf:params:oauth:token-type:access_token"
    with running_grant_server(idp_issued_type=issued) as server:
        written = await _initialize(server.url, tmp_path / "t.json", _id_jag(server.base, tmp_path))
    assert "is not an ID-JAG" in written[0]["error"]["message"]
    assert len(server.idp_requests) == 1
    assert server.token_requests == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--private-key-file", "k.pem"], "--private-key-file is for --grant client_credentials"),
        (["--grant", "client_credentials"], "--grant client_credentials needs --client-id"),
        (["--grant", "client_credentials", "--client-id", "c"], "exactly one of --client-secret-file"),
        (["--grant", "jwt_bearer", "--client-id", "c"], "--grant jwt_bearer needs --assertion-file"),
        (["--grant", "id_jag", "--client-id", "c"], "needs --idp-issuer, --idp-client-id, --id-token-file"),
        (
            ["--grant", "id_jag", "--client-id", "c", "--idp-issuer", "http://idp.example.com",
             "--idp-client-id", "i", "--id-token-file", "t"],
            "--idp-issuer must use https",
        ),
    ],
)  # fmt: skip
def test_a_wrong_mix_of_grant_options_is_named_before_anything_runs(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["connect", *argv, "https://gw.example.com/mcp"])
    assert status == 1
    assert expected in capsys.readouterr().err


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


def test_the_key_type_chooses_the_algorithm_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    ec = ECKey.generate_key("P-256", private=True)
    rsa = RSAKey.generate_key(2048, private=True)
    ed = OKPKey.generate_key("Ed25519", private=True)
    assert load_signing_key(_write(tmp_path / "ec.pem", ec.as_pem(private=True))).alg == "ES256"
    assert load_signing_key(_write(tmp_path / "rsa.pem", rsa.as_pem(private=True))).alg == "RS256"
    rsa_file = _write(tmp_path / "rsa2.pem", rsa.as_pem(private=True))
    assert load_signing_key(rsa_file, "PS256").alg == "PS256"
    ed_jwk = _write(tmp_path / "ed.jwk", json.dumps(ed.as_dict(private=True)).encode())
    assert load_signing_key(ed_jwk).alg == "EdDSA"
    with pytest.raises(ConnectError, match="cannot sign RS256"):
        load_signing_key(_write(tmp_path / "ec2.pem", ec.as_pem(private=True)), "RS256")
    # A public key (a common mix-up: the half registered at the AS) signs nothing.
    with pytest.raises(ConnectError, match="holds no private"):
        load_signing_key(_write(tmp_path / "pub.pem", ec.as_pem(private=False)))


def test_help_names_every_grant_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["connect", "--help"])
    out = capsys.readouterr().out
    for option in ("--grant", "--private-key-file", "--signing-alg", "--assertion-file", "--idp-issuer",
                   "--idp-client-id", "--idp-client-secret-file", "--id-token-file"):  # fmt: skip
        assert option in out
    for grant in ("client_credentials", "jwt_bearer", "id_jag"):
        assert f"--grant {grant}" in out
