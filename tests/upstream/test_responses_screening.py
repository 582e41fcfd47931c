"""ResponseGuard with a ResultScreen: claimed responses (JSON, batches, SSE events) go through
it after the usual checks; others do not."""

from __future__ import annotations

from typing import Any

import orjson

from mcp_bastion.mcp.sse import HOLD
from mcp_bastion.upstream.responses import ResponseGuard


class Screen:
    """Claims the given ids; replaces each claimed result's text."""

    def __init__(self, *ids: str | int) -> None:
        self.ids = set(ids)
        self.screened: list[Any] = []

    def claims(self, request_id: str | int | None) -> bool:
        return request_id in self.ids

    async def screen(self, message: dict[str, Any]) -> dict[str, Any]:
        self.screened.append(message["id"])
        return {**message, "result": {"screened": True}}


def _guard(screen: Screen, ids: set[str | int]) -> ResponseGuard:
    return ResponseGuard(set(ids), None, lambda _: None, None, results=screen)


def _response(rid: int, **result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


async def test_a_claimed_json_response_is_screened_after_the_checks() -> None:
    screen = Screen(1)
    guard = _guard(screen, {1})
    assert guard.screening
    checked = guard.check_json(orjson.dumps(_response(1, text="x")))
    assert orjson.loads(await guard.screen_json(checked)) == _response(1, screened=True)
    assert screen.screened == [1]


async def test_only_claimed_members_of_a_batch_are_screened() -> None:
    screen = Screen(2)
    guard = _guard(screen, {1, 2})
    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
    checked = guard.check_json(orjson.dumps([_response(1, a=1), _response(2, b=2), note]))
    assert orjson.loads(await guard.screen_json(checked)) == [
        _response(1, a=1),
        _response(2, screened=True),
        note,
    ]
    assert screen.screened == [2]


async def test_an_answer_with_nothing_claimed_is_relayed_byte_for_byte() -> None:
    guard = _guard(Screen(9), {1})
    body = b'{"jsonrpc":"2.0","id":1,"result":{"n": 1}}'
    assert await guard.screen_json(guard.check_json(body)) == body


async def test_a_claimed_sse_event_is_held_and_released_screened() -> None:
    screen = Screen(1)
    guard = _guard(screen, {1})
    assert (
        guard.sse_data(orjson.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {}}))
        is None
    )
    assert guard.sse_data(orjson.dumps(_response(1, text="x"))) is HOLD
    assert orjson.loads(await guard.release()) == _response(1, screened=True)
    # A repeated response for the same id is dropped by the id check, never held again.
    assert guard.sse_data(orjson.dumps(_response(1, text="again"))) is not HOLD


def test_without_a_screen_nothing_is_held() -> None:
    guard = ResponseGuard({1}, None, lambda _: None)
    assert not guard.screening
    assert guard.sse_data(orjson.dumps(_response(1, text="x"))) is None
