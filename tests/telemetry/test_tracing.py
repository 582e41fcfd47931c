"""OpenTelemetry traces, exported by the real SDK exporter to a real OTLP/HTTP receiver on
loopback: the spans, their parents (traceparent header, `params._meta.traceparent`), what the
upstream receives, sampling, and what a span must never carry."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mcp_bastion.mcp.calls import MAX_NAME_CHARS
from mcp_bastion.telemetry.tracing import MAX_ATTRIBUTE_CHARS, parse_traceparent

from ..support.gateway import AuditFeed, post_mcp
from ..support.issuer import LocalIssuer, running_issuer
from ..support.observed import ObservedGateway, observed_gateway
from ..support.otlp import OtlpReceiver, ReceivedSpan, running_receiver
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import serve_asgi

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
META_TRACE = "0af7651916cd43dd8448eb211c80319c"
META_PARENT = "b7ad6b7169203331"
SERVER, CLIENT = 2, 3  # OTLP Span.SpanKind


@dataclass
class Traced:
    issuer: LocalIssuer
    upstream: RecordingUpstream
    gateway: ObservedGateway
    receiver: OtlpReceiver
    http: httpx.Client
    exchanges: int = 0

    def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        token: str | None = "",
    ) -> httpx.Response:
        if token == "":
            token = self.issuer.token(audience=self.gateway.url("rec"), scopes="tools.read")
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        answer = post_mcp(self.http, self.gateway.url("rec"), body, token=token, headers=headers)
        self.exchanges += 1
        return answer

    def exported(self) -> list[ReceivedSpan]:
        """Every span of the exchanges so far, once the SDK has exported them."""
        audit = self.gateway.audit
        assert isinstance(audit, AuditFeed)
        audit.wait_count(self.exchanges)  # each exchange's span ends just before its audit event
        tracing = self.gateway.telemetry.tracing
        assert tracing is not None
        assert tracing.provider.force_flush(10_000)
        return list(self.receiver.spans)


def _traced(traces: dict[str, Any]) -> Iterator[Traced]:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up, running_receiver() as (receiver, endpoint):
        telemetry = {"traces": {"enabled": True, "endpoint": endpoint, **traces}}
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp"}]
        with (
            observed_gateway(issuer.issuer, {}, telemetry=telemetry, servers=servers) as gw,
            httpx.Client(timeout=10) as http,
        ):
            yield Traced(issuer, upstream, gw, receiver, http)


@pytest.fixture
def traced() -> Iterator[Traced]:
    yield from _traced({})


def test_a_span_per_request_and_a_child_span_for_the_upstream_call(traced: Traced) -> None:
    headers = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
    assert traced.call("tools/call", {"name": "read_thing"}, headers=headers).status_code == 200
    spans = traced.exported()
    (request,) = [s for s in spans if s.kind == SERVER]
    (upstream,) = [s for s in spans if s.kind == CLIENT]
    assert (request.trace_id, request.parent_span_id) == (TRACE, PARENT)  # the caller's trace continues
    assert (upstream.trace_id, upstream.parent_span_id) == (TRACE, request.span_id)
    assert request.name == "tools/call"
    assert request.service == "mcp-bastion"
    assert request.attributes["mcp.method.name"] == "tools/call"
    assert request.attributes["gen_ai.tool.name"] == "read_thing"
    assert request.attributes["mcp_bastion.server"] == "rec"
    assert request.attributes["mcp_bastion.decision"] == "allow"
    assert request.attributes["http.response.status_code"] == 200
    assert upstream.attributes["http.response.status_code"] == 200
    # The upstream's own spans hang below our upstream span: its traceparent names it.
    (seen,) = traced.upstream.calls("tools/call")
    assert seen.headers["traceparent"] == f"00-{TRACE}-{upstream.span_id}-01"
    # The audit event carries the same trace id as the span.
    assert traced.gateway.audit.events[-1].trace_id == TRACE  # type: ignore[union-attr]
    assert traced.receiver.content_types == {"application/x-protobuf"}


def test_the_mcp_meta_traceparent_is_the_parent_when_valid(traced: Traced) -> None:
    # SEP-414: the MCP message's own context; the HTTP header may come from a proxy's span.
    params = {"name": "read_thing", "_meta": {"traceparent": f"00-{META_TRACE}-{META_PARENT}-01"}}
    traced.call("tools/call", params, headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    (request,) = [s for s in traced.exported() if s.kind == SERVER]
    assert (request.trace_id, request.parent_span_id) == (META_TRACE, META_PARENT)
    (seen,) = traced.upstream.calls("tools/call")
    (upstream,) = [s for s in traced.exported() if s.kind == CLIENT]
    ours = f"00-{META_TRACE}-{upstream.span_id}-01"
    assert seen.headers["traceparent"] == ours
    # SEP-414 propagation: the body's _meta names our upstream span too, every other byte kept.
    assert seen.json["params"]["_meta"]["traceparent"] == ours
    assert seen.json["params"]["name"] == "read_thing"


@pytest.mark.parametrize(
    "params_text",
    [
        # Escaped in the body: the parsed value is valid, the bytes are not that value.
        '{"name":"read_thing","_meta":{"traceparent":"\\u0030' + f'0-{META_TRACE}-{META_PARENT}-01"}}}}',
        # The same value twice (once as an argument): which copy would be the member's?
        '{"name":"read_thing","arguments":{"x":"'
        + f'00-{META_TRACE}-{META_PARENT}-01"}},"_meta":{{"traceparent":"00-{META_TRACE}-{META_PARENT}-01"}}}}',
    ],
)
def test_a_meta_traceparent_that_is_not_one_verbatim_copy_is_forwarded_unchanged(
    traced: Traced, params_text: str
) -> None:
    body = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + params_text + "}").encode()
    token = traced.issuer.token(audience=traced.gateway.url("rec"), scopes="tools.read")
    assert post_mcp(traced.http, traced.gateway.url("rec"), body, token=token).status_code == 200
    traced.exchanges += 1
    (request,) = [s for s in traced.exported() if s.kind == SERVER]
    assert request.trace_id == META_TRACE  # the parsed value is still the parent
    (seen,) = traced.upstream.calls("tools/call")
    assert seen.body == body  # but the body goes byte for byte


HOSTILE = [
    f"00-{TRACE.upper()}-{PARENT}-01",  # upper-case hex
    f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
    f"01-{TRACE}-{PARENT}-01-{'a' * 40}",  # a future version, and too long for us
    f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent
    f"00-{TRACE}-{PARENT}-01 , 00-{META_TRACE}-{META_PARENT}-01",  # two values folded into one
    f"00-{TRACE}-{PARENT}-01" + "x" * 5000,  # oversized
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_traceparent_starts_a_new_trace(traced: Traced, value: str) -> None:
    traced.call(
        "tools/call", {"name": "read_thing", "_meta": {"traceparent": value}}, headers={"traceparent": value}
    )
    (request,) = [s for s in traced.exported() if s.kind == SERVER]
    assert request.trace_id not in (TRACE, META_TRACE, "0" * 32)
    assert request.parent_span_id == ""  # a root span: nothing of the value was used
    sent = traced.upstream.calls("tools/call")[0].headers["traceparent"]
    assert sent.startswith(f"00-{request.trace_id}-")


def test_a_traceparent_in_meta_that_is_not_a_string_is_ignored(traced: Traced) -> None:
    meta = {"traceparent": {"nested": f"00-{META_TRACE}-{META_PARENT}-01"}}
    traced.call(
        "tools/call",
        {"name": "read_thing", "_meta": meta},
        headers={"traceparent": f"00-{TRACE}-{PARENT}-01"},
    )
    (request,) = [s for s in traced.exported() if s.kind == SERVER]
    assert request.trace_id == TRACE  # the header, the next valid source


def test_no_token_claim_or_argument_reaches_a_span(traced: Traced) -> None:
    token = traced.issuer.token(
        audience=traced.gateway.url("rec"), scopes="tools.read", subject="alice-secret-sub"
    )
    traced.call("tools/call", {"name": "read_thing", "arguments": {"password": "hunter2"}}, token=token)
    traced.call("tools/list", {}, token=token + "x")  # refused: an invalid token
    traced.call("tools/list", {}, token=None)
    spans = traced.exported()
    assert len([s for s in spans if s.kind == SERVER]) == 3
    text = repr(spans)
    for secret in (token, token.split(".")[1], "alice-secret-sub", "hunter2", "Bearer", "test-client"):
        assert secret not in text


def test_a_tool_name_is_capped_before_it_reaches_the_exporter(traced: Traced) -> None:
    # Under the parser's own cap on names (mcp/calls.py), over the attribute cap.
    assert MAX_NAME_CHARS > MAX_ATTRIBUTE_CHARS
    traced.call("tools/call", {"name": "t" * MAX_NAME_CHARS})
    (request,) = [s for s in traced.exported() if s.kind == SERVER]
    assert request.attributes["gen_ai.tool.name"] == "t" * MAX_ATTRIBUTE_CHARS
    assert request.name == "tools/call"  # span names are the method label, never caller text


def test_the_callers_sampled_flag_is_not_obeyed_by_default() -> None:
    # ratio 0: a caller saying "sampled" must not force its requests into the exporter.
    for traced in _traced({"sample_ratio": 0.0}):
        traced.call("tools/call", {"name": "read_thing"}, headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
        assert traced.exported() == []
        assert traced.receiver.requests == 0
        sent = traced.upstream.calls("tools/call")[0].headers["traceparent"]
        assert sent.startswith(f"00-{TRACE}-")  # continued...
        assert sent.endswith("-00")  # ...marked not sampled


def test_follow_client_sampling_records_what_the_caller_sampled() -> None:
    for traced in _traced({"sample_ratio": 0.0, "follow_client_sampling": True}):
        traced.call("tools/call", {"name": "read_thing"}, headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
        traced.call(
            "tools/call", {"name": "read_thing"}, headers={"traceparent": f"00-{META_TRACE}-{PARENT}-00"}
        )
        spans = traced.exported()
        assert {s.trace_id for s in spans} == {TRACE}
        assert len(spans) == 2


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (f"00-{TRACE}-{PARENT}-01", (int(TRACE, 16), int(PARENT, 16), 1)),
        (f" 00-{TRACE}-{PARENT}-00\t", (int(TRACE, 16), int(PARENT, 16), 0)),
        (f"00-{TRACE}-{PARENT}-01\r\nx: y", None),
        (f"00-{TRACE}-{PARENT}-01\n", None),
        (None, None),
        (12, None),
        ([f"00-{TRACE}-{PARENT}-01"], None),
        *((value, None) for value in HOSTILE),
    ],
)
def test_parse_traceparent(value: Any, parsed: tuple[int, int, int] | None) -> None:
    assert parse_traceparent(value) == parsed


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("follow", [False, True])
def test_the_unsampled_shortcut_decides_as_the_sdk_sampler_would(ratio: float, follow: bool) -> None:
    # Exchanges the sampler would drop skip the SDK (tracing._unsampled); its decision must be
    # the SDK's own, or traces would be lost or kept against the configured ratio.
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from mcp_bastion.config.telemetry import TracesConfig
    from mcp_bastion.telemetry.tracing import Tracing

    tracing = Tracing(TracesConfig(enabled=True, sample_ratio=ratio, follow_client_sampling=follow))
    sdk = ParentBased(TraceIdRatioBased(ratio)) if follow else TraceIdRatioBased(ratio)
    generator = random.Random(f"{ratio}-{follow}")
    try:
        for _ in range(400):
            trace_id, flags = generator.getrandbits(128) or 1, generator.getrandbits(1)
            parent = SpanContext(trace_id, 1, is_remote=True, trace_flags=TraceFlags(flags if follow else 0))
            context = set_span_in_context(NonRecordingSpan(parent))
            expected = sdk.should_sample(context, trace_id, "mcp").decision.is_sampled()
            assert (tracing._unsampled(parent) is None) == expected
        root = tracing._unsampled(None)
        assert (root is None) == (ratio > 0)  # a root at a ratio is the SDK's to decide
    finally:
        tracing.shutdown()
