"""What the gateway accepts from an upstream, message by message (UP-03, UP-04).

A JSON-RPC response must answer a request of *this* HTTP exchange, once: a response with an
unknown or repeated id is dropped (and logged), never relayed to a client it does not
belong to. A JSON body that is not JSON-RPC is replaced by the gateway's own error, so an
upstream's stack trace or internal host names never reach the client. The `tools/list`
result is where the list filter applies, and a response a `ResultScreen` claims (a
`tools/call` result the safety filters read) is handed to it: awaited, so a JSON answer is
screened after `check_json` (`screen_json`) and an SSE event is held until `release`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

import orjson

from ..errors import UpstreamError
from ..mcp.sse import DROP, HOLD, Rewrite

__all__ = ["ListFilter", "ResponseGuard", "ResultRewrite", "ResultScreen"]

log = logging.getLogger("mcp_bastion.upstream")
ListFilter = Callable[[dict[str, Any]], None]  # edits a tools/list result in place
# Edits another result in place (a sealed requestState, say); True when it changed something.
ResultRewrite = Callable[[str | int, dict[str, Any]], bool]
_NO_ID: Final = object()


class ResultScreen(Protocol):
    """Screens the responses to some of this exchange's requests (`pipeline/screen.py`)."""

    def claims(self, request_id: str | int | None) -> bool: ...

    async def screen(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message to relay in place of `message` (a response it claimed)."""
        ...


class ResponseGuard:
    def __init__(
        self,
        request_ids: set[str | int] | None,
        list_request: str | int | None,
        list_filter: ListFilter,
        credential: bytes | None = None,
        rewrite_result: ResultRewrite | None = None,
        results: ResultScreen | None = None,
    ) -> None:
        # None: any id (a session-era GET stream, where a resumed stream replays responses to
        # earlier POSTs of the same session; the session itself is bound to the caller).
        self._outstanding = request_ids
        self._list_request = list_request
        self._list_filter = list_filter
        self._rewrite_result = rewrite_result
        # The secret the gateway sent with this request (minted token or static value): an
        # upstream that quotes it back (an error echoing its Authorization header) must not
        # hand it to the client (SL-02). It is credential material: base64url, dots, no quotes.
        self._credential = credential if credential and len(credential) >= 16 else None
        self._results = results
        self._held: dict[str, Any] | None = None

    @property
    def screening(self) -> bool:
        return self._results is not None

    def check_json(self, body: bytes) -> bytes:
        """The body to relay for an `application/json` answer, or UpstreamError."""
        body = self._redact(body)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError("upstream sent a body that is not JSON") from None
        if isinstance(doc, list):
            kept = [m for m in doc if self._admit(m) is not DROP]
            if not kept:
                raise UpstreamError("upstream sent no response for this request")
            changed = len(kept) != len(doc) or self._filtered(kept)
            return orjson.dumps(kept) if changed else body
        verdict = self._admit(doc)
        if verdict is DROP:
            raise UpstreamError("upstream sent a response for another request")
        return orjson.dumps(doc) if self._filtered([doc]) else body

    def check_errors(self, body: bytes) -> bytes:
        """The body to relay for a 4xx answer: JSON-RPC error responses to this exchange only
        (a 4xx is relayed only as the error of a request, never as a result or a request)."""
        out = self.check_json(body)
        doc = orjson.loads(out)
        for message in doc if isinstance(doc, list) else (doc,):
            if not (isinstance(message, dict) and "error" in message and "result" not in message):
                raise UpstreamError("upstream sent an error status without a JSON-RPC error")
            if "method" in message:
                raise UpstreamError("upstream sent an error status without a JSON-RPC error")
        return out

    def sse_data(self, data: bytes) -> Rewrite:
        """For one SSE event's data: None (relay as is), new bytes, or DROP."""
        if not data.strip():
            return None  # a priming event (an `id:` for resumption, empty data; SEP-1699)
        redacted = self._redact(data)
        try:
            doc = orjson.loads(redacted)
        except orjson.JSONDecodeError:
            log.warning("dropped an SSE event that is not JSON")
            return DROP
        if self._admit(doc) is DROP:
            return DROP
        filtered = self._filtered([doc])
        if self._results is not None and self._claimed(doc):
            # Screened after every synchronous rewrite, as a JSON answer is (`screen_json`).
            self._held = doc
            return HOLD
        if filtered:
            return orjson.dumps(doc)
        return redacted if redacted is not data else None

    async def screen_json(self, body: bytes) -> bytes:
        """A body `check_json` passed, with each claimed response screened."""
        results = self._results
        assert results is not None
        doc = orjson.loads(body)
        messages = doc if isinstance(doc, list) else [doc]
        screened = False
        for i, message in enumerate(messages):
            if self._claimed(message):
                messages[i] = await results.screen(message)
                screened = True
        if not screened:
            return body
        return orjson.dumps(messages if isinstance(doc, list) else messages[0])

    async def release(self) -> bytes:
        """The data of the SSE event `sse_data` held, screened."""
        results, held = self._results, self._held
        assert results is not None
        assert held is not None
        self._held = None
        return orjson.dumps(await results.screen(held))

    def _claimed(self, message: Any) -> bool:
        if not isinstance(message, dict) or "method" in message:
            return False
        rid = message.get("id")
        assert self._results is not None
        return ("result" in message or "error" in message) and self._results.claims(rid)

    def _redact(self, data: bytes) -> bytes:
        if self._credential is not None and self._credential in data:
            log.warning("upstream echoed the gateway's credential; redacted before relaying")
            return data.replace(self._credential, b"[redacted]")
        return data

    def _admit(self, message: Any) -> object:
        if not isinstance(message, dict):
            log.warning("dropped an upstream message that is not a JSON object")
            return DROP
        if "method" in message:
            return None  # a server request or notification: the client decides what to do with it
        if "result" not in message and "error" not in message:
            log.warning("dropped an upstream message that is neither request nor response")
            return DROP
        rid = message.get("id", _NO_ID)
        if self._outstanding is None:
            return None
        if rid is None and "error" in message:
            return None  # an error about a request the upstream could not parse
        if isinstance(rid, (str, int)) and not isinstance(rid, bool) and rid in self._outstanding:
            self._outstanding.discard(rid)  # answered: a second response with this id is dropped
            return None
        log.warning("dropped an upstream response with an unknown or repeated id")
        return DROP

    def _filtered(self, messages: list[Any]) -> bool:
        """Apply the list filter and the result rewrite to admitted messages; True if any changed."""
        if self._list_request is None and self._rewrite_result is None:
            return False
        changed = False
        for message in messages:
            rid = message.get("id")
            result = message.get("result")
            if not isinstance(result, dict) or isinstance(rid, bool) or not isinstance(rid, (str, int)):
                continue
            if rid == self._list_request and isinstance(result.get("tools"), list):
                self._list_filter(result)
                changed = True
            elif self._rewrite_result is not None and self._rewrite_result(rid, result):
                changed = True
        return changed
