"""Properties of what the gateway fetches from IdPs: JWKS documents and discovery metadata.

Whatever an IdP serves (any JSON, any bytes, any status), key import yields only usable public
signature keys or a KeySourceError; a bad refresh keeps the last good keys (DM-03); discovery
yields a checked `jwks_uri` or a KeySourceError; and a document over the cap is refused.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey, RSAKey

from mcp_bastion.auth.discovery import discover_jwks_uri
from mcp_bastion.auth.fetch import MAX_DOCUMENT_BYTES, check_fetch_url, fetch_json
from mcp_bastion.auth.keys import (
    MAX_KEYS,
    MIN_RSA_BITS,
    PublicKey,
    RemoteKeySet,
    compatible,
    import_public_keys,
)
from mcp_bastion.errors import InvalidToken, KeySourceError

from ..auth.tokens import Clock, Loader, key_set, standard_jwks
from .strategies import budget, hostile_text, json_ish_bytes, json_values, outcome

GOOD_KEYS: list[dict[str, Any]] = standard_jwks()["keys"]
JWK_MEMBERS = ["kty", "kid", "use", "alg", "crv", "n", "e", "x", "y", "d", "key_ops", "k"]
JWK_VALUES = [
    "RSA",
    "EC",
    "OKP",
    "oct",
    "sig",
    "enc",
    "P-256",
    "P-384",
    "Ed25519",
    "X25519",
    "AQAB",
    "",
    "==",
]


@st.composite
def mutated_jwks(draw: st.DrawFn) -> dict[str, Any]:
    """Real public keys with members removed, swapped between keys, or replaced by junk."""
    keys = copy.deepcopy(draw(st.lists(st.sampled_from(GOOD_KEYS), max_size=4)))
    for key in keys:
        for _ in range(draw(st.integers(0, 3))):
            member = draw(st.sampled_from(JWK_MEMBERS))
            if draw(st.booleans()):
                key.pop(member, None)
            else:
                donor = draw(st.sampled_from(GOOD_KEYS))
                key[member] = draw(
                    st.one_of(
                        st.just(donor.get(member)),
                        st.sampled_from(JWK_VALUES),
                        json_values(3),
                    )
                )
    junk = draw(st.lists(json_values(4), max_size=2))
    return {"keys": [*keys, *junk]}


documents = st.one_of(
    json_values(8),
    st.dictionaries(st.sampled_from(["keys", "x"]), json_values(6), max_size=2),
    mutated_jwks(),
)


def _usable(key: Any) -> bool:
    members = key.as_dict()
    if "d" in members or not isinstance(key, (RSAKey, ECKey, OKPKey)):
        return False  # never a private or a symmetric key
    return not isinstance(key, RSAKey) or _bits(members["n"]) >= MIN_RSA_BITS


def _bits(n: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()


@given(document=documents)
@budget(400, deadline_ms=2000)
def test_import_yields_usable_public_keys_or_a_key_source_error(document: Any) -> None:
    result = outcome(KeySourceError, import_public_keys, document)
    if isinstance(result, KeySourceError):
        return
    by_kid, anonymous = result
    assert by_kid or anonymous
    assert len(by_kid) + len(anonymous) <= MAX_KEYS
    for key in [*by_kid.values(), *anonymous]:
        assert _usable(key)
        assert key.get("use", "sig") == "sig"
    raw_kids = [k.get("kid") for k in document["keys"] if isinstance(k, dict)]
    assert all(kid in raw_kids for kid in by_kid)


@given(count=st.integers(MAX_KEYS + 1, 3 * MAX_KEYS))
@budget(10, deadline_ms=5000)
def test_only_the_first_keys_of_a_huge_set_are_looked_at(count: int) -> None:
    keys = [dict(GOOD_KEYS[1], kid=f"k{i}") for i in range(count)]
    by_kid, _ = import_public_keys({"keys": keys})
    assert set(by_kid) == {f"k{i}" for i in range(MAX_KEYS)}


@given(refreshes=st.lists(documents, min_size=1, max_size=4))
@budget(100, deadline_ms=3000)
def test_a_bad_refresh_keeps_the_last_good_keys(refreshes: list[Any]) -> None:
    # DM-03: whatever a refresh brings (null, {}, junk keys...), the key set afterwards is the
    # new document's keys if it has usable ones, and otherwise still the last good set.
    loader, clock = Loader(), Clock()
    keys = key_set(loader, clock, ttl=10, cooldown=0)

    async def run() -> None:
        expected = import_public_keys(loader.document)[0]
        for document in [loader.document, *refreshes]:
            loader.document = document
            clock.now += 11  # past the TTL: this lookup starts a refresh (behind, once keys exist)
            await _lookup(keys, "ec-1", "ES256")
            await keys.settled()
            imported = outcome(KeySourceError, import_public_keys, document)
            if not isinstance(imported, KeySourceError):
                expected = imported[0]
            for kid, alg in (("ec-1", "ES256"), ("rsa-1", "RS256")):
                found = await _lookup(keys, kid, alg)
                known = expected.get(kid)
                if known is not None and compatible(known, alg):
                    assert not isinstance(found, InvalidToken)
                    assert found.as_dict() == known.as_dict()
                else:
                    assert isinstance(found, InvalidToken)

    asyncio.run(run())


async def _lookup(keys: RemoteKeySet, kid: str, alg: str) -> PublicKey | InvalidToken:
    try:
        return await keys.key_for(kid, alg)
    except InvalidToken as err:
        return err


# --- discovery and fetching over HTTP (httpx's in-process transport) ----------------------------

ISSUER = "https://idp.example"


def _splittable(url: str) -> bool:
    """Leaves out URLs urlsplit itself refuses ("https://[::1"): a known bug, tested on its own
    in test_discovery_refuses_a_jwks_uri_urlsplit_cannot_parse below."""
    try:
        urlsplit(url)
    except ValueError:
        return False
    return True


statuses = st.sampled_from([200, 200, 200, 204, 301, 302, 404, 500])
jwks_uris = st.one_of(
    st.sampled_from(
        [
            "https://idp.example/jwks",
            "http://idp.example/jwks",
            "http://127.0.0.1/jwks",
            "file:///etc/passwd",
            "https://a$(calc)/",
            "https://user:pw@idp.example/jwks",
            "//idp.example/jwks",
            "https:///jwks",
            "javascript:alert(1)",
        ]
    ),
    st.builds(
        lambda scheme, host, rest: f"{scheme}://{host}{rest}",
        st.sampled_from(["https", "http", "HTTPS", "file", ""]),
        st.one_of(
            st.sampled_from(["idp.example", "127.0.0.1", "[::1]", "169.254.169.254", "0x7f000001", ""]),
            hostile_text,
        ),
        st.sampled_from(["/jwks", "", ":443/jwks", ":99999/", "/../x", "?a=b#c"]),
    ).filter(_splittable),
    hostile_text.filter(_splittable),
    json_values(2),
)


@st.composite
def metadata_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["metadata", "json", "bytes"]))
    if kind == "metadata":
        doc = {"issuer": draw(st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example", None]))}
        if draw(st.integers(0, 4)):
            doc["jwks_uri"] = draw(jwks_uris)
        return orjson.dumps(doc)
    if kind == "json":
        return orjson.dumps(draw(json_values(6)))
    return draw(st.one_of(st.binary(max_size=200), json_ish_bytes))


def _serving(responses: list[tuple[int, bytes]]) -> httpx.AsyncClient:
    answers = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = next(answers, (404, b""))
        return httpx.Response(status, content=body, headers={"location": "http://169.254.169.254/"})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@given(responses=st.lists(st.tuples(statuses, metadata_bodies()), min_size=1, max_size=3))
@budget(400)
def test_discovery_yields_a_checked_jwks_uri_or_a_key_source_error(
    responses: list[tuple[int, bytes]],
) -> None:
    async def run() -> str | KeySourceError:
        async with _serving(responses) as http:
            return await _discover(http)

    result = asyncio.run(run())
    if isinstance(result, KeySourceError):
        return
    # Only from a 200 whose issuer matches byte for byte (DM-05), and only an https URL.
    assert any(
        status == 200 and orjson.loads(body).get("issuer") == ISSUER
        for status, body in responses
        if _is_object(body)
    )
    check_fetch_url(result, allow_insecure_http=False)
    assert urlsplit(result).scheme == "https"


def _is_object(body: bytes) -> bool:
    try:
        return isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return False


async def _discover(http: httpx.AsyncClient) -> str | KeySourceError:
    try:
        return await discover_jwks_uri(http, ISSUER, timeout=5, allow_insecure_http=False)
    except KeySourceError as err:
        return err


@given(status=statuses, body=st.one_of(json_ish_bytes, st.binary(max_size=100), st.just(b"null")))
@budget(200)
def test_fetch_json_returns_the_document_of_a_200_or_a_key_source_error(status: int, body: bytes) -> None:
    async def run() -> Any:
        async with _serving([(status, body)]) as http:
            try:
                return await fetch_json(
                    http, "https://idp.example/jwks", timeout=5, allow_insecure_http=False
                )
            except KeySourceError as err:
                return err

    result = asyncio.run(run())
    if isinstance(result, KeySourceError):
        return
    assert status == 200
    assert result == orjson.loads(body)


@given(extra=st.integers(1, 3 * MAX_DOCUMENT_BYTES))
@budget(5, deadline_ms=5000)
def test_a_document_over_the_cap_is_refused(extra: int) -> None:
    body = b'{"keys":[' + b" " * (MAX_DOCUMENT_BYTES + extra) + b"]}"

    async def run() -> Any:
        async with _serving([(200, body)]) as http:
            try:
                return await fetch_json(
                    http, "https://idp.example/jwks", timeout=5, allow_insecure_http=False
                )
            except KeySourceError as err:
                return err

    result = asyncio.run(run())
    assert isinstance(result, KeySourceError)
    assert "over" in result.message


@pytest.mark.parametrize("jwks_uri", ["https://[::1", "https://[idp.example/jwks", "http://]/"])
def test_discovery_refuses_a_jwks_uri_urlsplit_cannot_parse(jwks_uri: str) -> None:
    body = orjson.dumps({"issuer": ISSUER, "jwks_uri": jwks_uri})

    async def run() -> str | KeySourceError:
        async with _serving([(200, body)]) as http:
            return await _discover(http)

    assert isinstance(asyncio.run(run()), KeySourceError)
