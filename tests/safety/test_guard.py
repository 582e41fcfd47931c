"""The external guard against a real guard service on loopback: each verdict, each kind of
outage under fail-closed and fail-open, the concurrency cap, and the contract's payload."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mcp_bastion.config.model import LimitsConfig
from mcp_bastion.safety.guard import ExternalGuard
from mcp_bastion.safety.verdict import CallContext
from mcp_bastion.upstream.client import UpstreamClient

from ..support.guard_service import HANG, HOLD, Answer, GuardService, running_guard, verdict

CALL = CallContext("files", "read_file", "alice", "agent-7")


@pytest.fixture
def service() -> GuardService:
    return GuardService()


@pytest.fixture
def guard_url(service: GuardService) -> Iterator[str]:
    with running_guard(service) as server:
        yield f"{server.base_url}/check"


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(LimitsConfig())
    yield client
    await client.aclose()


def _guard(pool: UpstreamClient, url: str, **options: Any) -> ExternalGuard:
    settings: dict[str, Any] = {
        "timeout": 5.0,
        "max_concurrency": 8,
        "fail_open": False,
        "max_answer_bytes": 65_536,
    }
    settings.update(options)
    return ExternalGuard("llm", pool.transport(url), **settings)


async def test_the_payload_names_phase_server_tool_caller_and_value(
    service: GuardService, guard_url: str, pool: UpstreamClient
) -> None:
    guard = _guard(pool, guard_url, credential=(b"authorization", b"Bearer guard-secret"))
    assert (await guard.on_arguments(CALL, {"path": "/etc"})).action == "allow"
    assert (await guard.on_result(CALL, {"code": -1, "message": "boom"}, True)).action == "allow"
    assert service.seen == [
        {
            "phase": "arguments",
            "server": "files",
            "tool": "read_file",
            "subject": "alice",
            "client_id": "agent-7",
            "value": {"path": "/etc"},
        },
        {
            "phase": "result",
            "server": "files",
            "tool": "read_file",
            "subject": "alice",
            "client_id": "agent-7",
            "error": True,
            "value": {"code": -1, "message": "boom"},
        },
    ]
    assert service.headers[0]["authorization"] == "Bearer guard-secret"
    assert service.headers[0]["content-type"] == "application/json"


async def test_deny_carries_the_guards_rule_ids_and_drops_what_is_not_an_id(
    service: GuardService, guard_url: str, pool: UpstreamClient
) -> None:
    rules = ["prompt-injection", "pii.email", "the text it found: AKIA…", 7, *[f"r{i}" for i in range(20)]]
    service.answer = lambda _: verdict(verdict="deny", rules=rules, reason="free text is not kept")
    result = await _guard(pool, guard_url).on_result(CALL, {"content": []}, False)
    assert result.action == "deny"
    assert result.rules == ("prompt-injection", "pii.email", "r0", "r1", "r2", "r3", "r4", "r5")


async def test_redact_hands_back_the_guards_value(
    service: GuardService, guard_url: str, pool: UpstreamClient
) -> None:
    replacement = {"content": [{"type": "text", "text": "[removed]"}]}
    service.answer = lambda _: verdict(verdict="redact", value=replacement, rules=["pii"])
    result = await _guard(pool, guard_url).on_result(
        CALL, {"content": [{"type": "text", "text": "x"}]}, False
    )
    assert (result.action, result.rules, result.value) == ("redact", ("pii",), replacement)


OUTAGES: list[tuple[Answer, str]] = [
    ((500, b'{"verdict":"allow"}'), "unavailable-status-500"),
    ((302, b""), "unavailable-status-302"),
    ((200, b"not json"), "unavailable-invalid-answer"),
    ((200, b'["allow"]'), "unavailable-invalid-answer"),
    ((200, b'{"verdict":"maybe"}'), "unavailable-invalid-answer"),
    ((200, b'{"verdict":"redact","value":"a string"}'), "unavailable-invalid-answer"),
    ((200, b'{"verdict":"redact"}'), "unavailable-invalid-answer"),
    ((200, b'{"verdict":"allow","pad":"' + b"x" * 2048 + b'"}'), "unavailable-too-large"),
    (HANG, "unavailable-timeout"),
]


@pytest.mark.parametrize("fail_open", [False, True], ids=["closed", "open"])
@pytest.mark.parametrize(("answer", "why"), OUTAGES, ids=[why + str(i) for i, (_, why) in enumerate(OUTAGES)])
async def test_an_outage_denies_when_closed_and_allows_when_open_and_says_why(
    service: GuardService, guard_url: str, pool: UpstreamClient, answer: Answer, why: str, fail_open: bool
) -> None:
    service.answer = lambda _: answer
    guard = _guard(pool, guard_url, fail_open=fail_open, timeout=0.5, max_answer_bytes=1024)
    result = await guard.on_arguments(CALL, {"q": 1})
    assert result.action == ("allow" if fail_open else "deny")
    assert result.rules == (why,)
    if answer == HANG:
        # Waited for in a thread: the gateway's loop must run to close the connection.
        assert await asyncio.to_thread(
            service.hung_up.wait, 10
        )  # the gateway hung up on a guard past its timeout


@pytest.mark.parametrize("fail_open", [False, True], ids=["closed", "open"])
async def test_a_guard_that_refuses_connections_is_an_outage(pool: UpstreamClient, fail_open: bool) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    result = await _guard(pool, f"http://127.0.0.1:{port}/check", fail_open=fail_open).on_arguments(CALL, {})
    assert result.action == ("allow" if fail_open else "deny")
    assert result.rules == ("unavailable-unreachable",)


async def test_no_more_than_max_concurrency_requests_reach_the_guard(
    service: GuardService, guard_url: str, pool: UpstreamClient
) -> None:
    service.answer = lambda _: HOLD
    guard = _guard(pool, guard_url, max_concurrency=2, timeout=10.0)
    held = [asyncio.ensure_future(guard.on_arguments(CALL, {"n": n})) for n in range(2)]
    await asyncio.to_thread(service.wait_for_requests, 2)
    waiting = asyncio.ensure_future(guard.on_arguments(CALL, {"n": 2}))
    # Both slots are taken: the third call waits in the gateway, not at the guard. (A negative
    # needs a window: 0.3 s in which it would have arrived; the control test below shows it does.)
    await asyncio.wait([waiting], timeout=0.3)
    assert not waiting.done()
    assert len(service.seen) == 2
    service.release()
    results = await asyncio.gather(*held, waiting)
    assert [r.action for r in results] == ["allow"] * 3
    assert len(service.seen) == 3
    assert service.max_in_flight == 2


async def test_a_call_that_gets_no_slot_within_the_timeout_is_an_outage(
    guard_url: str, pool: UpstreamClient
) -> None:
    guard = _guard(pool, guard_url, max_concurrency=1, timeout=0.3)
    async with guard._slots:  # the one slot, taken as a call in flight would take it
        result = await guard.on_arguments(CALL, {})
    assert (result.action, result.rules) == ("deny", ("unavailable-busy",))


async def test_without_the_cap_binding_every_call_reaches_the_guard_at_once(
    service: GuardService, guard_url: str, pool: UpstreamClient
) -> None:
    # The control for the test above: the same three calls under a cap of 3 all arrive.
    service.answer = lambda _: HOLD
    guard = _guard(pool, guard_url, max_concurrency=3)
    calls = [asyncio.ensure_future(guard.on_arguments(CALL, {"n": n})) for n in range(3)]
    await asyncio.to_thread(service.wait_for_requests, 3)
    service.release()
    assert [r.action for r in await asyncio.gather(*calls)] == ["allow"] * 3
    assert service.max_in_flight == 3
