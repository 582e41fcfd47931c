"""The parse stage: body → JSON-RPC messages → calls; era rules; the sealed session opened.

Errors answered here carry the request's id whenever the body names one, even when the header
alone was enough to refuse it (JSON-RPC 2.0 §5: the id is the request's unless it cannot be read).
"""

from __future__ import annotations

from collections.abc import Callable

from ..config.model import LimitsConfig
from ..errors import ProtocolError, RequestRejected
from ..mcp.calls import call_of
from ..mcp.era import META_VERSION, Era, check_modern_headers, era_of
from ..mcp.jsonrpc import INVALID_PARAMS, Message, parse_body
from ..mcp.sessions import SessionSealer, subject_digest
from .exchange import Exchange

__all__ = ["ParseMcp"]


class ParseMcp:
    def __init__(self, limits: LimitsConfig, sealer: SessionSealer, clock: Callable[[], float]) -> None:
        self._depth = limits.max_json_depth
        self._batch = limits.max_batch_size
        self._sealer = sealer
        self._clock = clock

    async def __call__(self, ex: Exchange) -> None:
        headers = ex.headers
        try:
            era = ex.era = era_of(headers.get("mcp-protocol-version"))
        except ProtocolError as err:
            err.request_id = self._request_id(ex)
            raise
        if ex.http_method != "POST":
            if era.name == "modern":
                # 2026-07-28 has no GET stream and no sessions to DELETE (transports §Backward Compatibility).
                raise RequestRejected(f"{ex.http_method} is not part of protocol {era.version}", status=405)
            self._open_session(ex, required=ex.http_method == "DELETE")
            return
        parsed = parse_body(
            ex.body, max_depth=self._depth, max_batch=self._batch, allow_batch=era.allows_batch
        )
        method_header, name_header = headers.get("mcp-method"), headers.get("mcp-name")
        for message in parsed.messages:
            _check_envelope(era, message)
            check_modern_headers(era, message, method_header, name_header)
        messages = ex.messages = parsed.messages
        ex.calls = (call_of(messages[0]),) if len(messages) == 1 else tuple(map(call_of, messages))
        if era.name == "legacy":
            self._open_session(ex, required=False)
        # Modern era: an Mcp-Session-Id header is ignored, never forwarded.

    def _request_id(self, ex: Exchange) -> str | int | None:
        """The id of a POST's single request, for an error raised before the body was parsed."""
        if ex.http_method != "POST":
            return None
        try:
            parsed = parse_body(ex.body, max_depth=self._depth, max_batch=1, allow_batch=False)
        except ProtocolError:
            return None  # not one well-formed message: the error goes out without an id
        return parsed.messages[0].id

    def _open_session(self, ex: Exchange, *, required: bool) -> None:
        sealed = ex.headers.get("mcp-session-id")
        if sealed is None:
            if required:
                raise RequestRejected("Mcp-Session-Id header is required", status=400)
            return
        assert ex.principal is not None
        subject = subject_digest(ex.principal.issuer, ex.principal.subject)
        ex.upstream_session = self._sealer.unseal(sealed, subject, ex.route.name, self._clock()).upstream_id


def _check_envelope(era: Era, message: Message) -> None:
    """2026-07-28: a message without ``_meta`` naming its protocol version is invalid (-32602).

    It is refused here rather than forwarded: a dual-era upstream may serve an un-enveloped
    request with session-era semantics, which this gateway authorized under the other era's
    rules. A version that is present but differs from the header is check_modern_headers'
    -32020; an absent one is no mismatch but a missing required field (basic §_meta).
    """
    if era.name != "modern" or message.kind == "response":
        return
    meta = (message.params or {}).get("_meta")
    if not isinstance(meta, dict) or META_VERSION not in meta:
        raise ProtocolError(
            f"Invalid params: _meta must carry {META_VERSION} in protocol {era.version}",
            code=INVALID_PARAMS,
            request_id=message.id,
        )
