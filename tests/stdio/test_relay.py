"""The notification relay's decisions without a process: routing by the gateway's token, the bounds,
the log levels and the gateway log's budget (`stdio/relay.py`)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from mcp_bastion.stdio.relay import (
    LOG_LINES_PER_MINUTE,
    MAX_NOTES_PER_CALL,
    MAX_QUEUED_NOTES,
    NoteStream,
    Notifications,
)


def _progress(token: object) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": token, "progress": 1},
    }


async def _drain(stream: NoteStream) -> list[dict[str, Any]]:
    stream.close()
    return [orjson.loads(event.split(b"data: ", 1)[1]) async for event in stream.events()]


async def test_progress_goes_to_the_call_its_gateway_token_names_with_the_callers_token() -> None:
    mine, other = NoteStream(), NoteStream()
    calls = {
        1: SimpleNamespace(stream=mine, progress_token="t"),
        2: SimpleNamespace(stream=other, progress_token="t"),
    }
    notes = Notifications("plug", per_subject=False)
    notes.route(_progress(1), calls)
    assert await _drain(mine) == [_progress("t")]
    assert await _drain(other) == []


@pytest.mark.parametrize("token", [True, "1", 1.0, None, 3, [1]])
async def test_a_token_naming_no_call_that_asked_for_progress_is_dropped(token: object) -> None:
    # True is an int in Python and "1" / 1.0 look like 1: none of them may reach call 1.
    stream = NoteStream()
    calls = {
        1: SimpleNamespace(stream=stream, progress_token="t"),
        3: SimpleNamespace(stream=stream, progress_token=None),
    }
    notes = Notifications("plug", per_subject=False)
    notes.route(_progress(token), calls)
    assert notes.dropped == 1
    assert await _drain(stream) == []


async def test_a_stream_holds_at_most_its_unread_bound_and_relays_at_most_its_total() -> None:
    stream = NoteStream()
    accepted = sum(stream.offer(_progress("t")) for _ in range(MAX_QUEUED_NOTES + 10))
    assert accepted == MAX_QUEUED_NOTES
    stream.answer({"jsonrpc": "2.0", "id": 1, "result": {}})  # the response is never dropped
    events = stream.events()
    for _ in range(MAX_QUEUED_NOTES + 1):
        await anext(events)  # read: room again
    for _ in range(MAX_NOTES_PER_CALL):
        if stream.offer(_progress("t")):
            await anext(events)
    assert stream.dropped == 10 + MAX_QUEUED_NOTES  # past the total, everything is dropped
    stream.close()
    assert [e async for e in events] == []


def test_log_levels_are_compared_by_severity() -> None:
    assert NoteStream("warning").wants_log("error")
    assert not NoteStream("warning").wants_log("info")
    assert not NoteStream("warning").wants_log("made-up")
    assert NoteStream("").wants_log("debug")  # session era: the plug-in's own level applies
    assert not NoteStream(None).wants_log("emergency")  # never asked for


async def test_a_per_subject_log_goes_to_the_oldest_call_that_asked() -> None:
    quiet, first, second = NoteStream(None), NoteStream("info"), NoteStream("info")
    calls = {
        n: SimpleNamespace(stream=s, progress_token=None) for n, s in ((1, quiet), (2, first), (3, second))
    }
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}
    Notifications("plug", per_subject=True).route(note, calls)
    assert [await _drain(s) for s in (quiet, first, second)] == [[], [note], []]


def test_a_shared_process_log_goes_to_the_gateway_log_bounded(caplog: pytest.LogCaptureFixture) -> None:
    stream = NoteStream("")
    calls = {1: SimpleNamespace(stream=stream, progress_token=None)}
    notes = Notifications("plug", per_subject=False, clock=lambda: 1000.0)
    note = {"method": "notifications/message", "params": {"level": "info", "data": "line\x1b[2J\r\nforged"}}
    with caplog.at_level(logging.INFO, logger="mcp_bastion.stdio"):
        for _ in range(LOG_LINES_PER_MINUTE + 50):
            notes.route(note, calls)
    assert notes.dropped == LOG_LINES_PER_MINUTE + 50
    assert len(caplog.records) == LOG_LINES_PER_MINUTE
    assert "\x1b" not in caplog.text  # escaped: no forged log lines
    assert "\r" not in caplog.text
    assert asyncio.run(_drain(stream)) == []
