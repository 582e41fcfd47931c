"""Three real `mcp-bastion serve` replicas behind Debian's nginx, quotas in a real Valkey
(the stack: tests/support/load_balanced.py, the recipe of docs/operations.md "Replicas behind a
load balancer"). The stack is started once for the module; the tests that kill or restart a
replica leave three running.

Numbers each test measures are printed (`pytest -s`) and quoted in docs/operations.md.
"""

from __future__ import annotations

import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from ..support.load_balanced import (
    BURST,
    NGINX_LOCATION,
    WAIT_S,
    Replica,
    Stack,
    answers,
    running_stack,
    until,
)

pytestmark = pytest.mark.e2e

REPLICAS = 3
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("replicas"), REPLICAS) as running:
        yield running


def test_the_documented_nginx_recipe_is_the_one_tested() -> None:
    (recipe,) = re.findall(r"```nginx\n(.*?)```", OPERATIONS.read_text(), re.S)
    documented = {line.split("#")[0].strip() for line in recipe.splitlines()}
    tested = {line.strip() for line in NGINX_LOCATION.splitlines()}
    assert tested <= documented, tested - documented


def _call(tool: str, n: str, id: int | str = 1) -> bytes:
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"n": n}}}
    )


def test_a_session_sealed_by_one_replica_is_opened_by_the_others(stack: Stack) -> None:
    token = stack.token()
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    with httpx.Client(timeout=WAIT_S) as http:
        opened = http.post(stack.url(), content=orjson.dumps(initialize), headers=stack.headers(token))
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        assert session != stack.upstream.recording.session_id  # sealed: the client never sees the upstream's
        headers = stack.headers(token, **{"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"})
        for n in range(2 * REPLICAS):  # round robin: each replica gets some
            answer = http.post(stack.url(), content=_call("read_thing", f"session-{n}"), headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["content"][0]["text"] == "called read_thing"
        # A session id with another user's token is refused on every replica (bound to the subject).
        stolen = stack.headers(
            stack.token("mallory"), **{"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        )
        for n in range(REPLICAS):
            assert (
                http.post(stack.url(), content=_call("read_thing", f"stolen-{n}"), headers=stolen).status_code
                == 404
            )
    used = {path for n in range(2 * REPLICAS) for path in stack.upstream.replicas_of(f"session-{n}")}
    assert used == {f"/r{i}/mcp" for i in range(REPLICAS)}  # every replica opened the session
    seen = [
        r
        for r in stack.upstream.recording.seen
        if r.json and r.json.get("params", {}).get("arguments", {}).get("n", "").startswith("session-")
    ]
    assert {r.headers.get("mcp-session-id") for r in seen} == {stack.upstream.recording.session_id}
    assert not any(stack.upstream.replicas_of(f"stolen-{n}") for n in range(REPLICAS))


def test_quotas_are_exact_across_replicas_under_concurrent_load(stack: Stack) -> None:
    token = stack.token("quota-user")
    attempts = 90

    def call(n: int) -> int:
        with httpx.Client(timeout=WAIT_S) as http:
            return http.post(
                stack.url(), content=_call("metered", f"quota-{n}"), headers=stack.headers(token)
            ).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(pool.map(call, range(attempts)))
    reached = [path for n in range(attempts) for path in stack.upstream.replicas_of(f"quota-{n}")]
    print(
        f"quotas: {attempts} concurrent calls through nginx, burst {BURST}: {statuses[200]} allowed, {statuses[429]} refused, upstream saw {len(reached)} from {sorted(Counter(reached).items())}"
    )
    assert statuses == Counter({200: BURST, 429: attempts - BURST})
    assert len(reached) == BURST
    assert len(set(reached)) == REPLICAS  # all three replicas decided, on one shared count


def test_a_replica_killed_mid_stream_loses_no_audit_event_and_a_retry_succeeds(stack: Stack) -> None:
    token = stack.token("kill-user")
    answered: list[str] = []
    failed: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load(worker: int) -> None:
        with httpx.Client(timeout=WAIT_S) as http:
            n = 0
            while not stop.is_set():
                n += 1
                trace_id = f"{worker + 1:08x}{n:024x}"
                headers = stack.headers(token, traceparent=f"00-{trace_id}-{'1' * 16}-01")
                try:
                    ok = (
                        http.post(
                            stack.url(), content=_call("read_thing", trace_id), headers=headers
                        ).status_code
                        == 200
                    )
                except httpx.TransportError:
                    ok = False
                with lock:
                    (answered if ok else failed).append(trace_id)

    stack.upstream.hold.set()
    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    with httpx.Client(timeout=WAIT_S) as http:
        with http.stream(
            "POST", stack.url(), content=_call("held", "held-1"), headers=stack.headers(token)
        ) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))  # the stream is open
            assert stack.upstream.held_open.wait(WAIT_S)
            (path,) = stack.upstream.replicas_of("held-1")
            victim = stack.replicas[int(path.removeprefix("/r").removesuffix("/mcp"))]
            for worker in workers:
                worker.start()
            until(lambda: len(answered) >= 200, "the load did not get going")
            assert victim.process is not None
            victim.process.signal(signal.SIGKILL)  # mid-stream, mid-load
            with pytest.raises(httpx.HTTPError):  # the client sees the stream break off
                for _ in lines:
                    pass
        victim.process.process.wait(timeout=WAIT_S)
        with lock:
            at_kill = len(answered)
        until(lambda: len(answered) >= at_kill + 200, "the load did not go on without the killed replica")
        stop.set()
        for worker in workers:
            worker.join(timeout=WAIT_S)
        stack.upstream.hold.clear()
        retry = http.post(stack.url(), content=_call("held", "held-2"), headers=stack.headers(token))
        assert retry.status_code == 200, retry.text
        assert "done" in retry.text
        assert stack.upstream.replicas_of("held-2") != [path]  # another replica answered
    victim.close()
    before_restart = {e["trace_id"] for e in stack.audited()}
    victim.start()  # the same spool folder: what it had not delivered goes out now
    wanted = set(answered)
    until(
        lambda: wanted <= {e["trace_id"] for e in stack.audited()},
        "audit events of answered requests are missing",
    )
    lost = wanted - {e["trace_id"] for e in stack.audited()}
    waited = wanted - before_restart
    print(
        f"kill: {len(answered)} answered, {len(failed)} failed (seen by the client), {len(waited)} events delivered only after the restart, {len(lost)} lost"
    )
    assert not lost
    assert answers(f"http://127.0.0.1:{victim.port}/readyz")


def _restart_in_rotation(stack: Stack, replica: Replica, answered: Callable[[], int]) -> None:
    """SIGTERM one replica under load, start it again, and wait until nginx sends it calls and
    the load has gone on, as an operator's rolling restart waits before the next replica."""
    until(lambda: answered() >= 100, "the load did not get going")
    assert replica.process is not None
    before = answered()
    assert replica.process.stop(timeout=WAIT_S) == 0  # SIGTERM: drained, exit 0
    replica.close()
    replica.start()
    until(lambda: answers(f"http://127.0.0.1:{replica.port}/readyz"), "the restarted replica is not ready")
    # Back in rotation: nginx tries it again once its `fail_timeout` is over.
    since = stack.upstream.count_from(replica.index)
    until(lambda: stack.upstream.count_from(replica.index) > since + 20, "nginx never came back to it")
    until(lambda: answered() >= before + 100, "the load stalled")


def test_a_rolling_restart_under_load_loses_no_request_silently(stack: Stack) -> None:
    token = stack.token("rolling-user")
    outcomes: dict[str, str] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def load(worker: int) -> None:
        with httpx.Client(timeout=WAIT_S) as http:
            n = 0
            while not stop.is_set():
                n += 1
                key = f"roll-{worker}-{n}"
                try:
                    answer = http.post(
                        stack.url(), content=_call("read_thing", key), headers=stack.headers(token)
                    )
                    ok = (
                        answer.status_code == 200
                        and answer.json()["result"]["content"][0]["text"] == "called read_thing"
                    )
                    outcome = "ok" if ok else str(answer.status_code)
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                with lock:
                    outcomes[key] = outcome

    def answered() -> int:
        with lock:
            return sum(1 for outcome in outcomes.values() if outcome == "ok")

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    try:
        for replica in stack.replicas:
            _restart_in_rotation(stack, replica, answered)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=WAIT_S)
    counts = Counter(outcomes.values())
    print(f"rolling restart: {len(outcomes)} requests, {dict(counts)}")
    forwarded = Counter(stack.upstream.arguments())
    for key, outcome in outcomes.items():
        if outcome == "ok":
            assert forwarded[key] == 1, key  # answered: forwarded once, never twice
        else:
            # A 503 from a draining replica, or a reset as a replica closed: the call never
            # reached the upstream, so the client may retry it anywhere.
            assert forwarded[key] == 0, (key, outcome)
    assert counts["ok"] >= 300
    assert all(not worker.is_alive() for worker in workers)  # no request hangs unanswered
