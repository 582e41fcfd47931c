"""µs per call of the identity steps (docs/identity.md), cached and uncached.

- token exchange (`upstream_auth: {type: exchange}`): `ExchangedCredential.header()` when the
  caller's exchanged token is cached, and when it must be fetched (a POST to a token endpoint);
- introspection (`identity_providers[].introspection`): `remembered()` and `verify()` of an
  opaque token whose verdict is cached, and `verify()` when it must be asked (a POST to an
  introspection endpoint).

The uncached figures are the gateway's side (form, client authentication, the HTTP round trip
on loopback, parsing and checks) against a minimal endpoint served by uvicorn in this process
(a thread of its own, on the same two cores); `--oidc-provider` measures them against panva's
oidc-provider instead (tests/e2e/oidc_provider, needs the Node tool chain), which adds the IdP's
own work (JWT signing, its policy).

    python -m bench.identity [N] [--oidc-provider]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from mcp_bastion.auth.idp_client import IdpClient
from mcp_bastion.auth.introspection import Introspecting, IntrospectionVerifier
from mcp_bastion.auth.presets import PresetProfile
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config.identity import ExchangeConfig, IdpClientConfig, IntrospectionConfig
from mcp_bastion.config.model import IdentityProviderConfig, SecretRef
from mcp_bastion.credentials.exchange import ExchangedCredential, carrying_token

RESOURCE = "https://gw.example/files/mcp"
UPSTREAM = "https://files.upstream.example/mcp"
# A real-sized issued token: an ES256 JWT of ~600 bytes.
ISSUED = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9." + "e" * 400 + "." + "s" * 86


def _stub_answer(path: str, issuer: str) -> bytes:
    if path == "/token":
        return orjson.dumps(
            {
                "access_token": ISSUED,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "tools.read",
            }
        )
    return orjson.dumps(
        {
            "active": True,
            "iss": issuer,
            "sub": "alice",
            "client_id": "app",
            "scope": "tools.read",
            "aud": RESOURCE,
            "exp": int(time.time()) + 3600,
        }
    )


@contextlib.contextmanager
def _stub_idp() -> Iterator[str]:
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = _stub_answer(scope["path"], issuer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield issuer
    finally:
        server.should_exit = True
        thread.join(10)


async def _per_call(step: Any, number: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(number):
            await step(i)
        best = min(best, (time.perf_counter() - started) / number)
    return round(best * 1e6, 2)


async def measure(
    issuer: str, caller_token: str, client: tuple[str, str], opaque: tuple[str, str], number: int
) -> dict[str, float]:
    """`opaque`: an opaque token of this IdP and the resource it was issued for."""
    provider = IdentityProviderConfig(name="idp", issuer=issuer, allow_insecure_http=True)
    config = IdpClientConfig(
        client_id=client[0],
        secret=SecretRef(env="X"),
        token_endpoint=f"{issuer}/token",
        introspection_endpoint=f"{issuer}/token/introspection",
    )
    async with httpx.AsyncClient() as http:
        idp = IdpClient(provider, config, http, secret=client[1], private_key=None, clock=time.time)
        principal = carrying_token(
            Principal("alice", issuer, "app", frozenset({"tools.read"}), "h", time.time() + 3600),
            caller_token,
        )
        exchange = ExchangedCredential(
            "exchange",
            idp,
            ExchangeConfig(identity_provider="idp", resource=UPSTREAM),
            UPSTREAM,
            clock=time.time,
        )
        await exchange.header(principal, ("tools.read",))
        cached = await _per_call(lambda i: exchange.header(principal, ("tools.read",)), number * 100)

        async def fresh(i: int) -> None:
            # Another subject each time: a cache miss, so a POST to the token endpoint.
            who = carrying_token(
                Principal(
                    f"user-{i}-{time.perf_counter_ns()}", issuer, "app", frozenset(), "h", time.time() + 3600
                ),
                caller_token,
            )
            await exchange.header(who, ("tools.read",))

        uncached = await _per_call(fresh, number)
        figures = {"exchange_cached_us": cached, "exchange_uncached_us": uncached}
        figures.update(await _introspection(idp, *opaque, number))
        return figures


async def _introspection(idp: IdpClient, token: str, resource: str, number: int) -> dict[str, float]:
    issuers = frozenset({idp.provider.issuer})
    # oidc-provider's client-credentials tokens name no user: a machine client, accepted here.
    provider = idp.provider.model_copy(update={"machine_clients": ("bench",)})
    profile = PresetProfile(provider, {"bench": resource})
    cached = IntrospectionVerifier(
        {idp.provider.issuer: Introspecting(idp, IntrospectionConfig(cache_seconds=300), profile)},
        clock=time.time,
        max_token_bytes=8192,
    )
    await cached.verify(token, resource, issuers)
    remembered = await _per_call(
        lambda i: _sync(cached.remembered(f"Bearer {token}", resource, issuers)), number * 100
    )
    verified = await _per_call(lambda i: cached.verify(token, resource, issuers), number * 100)
    asking = IntrospectionVerifier(
        {idp.provider.issuer: Introspecting(idp, IntrospectionConfig(cache_seconds=0), profile)},
        clock=time.time,
        max_token_bytes=8192,
    )
    uncached = await _per_call(lambda i: asking.verify(token, resource, issuers), number)
    return {
        "introspection_remembered_us": remembered,
        "introspection_cached_verify_us": verified,
        "introspection_uncached_us": uncached,
    }


async def _sync(value: object) -> object:
    return value


def against_stub(number: int) -> dict[str, float]:
    with _stub_idp() as issuer:
        opaque = ("opaque-bench-token", RESOURCE)
        return asyncio.run(measure(issuer, "caller.token.x", ("gateway", "secret"), opaque, number))


def against_oidc_provider(number: int) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.e2e.oidc_provider.fixture import StaticClient, start_oidc_provider

    extension = str(Path(__file__).resolve().parents[1] / "tests/e2e/oidc_provider/exchange.mjs")
    grants = ("client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange")
    clients = [
        StaticClient("gateway", "gateway-secret", grant_types=grants),
        StaticClient("caller", "caller-secret"),
    ]
    resources = {
        RESOURCE: ("tools.read",),
        UPSTREAM: ("tools.read",),
        "https://opaque.example/mcp": ("tools.read",),
    }
    extra = {"extension": extension, "opaque_resources": ["https://opaque.example/mcp"]}
    with start_oidc_provider(resources, clients=clients, extra_config=extra) as idp:

        def token(resource: str) -> str:
            answer = httpx.post(
                idp.token_endpoint,
                data={"grant_type": "client_credentials", "resource": resource, "scope": "tools.read"},
                auth=("caller", "caller-secret"),
            )
            return str(answer.json()["access_token"])

        # oidc-provider's opaque token names the resource it was issued for as `aud`.
        opaque = (token("https://opaque.example/mcp"), "https://opaque.example/mcp")
        return asyncio.run(
            measure(idp.issuer, token(RESOURCE), ("gateway", "gateway-secret"), opaque, number)
        )


def main() -> None:
    from mcp_bastion.native import build_description

    number = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200
    use_oidc = "--oidc-provider" in sys.argv
    figures: dict[str, object] = dict(against_oidc_provider(number) if use_oidc else against_stub(number))
    figures["idp"] = "oidc-provider" if use_oidc else "loopback stub"
    figures["build"] = build_description()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
