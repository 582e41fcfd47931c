"""The two halves of sealed `requestState` (`mcp/request_state.py`) in the request path.

`OpenRequestState`, a stage after ParseMcp: a 2026-07-28 retry of `tools/call`,
`resources/read` or `prompts/get` carrying `requestState` must carry one the gateway sealed
for this caller and this request; the body then goes upstream with the upstream's own state
in its place. `seal_input_required`: the rewrite the forwarding stage hands its response
guard, sealing the state of each `InputRequiredResult` before the client sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..errors import ProtocolError, UpstreamError
from ..mcp.jsonrpc import INVALID_PARAMS
from ..mcp.request_state import MRTR_METHODS, RequestStateSealer, bind
from ..mcp.sessions import subject_digest
from ..upstream.responses import ResultRewrite
from .exchange import Exchange

__all__ = ["OpenRequestState", "seal_input_required"]


class OpenRequestState:
    def __init__(self, sealer: RequestStateSealer, clock: Callable[[], float]) -> None:
        self._sealer = sealer
        self._clock = clock

    async def __call__(self, ex: Exchange) -> None:
        if ex.era is None or ex.era.name != "modern" or not ex.body:
            return
        for call in ex.calls:
            params = call.params
            if call.method not in MRTR_METHODS or params is None or "requestState" not in params:
                continue
            sealed = params["requestState"]
            if not isinstance(sealed, str):
                raise ProtocolError(
                    "Invalid params: requestState must be a string", code=INVALID_PARAMS, request_id=call.id
                )
            assert ex.principal is not None
            subject = subject_digest(ex.principal.issuer, ex.principal.subject)
            binding = bind(ex.route.name, call.method, call.name)
            try:
                original = self._sealer.unseal(sealed, subject, binding, self._clock())
            except ProtocolError as err:
                err.request_id = call.id
                raise
            ex.body = _swap(ex.body, sealed, original, call.id)


def _swap(body: bytes, sealed: str, original: str, request_id: str | int | None) -> bytes:
    # The sealed form is base64url: a JSON writer has no reason to escape any of it, so it is in
    # the body verbatim, once. Anything else (escaped, repeated) is refused, not guessed at.
    needle = b'"' + sealed.encode("ascii") + b'"'
    if body.count(needle) != 1:
        raise ProtocolError(
            "Invalid params: requestState must appear once, unescaped",
            code=INVALID_PARAMS,
            request_id=request_id,
        )
    return body.replace(needle, orjson.dumps(original))


def seal_input_required(
    ex: Exchange, sealer: RequestStateSealer, clock: Callable[[], float]
) -> ResultRewrite | None:
    """The result rewrite for this exchange, or None when no call of it may get one."""
    if ex.era is None or ex.era.name != "modern":
        return None
    calls = {call.id: call for call in ex.calls if call.method in MRTR_METHODS and call.id is not None}
    if not calls:
        return None
    principal = ex.principal
    assert principal is not None

    def rewrite(request_id: str | int, result: dict[str, Any]) -> bool:
        call = calls.get(request_id)
        if call is None or result.get("resultType") != "input_required" or "requestState" not in result:
            return False
        state = result["requestState"]
        if not isinstance(state, str):
            raise UpstreamError("upstream sent a requestState that is not a string")
        subject = subject_digest(principal.issuer, principal.subject)
        binding = bind(ex.route.name, call.method, call.name)
        result["requestState"] = sealer.seal(state, subject, binding, clock())
        return True

    return rewrite
