"""Catalog section B (DM): discovery, JWKS and metadata, against the real gateway over loopback.

The IdP is a real server the test controls (tests/security/support.py): it can hang, fail,
serve garbage, redirect, rotate keys or hold a fetch behind a gate. Time-based rules
(cooldown, TTL) are exercised by moving the gateway's clock forward, never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpcore
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_bastion.auth.fetch import fetch_json
from mcp_bastion.config import parse_config
from mcp_bastion.errors import ConfigError, KeySourceError

from .support import (
    ACCEPT,
    ConnectionCounter,
    ControlledIdp,
    Stack,
    Streamer,
    call,
    connection_counter,
    es256_header,
    forge,
    hang,
    idp_entry,
    issuer_signer,
    json_body,
    raw,
    redirect,
    rpc,
    stack,
    standard_claims,
)
from .test_token_validation import ec_jwk, ec_signer


def random_kid_token(s: Stack) -> str:
    head = es256_header(s.idp, kid="flood-" + uuid.uuid4().hex)
    return forge(head, standard_claims(s), signer=issuer_signer(s.idp))


def assert_invalid_token(s: Stack, status: int, www: str) -> None:
    assert status == 401
    assert 'error="invalid_token"' in www
    assert f'resource_metadata="{s.prm_url}"' in www


# --- DM-01 ---------------------------------------------------------------------------------


async def _flood(s: Stack, tokens: list[str], *, release: threading.Event | None = None) -> list[int]:
    """Every request is written to its own connection before any answer is read (and, with a
    gate, before the held JWKS fetch may finish); returns the statuses in order."""
    body = json.dumps(rpc("ping")).encode()
    connections = [await asyncio.open_connection(s.host, s.port) for _ in tokens]
    for (_, writer), token in zip(connections, tokens, strict=True):
        writer.write(
            (
                f"POST /rec/mcp HTTP/1.1\r\nHost: {s.host}:{s.port}\r\nContent-Type: application/json\r\n"
                f"Accept: {ACCEPT}\r\nAuthorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    for _, writer in connections:
        await writer.drain()
    if release is not None:
        release.set()
    statuses = []
    for reader, writer in connections:
        status_line = await asyncio.wait_for(reader.readline(), 15)
        statuses.append(int(status_line.split()[1]))
        writer.close()
    return statuses


async def test_dm01_random_kid_flood_costs_at_most_one_fetch_per_cooldown() -> None:
    new_key = ec.generate_private_key(ec.SECP256R1())
    with stack(idp={"jwks_refetch_cooldown_seconds": 30}) as s:
        assert s.post(rpc("ping"), token=s.token()).status_code == 200
        base = s.idp.jwks_requests
        assert base == 1  # the start-up fetch

        # Within the cooldown of that fetch: 200 random kids, all 401, not one fetch.
        statuses = await _flood(s, [random_kid_token(s) for _ in range(200)])
        assert statuses == [401] * 200
        assert s.idp.jwks_requests == base

        # Cooldown over. The IdP has added a key, and holds the one fetch the next miss causes
        # until all 200 requests are on the wire and inside the key lookup.
        s.clock.advance(31)
        s.idp.keys.extra_keys.append(ec_jwk(new_key, "rotated-in", alg="ES256", use="sig"))
        rotated = forge(es256_header(s.idp, kid="rotated-in"), standard_claims(s), signer=ec_signer(new_key))
        tokens = [random_kid_token(s) if i % 2 else rotated for i in range(200)]
        gate = s.idp.gate = threading.Event()
        calls = s.clock.calls
        release = threading.Event()

        def open_gate_when_all_wait() -> None:
            # Each request reads the gateway's clock in verify() and again in the key lookup:
            # 400 reads means all 200 have reached the lookup, and all wait on the held fetch.
            release.wait(15)
            s.idp.wait_hits("/jwks", base + 1)
            deadline = time.monotonic() + 15
            while s.clock.calls < calls + 400 and time.monotonic() < deadline:
                threading.Event().wait(0.005)
            gate.set()

        opener = threading.Thread(target=open_gate_when_all_wait)
        opener.start()
        statuses = await _flood(s, tokens, release=release)
        opener.join(5)
        assert s.clock.calls >= calls + 400
        assert s.idp.jwks_requests == base + 1, "concurrent misses were not coalesced into one fetch"
        assert [st for st, t in zip(statuses, tokens, strict=True) if t == rotated] == [200] * 100
        assert [st for st, t in zip(statuses, tokens, strict=True) if t != rotated] == [401] * 100


# --- DM-02 ---------------------------------------------------------------------------------

FETCH_TIMEOUT = 1.0


@pytest.mark.parametrize("fault", ["hang", "500", "connection-refused"])
def test_dm02_jwks_down_cached_keys_still_verify(fault: str) -> None:
    with contextlib.ExitStack() as scope:
        from .support import bind_loopback, serve_asgi

        jwks_sock = bind_loopback()
        jwks_url = f"http://127.0.0.1:{jwks_sock.getsockname()[1]}/jwks"
        holder: dict[str, Any] = {}

        def start_jwks(idp: ControlledIdp) -> None:
            holder["server"] = contextlib.ExitStack()
            holder["server"].enter_context(serve_asgi(idp.app, sock=jwks_sock))

        s = scope.enter_context(
            stack(
                idp={
                    "discovery": False,
                    "jwks_uri": jwks_url,
                    "fetch_timeout_seconds": FETCH_TIMEOUT,
                    "jwks_refetch_cooldown_seconds": 0,
                },
                before_start=start_jwks,
            )
        )
        scope.callback(holder["server"].close)
        assert s.post(rpc("ping"), token=s.token()).status_code == 200
        if fault == "hang":
            s.idp.routes["/jwks"] = hang()
        elif fault == "500":
            s.idp.routes["/jwks"] = raw(500, b"<html>Internal Server Error</html>", b"text/html")
        else:
            holder["server"].close()  # nothing listens on the JWKS port any more
        before = s.idp.jwks_requests

        started = time.monotonic()
        unknown = s.post(rpc("ping"), token=random_kid_token(s))
        elapsed = time.monotonic() - started
        assert_invalid_token(s, unknown.status_code, unknown.headers["www-authenticate"])
        assert elapsed < FETCH_TIMEOUT + 2, f"unknown kid took {elapsed:.1f}s with the JWKS down"
        if fault != "connection-refused":
            assert s.idp.jwks_requests == before + 1  # it did try

        # Keys already held keep working, and keep working once they are past their TTL.
        assert s.post(call("read_thing"), token=s.token()).status_code == 200
        s.clock.advance(301)
        started = time.monotonic()
        assert s.post(call("read_thing"), token=s.token()).status_code == 200
        assert time.monotonic() - started < FETCH_TIMEOUT + 2


def test_dm02_jwks_unresolvable_name_fails_closed_fast() -> None:
    options = {
        "discovery": False,
        "jwks_uri": "https://jwks.invalid/keys",
        "fetch_timeout_seconds": FETCH_TIMEOUT,
    }
    with stack(idp=options) as s:
        started = time.monotonic()
        response = s.post(rpc("ping"), token=s.token())
        assert_invalid_token(s, response.status_code, response.headers["www-authenticate"])
        assert time.monotonic() - started < FETCH_TIMEOUT + 2
        assert s.upstream.seen == []


def test_dm02_idp_down_at_start_up_then_recovers() -> None:
    def fail(idp: ControlledIdp) -> None:
        idp.routes["/jwks"] = raw(503, b"")

    with stack(idp={"jwks_refetch_cooldown_seconds": 0}, before_start=fail) as s:
        response = s.post(rpc("ping"), token=s.token())
        assert_invalid_token(s, response.status_code, response.headers["www-authenticate"])
        assert s.gateway.audit.wait_for(lambda e: e.status == 401).decision == "deny"
        del s.idp.routes["/jwks"]
        s.clock.advance(2)  # past the one-second pause between retries while no keys are held
        assert s.post(rpc("ping"), token=s.token()).status_code == 200


# --- DM-03 ---------------------------------------------------------------------------------


@pytest.fixture
def refreshing() -> Iterator[Stack]:
    # One stack per case: a refresh runs behind the request that starts it, so a stack shared
    # by the cases would carry one case's refresh into the next.
    with stack(idp={"jwks_refetch_cooldown_seconds": 0}) as s:
        assert s.post(rpc("ping"), token=s.token()).status_code == 200
        yield s


_RSA_WITHOUT_E = {"kty": "RSA", "kid": "no-e", "n": "u" * 342}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(json_body(None), id="null"),
        pytest.param(json_body({}), id="empty-object"),
        pytest.param(json_body({"keys": None}), id="keys-null"),
        pytest.param(json_body({"keys": [None]}), id="keys-null-member"),
        pytest.param(json_body({"keys": []}), id="keys-empty"),
        pytest.param(json_body({"keys": "abc"}), id="keys-string"),
        pytest.param(raw(200, b"{"), id="truncated"),
        pytest.param(raw(200, b"<html><body>Login</body></html>", b"text/html"), id="html"),
        pytest.param(raw(404, b"{}"), id="404"),
        pytest.param(json_body({"keys": [_RSA_WITHOUT_E]}), id="rsa-without-e"),
        pytest.param(raw(200, b"\xff\xfe{\x00}\x00"), id="utf16"),
        pytest.param(redirect("http://127.0.0.1:1/jwks"), id="redirect"),
    ],
)
def test_dm03_bad_jwks_refresh_keeps_last_good_set(refreshing: Stack, bad: Any) -> None:
    s = refreshing
    before = s.idp.jwks_requests
    s.idp.routes["/jwks"] = bad
    s.clock.advance(301)  # past the TTL: the next token starts a refresh, behind the request
    assert s.post(call("read_thing"), token=s.token()).status_code == 200
    s.idp.wait_hits("/jwks", before + 1)  # the refresh was attempted
    response = s.post(rpc("ping"), token=random_kid_token(s))
    assert_invalid_token(s, response.status_code, response.headers["www-authenticate"])
    assert s.post(call("read_thing"), token=s.token()).status_code == 200


def test_dm03_huge_jwks_is_not_read_to_the_end() -> None:
    streamer = Streamer(total=200 * 1_048_576)
    with stack(idp={"jwks_refetch_cooldown_seconds": 0, "fetch_timeout_seconds": 5}) as s:
        assert s.post(rpc("ping"), token=s.token()).status_code == 200
        s.idp.routes["/jwks"] = streamer
        s.clock.advance(301)
        started = time.monotonic()
        assert s.post(call("read_thing"), token=s.token()).status_code == 200  # old keys kept
        assert time.monotonic() - started < 5
        assert streamer.gone.wait(5), "the gateway kept the 200 MB JWKS connection open"
    # The 1 MiB cap, plus what the loopback socket buffers held when the gateway hung up
    # (9-20 MB measured here); reading the document to its end would be 200 MB.
    assert streamer.sent_while_connected < 50 * 1_048_576


# --- DM-04 ---------------------------------------------------------------------------------


def test_dm04_key_rotation() -> None:
    new_key = ec.generate_private_key(ec.SECP256R1())
    with stack() as s:  # defaults: TTL 300 s, cooldown 30 s
        old = s.token()
        assert s.post(rpc("ping"), token=old).status_code == 200
        base = s.idp.jwks_requests
        # The IdP rotates: a new kid in, the old one out.
        old_jwk = s.idp.keys.jwks()["keys"][0]
        s.idp.keys.kid = "retired"  # the served set no longer has the old key's kid
        s.idp.keys.extra_keys[:] = [ec_jwk(new_key, "k2", alg="ES256", use="sig")]
        served = s.idp.keys.jwks
        s.idp.keys.jwks = lambda: {"keys": [k for k in served()["keys"] if k.get("kid") == "k2"]}  # type: ignore[method-assign]
        assert old_jwk["kid"] == "test-key-1"
        new = forge(es256_header(s.idp, kid="k2"), standard_claims(s), signer=ec_signer(new_key))

        s.clock.advance(31)  # past the cooldown of the start-up fetch
        assert s.post(call("read_thing"), token=new).status_code == 200
        assert s.idp.jwks_requests == base + 1  # one refetch
        assert s.post(call("read_thing"), token=new).status_code == 200
        assert s.idp.jwks_requests == base + 1

        s.clock.advance(301)  # past the TTL and the verdict cache
        fresh_old = forge(
            es256_header(s.idp, kid="test-key-1"), standard_claims(s), signer=issuer_signer(s.idp)
        )
        for token in (old, fresh_old):
            response = s.post(rpc("ping"), token=token)
            assert_invalid_token(s, response.status_code, response.headers["www-authenticate"])


# --- DM-05 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def undiscovered() -> Iterator[Stack]:
    """A gateway whose only IdP has never passed discovery: each token makes it try again
    (cooldown 0), against whatever metadata the test serves."""

    def refuse(idp: ControlledIdp) -> None:
        idp.metadata = {"issuer": "https://not-yet.example", "jwks_uri": f"{idp.issuer}/jwks"}

    options = {"jwks_refetch_cooldown_seconds": 0, "fetch_timeout_seconds": 3}
    with stack(idp=options, before_start=refuse) as s:
        yield s


def _discovery_refused(s: Stack, metadata: dict[str, Any]) -> None:
    s.idp.metadata = metadata
    looked = s.idp.hits["/.well-known/oauth-authorization-server"]
    started = time.monotonic()
    response = s.post(rpc("ping"), token=s.token())
    assert_invalid_token(s, response.status_code, response.headers["www-authenticate"])
    assert time.monotonic() - started < 2  # refused outright: no connect timeout waited for
    assert s.idp.hits["/.well-known/oauth-authorization-server"] > looked  # it did look again
    assert s.idp.jwks_requests == 0, "keys were fetched through a refused document"
    assert s.upstream.seen == []


@pytest.mark.parametrize(
    "claimed",
    [
        pytest.param(lambda iss: iss + "/", id="trailing-slash"),
        pytest.param(lambda iss: iss.replace("127.0.0.1", "localhost"), id="other-host-name"),
        pytest.param(lambda iss: iss.replace("http://", "HTTP://"), id="scheme-case"),
        pytest.param(lambda iss: iss + "/tenant", id="path"),
        pytest.param(lambda iss: "https://evil.example", id="other-issuer"),
        pytest.param(lambda iss: ..., id="missing"),
        pytest.param(lambda iss: [iss], id="array"),
    ],
)
def test_dm05_discovery_issuer_mismatch_refuses_the_provider(undiscovered: Stack, claimed: Any) -> None:
    document = {"issuer": claimed(undiscovered.idp.issuer), "jwks_uri": f"{undiscovered.idp.issuer}/jwks"}
    _discovery_refused(undiscovered, {k: v for k, v in document.items() if v is not ...})


# --- DM-06 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "jwks_uri",
    [
        pytest.param(
            lambda port: "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            id="metadata-http",
        ),
        pytest.param(lambda port: "https://169.254.169.254/latest/meta-data/", id="link-local"),
        pytest.param(lambda port: "https://10.0.0.1/jwks", id="private"),
        pytest.param(lambda port: "https://[::ffff:10.0.0.1]/jwks", id="ipv4-mapped-private"),
        pytest.param(lambda port: "https://[64:ff9b::a9fe:a9fe]/jwks", id="nat64-link-local"),
        pytest.param(lambda port: "https://[fd00::1]/jwks", id="unique-local"),
        pytest.param(lambda port: "https://100.64.0.1/jwks", id="shared-address-space"),
        pytest.param(lambda port: "https://0.0.0.0/jwks", id="unspecified"),
        pytest.param(lambda port: "http://idp.example/jwks", id="plain-http-non-loopback"),
        pytest.param(lambda port: f"http://10.0.0.1:{port}/jwks", id="plain-http-private"),
        pytest.param(lambda port: "file:///etc/passwd", id="file"),
        pytest.param(lambda port: "gopher://127.0.0.1:6379/_INFO", id="gopher"),
        pytest.param(lambda port: f"http://user:pw@127.0.0.1:{port}/jwks", id="credentials"),
    ],
)
def test_dm06_discovered_jwks_uri_to_internal_hosts_is_refused(undiscovered: Stack, jwks_uri: Any) -> None:
    with connection_counter() as internal:
        metadata = {"issuer": undiscovered.idp.issuer, "jwks_uri": jwks_uri(internal.port)}
        _discovery_refused(undiscovered, metadata)
    assert internal.accepted == 0


def test_dm06_redirect_to_an_internal_host_is_not_followed() -> None:
    with connection_counter() as internal:

        def point(idp: ControlledIdp) -> None:
            idp.metadata = {"issuer": idp.issuer, "jwks_uri": f"{idp.issuer}/moved"}
            idp.routes["/moved"] = redirect(f"http://127.0.0.1:{internal.port}/jwks")

        with stack(idp={"jwks_refetch_cooldown_seconds": 0}, before_start=point) as s:
            response = s.post(rpc("ping"), token=s.token())
            assert_invalid_token(s, response.status_code, response.headers["www-authenticate"])
            assert s.idp.hits["/moved"] >= 1
    assert internal.accepted == 0, "the gateway followed a redirect"


INTERNAL_HOSTS = ["localhost", "127.0.0.1", "127.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]"]


@pytest.fixture(scope="module")
def production() -> Iterator[tuple[Stack, ConnectionCounter]]:
    """Production mode (no allow_insecure_http): one IdP per host form, each with an https JWKS
    URL whose host is, or resolves to, a loopback address where a listener counts connections."""
    with connection_counter() as internal:
        providers = [
            {
                "name": f"prod-{i}",
                "issuer": f"https://idp-{i}.example",
                "discovery": False,
                "jwks_uri": f"https://{host}:{internal.port}/jwks",
                "jwks_refetch_cooldown_seconds": 0,
            }
            for i, host in enumerate(INTERNAL_HOSTS)
        ]
        with stack(identity_providers=lambda issuer: providers) as s:
            yield s, internal


@pytest.mark.parametrize("host", INTERNAL_HOSTS)
def test_dm06_names_resolving_to_internal_addresses_are_refused_at_connect_time(
    production: tuple[Stack, ConnectionCounter], host: str
) -> None:
    s, internal = production
    issuer = f"https://idp-{INTERNAL_HOSTS.index(host)}.example"
    token = forge(es256_header(s.idp), standard_claims(s, iss=issuer), signer=issuer_signer(s.idp))
    for _ in range(2):  # after the start-up fetch, and once more on demand
        response = s.post(rpc("ping"), token=token)
        assert_invalid_token(s, response.status_code, response.headers["www-authenticate"])
        s.clock.advance(2)
    assert internal.accepted == 0


async def test_dm06_connection_that_lands_on_an_internal_address_is_dropped_before_sending() -> None:
    """DNS rebinding: the name passed the check, but the connection reached a loopback address.
    The peer address of the open connection is checked again, before any byte is written."""
    from mcp_bastion.auth.fetch import _connection_guard
    from mcp_bastion.urls import Reach

    with connection_counter() as internal:
        stream = await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", internal.port)
        guard = _connection_guard(1.0, Reach(loopback=False, private=False))
        with pytest.raises(KeySourceError, match="non-public address"):
            await guard("connection.connect_tcp.complete", {"return_value": stream})
        assert stream.get_extra_info("socket").fileno() == -1  # closed by the guard
        # And the development-mode guard lets the same loopback connection through.
        stream = await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", internal.port)
        await _connection_guard(1.0, Reach(loopback=True, private=False))(
            "connection.connect_tcp.complete", {"return_value": stream}
        )
        await stream.aclose()


async def test_dm06_fetch_refuses_before_connecting() -> None:
    import httpx

    with connection_counter() as internal:
        async with httpx.AsyncClient(trust_env=False) as http:
            for url in (f"https://localhost:{internal.port}/jwks", f"http://127.0.0.1:{internal.port}/jwks"):
                with pytest.raises(KeySourceError):
                    await fetch_json(http, url, timeout=1, allow_insecure_http=False)
    assert internal.accepted == 0


@pytest.mark.parametrize(
    "jwks_uri",
    [
        "http://127.0.0.1:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://idp.example/jwks",
        "ftp://idp.example/",
    ],
)
def test_dm06_configured_non_https_jwks_uri_is_a_config_error(jwks_uri: str) -> None:
    config = {
        "public_base_url": "https://gw.example",
        "servers": [{"name": "a", "upstream": "https://up.example/mcp"}],
        "identity_providers": [{"name": "i", "issuer": "https://idp.example", "jwks_uri": jwks_uri}],
    }
    with pytest.raises(ConfigError, match="jwks_uri"):
        parse_config(config)


# --- DM-07 ---------------------------------------------------------------------------------


def test_dm07_protected_resource_metadata_and_challenges() -> None:
    second = "https://idp2.example"
    providers = lambda issuer: [  # noqa: E731
        idp_entry(issuer),
        {"name": "second", "issuer": second, "discovery": False, "jwks_uri": "https://idp2.example/jwks"},
    ]
    extra = [{"name": "open", "upstream": "http://127.0.0.1:1/mcp"}]
    with stack(
        server={"identity_providers": ["test"]}, extra_servers=extra, identity_providers=providers
    ) as s:
        base = s.gateway.base_url
        for name, servers in (("rec", [s.idp.issuer]), ("open", [s.idp.issuer, second])):
            response = s.http.get(f"{base}/.well-known/oauth-protected-resource/{name}/mcp")
            assert response.status_code == 200
            doc = response.json()
            assert doc["resource"] == f"{base}/{name}/mcp"  # byte-identical to the URL clients use
            assert doc["authorization_servers"] == servers
            assert doc["bearer_methods_supported"] == ["header"]
        assert s.http.get(f"{base}/.well-known/oauth-protected-resource").status_code == 404
        assert s.http.get(f"{base}/.well-known/oauth-protected-resource/nope/mcp").status_code == 404

        expired = s.token(ttl=-3600)
        elsewhere = s.idp.token(f"{base}/open/mcp")
        other_issuer = forge(es256_header(s.idp), standard_claims(s, iss=second), signer=issuer_signer(s.idp))
        for headers in (
            {},
            {"authorization": "Bearer x.y.z"},
            {"authorization": f"Bearer {expired}"},
            {"authorization": f"Bearer {elsewhere}"},
            {"authorization": f"Bearer {other_issuer}"},  # trusted by the gateway, not for this server
            {"authorization": "Basic dXNlcjpwdw=="},
        ):
            response = s.post(rpc("ping"), headers=headers)
            assert response.status_code == 401
            assert f'resource_metadata="{s.prm_url}"' in response.headers["www-authenticate"]
        assert s.upstream.seen == []


# --- DM-09 ---------------------------------------------------------------------------------


def test_dm09_insufficient_scope_names_only_what_the_call_needs() -> None:
    server = {"tools": {"drop_thing": {"scopes": ["things.drop"]}}, "scopes": ["things.drop", "things.audit"]}
    with stack(server=server) as s:
        catalog = s.http.get(s.prm_url).json()["scopes_supported"]
        assert {"tools.read", "tools.write", "admin", "things.drop", "things.audit"} <= set(catalog)
        mark = s.mark()
        for tool, needed in (("drop_thing", "things.drop"), ("write_thing", "tools.write")):
            response = s.post(call(tool), token=s.token("tools.read"))
            assert response.status_code == 403
            www = response.headers["www-authenticate"]
            assert 'error="insufficient_scope"' in www
            assert f'scope="{needed}"' in www
            assert f'resource_metadata="{s.prm_url}"' in www
            assert response.json()["scope"] == needed
        batch = [call("write_thing", 1), call("read_thing", 2), call("drop_thing", 3)]
        response = s.post(batch, token=s.token("tools.read"))
        assert response.status_code == 403
        assert 'scope="tools.write things.drop"' in response.headers["www-authenticate"]
        assert s.tool_calls_since(mark) == []


# --- DM-11 ---------------------------------------------------------------------------------


def test_dm11_metadata_endpoints_on_other_hosts_are_never_contacted() -> None:
    """No token exchange exists yet; the gateway uses no endpoint from IdP metadata but jwks_uri.
    A mix-up attacker naming a token endpoint (or any other) gets no request."""
    with connection_counter() as elsewhere:

        def mixup(idp: ControlledIdp) -> None:
            other = f"http://127.0.0.1:{elsewhere.port}"
            idp.metadata = {
                "issuer": idp.issuer,
                "jwks_uri": f"{idp.issuer}/jwks",
                **{
                    name: f"{other}/{name}"
                    for name in (
                        "token_endpoint",
                        "authorization_endpoint",
                        "registration_endpoint",
                        "introspection_endpoint",
                        "revocation_endpoint",
                        "userinfo_endpoint",
                        "pushed_authorization_request_endpoint",
                    )
                },
            }

        with stack(before_start=mixup) as s:
            assert s.post(rpc("tools/list"), token=s.token()).status_code == 200
            assert s.post(call("read_thing"), token=s.token()).status_code == 200
            assert s.post(call("write_thing"), token=s.token()).status_code == 403
            assert s.post(rpc("ping"), token=s.token(ttl=-3600)).status_code == 401
            assert s.idp.jwks_requests >= 1
    assert elsewhere.accepted == 0


def test_dm04_keys_moved_to_a_new_jwks_uri_are_found_by_discovering_again() -> None:
    """A discovered `jwks_uri` is not cached forever: once a fetch from it fails, the next
    attempt reads the metadata again and follows the IdP to its new key location."""
    new_key = ec.generate_private_key(ec.SECP256R1())
    with stack() as s:
        assert s.post(rpc("ping"), token=s.token()).status_code == 200
        # The IdP moves its keys: /jwks is gone; the metadata names /keys-v2, holding a new key.
        s.idp.routes["/jwks"] = raw(404, b"")
        s.idp.routes["/keys-v2"] = json_body({"keys": [ec_jwk(new_key, "k2", alg="ES256", use="sig")]})
        s.idp.metadata = {"issuer": s.idp.issuer, "jwks_uri": f"{s.idp.issuer}/keys-v2"}
        new = forge(es256_header(s.idp, kid="k2"), standard_claims(s), signer=ec_signer(new_key))

        s.clock.advance(31)  # past the cooldown: the unknown kid triggers a refetch at the old URI
        assert s.post(call("read_thing"), token=new).status_code == 401
        assert s.idp.hits["/keys-v2"] == 0

        s.clock.advance(31)  # the next refetch discovers again
        assert s.post(call("read_thing"), token=new).status_code == 200
        assert s.idp.hits["/keys-v2"] == 1
