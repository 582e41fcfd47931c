"""Properties of the request-header readers: `read_headers`, W3C `traceparent`, the edge checks.

Header names and values arrive as raw bytes (ASGI); whatever they are, the gateway keeps only the
headers it knows, refuses duplicates of them (400) and oversized sets (431), and a traceparent is
either taken as it is or replaced by a fresh trace, never echoed when malformed.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.errors import RequestRejected
from mcp_bastion.pipeline.edge import EdgeChecks
from mcp_bastion.pipeline.exchange import Exchange, RequestHeaders, read_headers
from mcp_bastion.trace import TraceContext

from .strategies import budget, latin1_text, outcome

MAX_HEADER_BYTES = 16_384  # limits.max_header_bytes default
KNOWN = [
    "host",
    "origin",
    "authorization",
    "content-type",
    "content-length",
    "accept",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "mcp-session-id",
    "last-event-id",
    "traceparent",
    "tracestate",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-for",
]

names = st.one_of(
    st.sampled_from(KNOWN).map(str.encode),
    st.sampled_from(["mcp-param-region", "mcp-param-", "cookie", "Authorization", "x-y"]).map(str.encode),
    st.binary(max_size=20),
)
values = st.one_of(st.binary(max_size=60), latin1_text.map(lambda t: t.encode("latin-1")))
raw_headers = st.lists(st.tuples(names, values), max_size=20)


@given(raw=raw_headers, max_bytes=st.sampled_from([64, 256, MAX_HEADER_BYTES]))
@budget(500)
def test_read_headers_keeps_known_headers_or_refuses_the_set(
    raw: list[tuple[bytes, bytes]], max_bytes: int
) -> None:
    result = outcome(RequestRejected, read_headers, raw, max_bytes)
    size = sum(len(n) + len(v) + 4 for n, v in raw)
    known = [n.decode("latin-1") for n, _ in raw if n.decode("latin-1") in KNOWN]
    if isinstance(result, RequestRejected):
        duplicated = len(set(known)) != len(known)
        assert (result.status == 400 and duplicated) or (result.status == 431 and size > max_bytes)
        return
    assert isinstance(result, RequestHeaders)
    assert size <= max_bytes  # an oversized set is never accepted
    assert result.size == size
    assert len(set(known)) == len(known)
    for name_b, value_b in raw:
        name = name_b.decode("latin-1")
        if name in KNOWN:
            # RFC 9110 §5.5: only surrounding spaces and tabs are dropped; the rest is kept as is.
            assert result.get(name) == value_b.decode("latin-1").strip(" \t")
    assert {result.get(n) for n in ("cookie", "Authorization", "x-y")} == {None}
    assert result.params == [(n, v) for n, v in raw if n.startswith(b"mcp-param-")]


@given(count=st.integers(1, 40), value=st.binary(min_size=500, max_size=600))
@budget(60)
def test_a_header_set_over_the_cap_is_refused_with_431(count: int, value: bytes) -> None:
    raw = [(b"x-filler-%d" % i, value) for i in range(count)]
    result = outcome(RequestRejected, read_headers, raw, 1024)
    assert isinstance(result, RequestRejected) == (sum(len(n) + len(v) + 4 for n, v in raw) > 1024)
    if isinstance(result, RequestRejected):
        assert result.status == 431


# --- traceparent ----------------------------------------------------------------------------------

HEX = "0123456789abcdef"
_ISSUED = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z")
traceparents = st.builds(
    lambda version, trace, span, flags: f"{version}-{trace}-{span}-{flags}",
    st.sampled_from(["00", "01", "ff", "0"]),
    st.text(alphabet=HEX + "A", min_size=31, max_size=33),
    st.text(alphabet=HEX + "G", min_size=15, max_size=17),
    st.text(alphabet=HEX, min_size=1, max_size=3),
)


@given(value=st.one_of(st.none(), latin1_text, st.text(max_size=80), traceparents))
@budget(500)
def test_traceparent_is_adopted_only_when_valid(value: str | None) -> None:
    context = TraceContext.from_header(value)
    header = context.header().decode("ascii")
    assert _ISSUED.match(header)
    assert context.trace_id != "0" * 32
    assert context.span_id != "0" * 16
    valid = (
        value is not None
        and re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", value.strip())
        and value.strip()[3:35] != "0" * 32
        and value.strip()[36:52] != "0" * 16
    )
    if valid:
        assert value is not None
        # Adopted: the client's trace id and flags go on; the span is always the gateway's own.
        assert (context.trace_id, context.flags) == (value.strip()[3:35], value.strip()[53:55])
    else:
        assert context.flags == "01"
        assert value is None or context.trace_id not in value


@given(
    trace=st.text(alphabet=HEX, min_size=32, max_size=32),
    span=st.text(alphabet=HEX, min_size=16, max_size=16),
)
@budget(200)
def test_a_valid_traceparent_round_trips(trace: str, span: str) -> None:
    context = TraceContext.from_header(f"00-{trace}-{span}-01")
    if trace == "0" * 32 or span == "0" * 16:
        assert context.trace_id != trace
    else:
        assert context.trace_id == trace
        assert TraceContext.from_header(context.header().decode()).trace_id == trace


# --- the edge checks on those headers ---------------------------------------------------------------

CONFIG = parse_config(
    {
        "public_base_url": "https://gw.example",
        "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
        "servers": [{"name": "demo", "upstream": "http://127.0.0.1:9001/mcp"}],
        "origins": {"allow": ["https://app.example"]},
        "trusted_proxies": ["10.0.0.0/8"],
    }
)
EDGE = EdgeChecks(CONFIG)
ROUTE = next(iter(build_gateway(LoadedConfig(CONFIG, {})).routes.values()))
EDGE_STATUSES = {400, 403, 405, 406, 413, 415, 421, 431}


def _exchange(method: str, headers: dict[str, str], client: str) -> Exchange:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    scope = {"type": "http", "method": method, "client": (client, 1234), "headers": raw}
    return Exchange(scope, None, None, ROUTE, read_headers(raw, 1 << 20), TraceContext.from_header(None))


edge_values = st.one_of(
    latin1_text,
    st.sampled_from(["", "application/json", "https://app.example", "gw.example", "0", "1048577", "-1"]),
)


@given(
    method=st.sampled_from(["POST", "GET", "DELETE", "PUT", "OPTIONS"]),
    headers=st.dictionaries(
        st.sampled_from(["host", "origin", "content-type", "accept", "content-length", "x-forwarded-host"]),
        edge_values,
    ),
    client=st.sampled_from(["127.0.0.1", "10.9.8.7", "not-an-ip"]),
)
@budget(500)
def test_edge_checks_pass_or_reject_any_header_values(
    method: str, headers: dict[str, str], client: str
) -> None:
    ex = _exchange(method, headers, client)
    refused = outcome(RequestRejected, asyncio.run, EDGE(ex))
    if isinstance(refused, RequestRejected):
        assert refused.status in EDGE_STATUSES
        return
    assert method in ("POST", "GET", "DELETE")
    assert ex.headers.get("origin") in (None, "https://app.example", "https://gw.example")


@pytest.mark.parametrize("length", ["\xb2", "1" * 5000])
def test_a_content_length_int_cannot_read_is_rejected_not_raised(length: str) -> None:
    headers = {
        "host": "gw.example",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    }
    refused = outcome(
        RequestRejected,
        asyncio.run,
        EDGE(_exchange("POST", dict(headers, **{"content-length": length}), "127.0.0.1")),
    )
    assert isinstance(refused, RequestRejected)
