"""The parse stage: body → JSON-RPC messages → calls; era rules; the sealed session opened."""

from __future__ import annotations

from collections.abc import Callable

from ..config.model import LimitsConfig
from ..errors import RequestRejected
from ..exchange import Exchange
from .calls import call_of
from .era import check_modern_headers, era_of
from .jsonrpc import parse_body
from .sessions import SessionSealer, subject_digest

__all__ = ["ParseMcp"]


class ParseMcp:
    def __init__(self, limits: LimitsConfig, sealer: SessionSealer, clock: Callable[[], float]) -> None:
        self._depth = limits.max_json_depth
        self._batch = limits.max_batch_size
        self._sealer = sealer
        self._clock = clock

    async def __call__(self, ex: Exchange) -> None:
        headers = ex.headers
        era = ex.era = era_of(headers.get("mcp-protocol-version"))
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
            check_modern_headers(era, message, method_header, name_header)
        ex.messages = parsed.messages
        ex.calls = tuple(call_of(m) for m in parsed.messages)
        if era.name == "legacy":
            self._open_session(ex, required=False)
        # Modern era: an Mcp-Session-Id header is ignored, never forwarded.

    def _open_session(self, ex: Exchange, *, required: bool) -> None:
        sealed = ex.headers.get("mcp-session-id")
        if sealed is None:
            if required:
                raise RequestRejected("Mcp-Session-Id header is required", status=400)
            return
        assert ex.principal is not None
        subject = subject_digest(ex.principal.issuer, ex.principal.subject)
        ex.upstream_session = self._sealer.unseal(sealed, subject, ex.route.name, self._clock()).upstream_id
