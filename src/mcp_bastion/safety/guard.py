"""The external guard: an HTTP service of the operator's that judges a call or its result.

For each screened call the gateway POSTs one JSON object to the guard's URL:

    {"phase": "arguments", "server": "files", "tool": "read_file",
     "subject": "alice", "client_id": "agent-7", "value": {…the arguments…}}
    {"phase": "result", …, "error": false, "value": {…the result, or the error object…}}

and the guard answers 200 with one of

    {"verdict": "allow"}
    {"verdict": "deny", "rules": ["prompt-injection"]}
    {"verdict": "redact", "value": {…replacement…}, "rules": ["pii"]}

`rules` are the guard's own ids for what it found (letters, digits, `.`, `_`, `-`; at most
8 are kept): they go to the audit feed, so a guard must not put the detected text there.

Anything else is an outage: no answer within `timeout_seconds` (waiting for one of the
`max_concurrency` slots included, so a saturated guard cannot queue calls without bound),
a refused connection, another status, a body that is not such an object, a `redact`
without an object to redact to. On an outage the filter denies (`on_failure: deny`, the
default: a safety check that cannot run has not passed) or allows (`on_failure: allow`);
either way the audit entry says `unavailable-<why>`.

The guard is reached over the gateway's own pooled HTTP/1.1 client (`upstream/http11.py`,
as upstreams are), with no redirects followed and nothing of the client's request
forwarded but what the payload above holds.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

import orjson

from ..asgi import Headers
from ..errors import UpstreamError, UpstreamTimeout
from ..upstream.transport import UpstreamTransport
from .verdict import ALLOW, CallContext, Verdict

__all__ = ["ExternalGuard"]

_RULE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MAX_RULES: Final = 8


class ExternalGuard:
    __slots__ = ("_fail_open", "_headers", "_max_answer", "_slots", "_timeout", "_transport", "id")

    def __init__(
        self,
        filter_id: str,
        transport: UpstreamTransport,
        *,
        timeout: float,
        max_concurrency: int,
        fail_open: bool,
        max_answer_bytes: int,
        credential: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.id = filter_id
        self._transport = transport
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_concurrency)
        self._fail_open = fail_open
        self._max_answer = max_answer_bytes
        headers: Headers = [
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"user-agent", b"mcp-bastion/0.1"),
        ]
        if credential is not None:
            headers.append(credential)
        self._headers = headers

    async def on_arguments(self, call: CallContext, arguments: Any) -> Verdict:
        payload = {
            "phase": "arguments",
            "server": call.server,
            "tool": call.tool,
            "subject": call.subject,
            "client_id": call.client_id,
            "value": arguments,
        }
        return await self._ask(payload)

    async def on_result(self, call: CallContext, value: Any, error: bool) -> Verdict:
        payload = {
            "phase": "result",
            "server": call.server,
            "tool": call.tool,
            "subject": call.subject,
            "client_id": call.client_id,
            "error": error,
            "value": value,
        }
        return await self._ask(payload)

    async def _ask(self, payload: dict[str, Any]) -> Verdict:
        body = orjson.dumps(payload)
        slot = False
        try:
            async with asyncio.timeout(self._timeout):
                async with self._slots:
                    slot = True
                    answer = await self._post(body)
        except TimeoutError:
            return self._outage("timeout" if slot else "busy")
        except UpstreamTimeout:
            return self._outage("timeout")
        except UpstreamError:
            return self._outage("unreachable")
        return self._outage(answer) if isinstance(answer, str) else answer

    async def _post(self, body: bytes) -> Verdict | str:
        """The guard's verdict, or why there is none."""
        transport = self._transport
        response = await transport.open("POST", self._headers, body, self._timeout)
        try:
            if response.status != 200:
                return f"status-{response.status}"
            data = await response.read_all(self._max_answer)
        finally:
            transport.close(response)
        if data is None:
            return "too-large"
        return _verdict(data)

    def _outage(self, why: str) -> Verdict:
        return Verdict("allow" if self._fail_open else "deny", (f"unavailable-{why}",))


def _verdict(data: bytes) -> Verdict | str:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "invalid-answer"
    if not isinstance(doc, dict):
        return "invalid-answer"
    verdict = doc.get("verdict")
    rules = _rules(doc.get("rules"))
    if verdict == "allow":
        return ALLOW
    if verdict == "deny":
        return Verdict("deny", rules)
    if verdict == "redact" and isinstance(doc.get("value"), dict):
        return Verdict("redact", rules, doc["value"])
    return "invalid-answer"


def _rules(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(r for r in raw if isinstance(r, str) and _RULE.fullmatch(r))[:_MAX_RULES]
