"""Three real `mcp-bastion serve` replicas behind Debian's nginx, quotas in a real Valkey.

The stack is the one docs/operations.md ("Replicas behind a load balancer") recommends: one
config per replica sharing `sessions.key`, `signing.key` and the Redis quota store, each with
its own audit spool; nginx round-robin in front, retrying only what is safe to retry. It is
started once for the module; the tests that kill or restart a replica leave three running.

Numbers each test measures are printed (`pytest -s`) and quoted in docs/operations.md.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from joserfc.jwk import ECKey

from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.serve_process import ServeProcess, free_port, serve_process, write_config
from ..support.servers import read_body, serve_asgi
from ..support.valkey import Valkey, running_valkey

pytestmark = pytest.mark.e2e

NGINX = "/usr/sbin/nginx"
REPLICAS = 3
WAIT_S = 30.0
BURST = 25
ACCEPT = "application/json, text/event-stream"

# What nginx does in front of the replicas (docs/operations.md quotes it). `error timeout`
# moves a request to the next replica only while it can still be resent: for a POST (every
# MCP call) that is when the connection failed before the request went out (a replica down or
# restarting: connect refused); once sent, a broken answer is a 502 to the client, because a
# tools/call may have run. `http_503`: a draining replica's 503 is retried for GET (the SSE
# notification channel); for a POST nginx passes it on (no `non_idempotent`) without counting
# it against `max_fails`: the replica leaves the rotation when its listener closes.
NGINX_LOCATION = """\
    proxy_pass http://bastion;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_buffering off;
    proxy_read_timeout 1h;
    proxy_next_upstream error timeout http_503;
    proxy_next_upstream_tries 3;
    proxy_next_upstream_timeout 10s;
"""


def _argument(doc: dict[str, Any]) -> str:
    value = ((doc.get("params") or {}).get("arguments") or {}).get("n", "")
    return str(value)


class PathUpstream:
    """A RecordingUpstream reached by each replica on its own path (`/r0/mcp`...), so the test
    knows which replica forwarded each call; `held` holds a streamed call open."""

    def __init__(self) -> None:
        self.recording = RecordingUpstream()
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (replica path, JSON-RPC message)
        self.hold = threading.Event()
        self.held_open = threading.Event()
        self._lock = threading.Lock()

    def replicas_of(self, argument: str) -> list[str]:
        """The replica path of each forwarded call whose `n` argument is `argument`."""
        with self._lock:
            return [path for path, doc in self.calls if _argument(doc) == argument]

    def arguments(self) -> list[str]:
        """The `n` argument of every call forwarded, by any replica."""
        with self._lock:
            return [_argument(doc) for _, doc in self.calls]

    def count_from(self, replica: int) -> int:
        with self._lock:
            return sum(1 for path, _ in self.calls if path == f"/r{replica}/mcp")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.recording(scope, receive, send)
            return
        body = await read_body(receive)
        doc = orjson.loads(body)
        if isinstance(doc, dict):
            with self._lock:
                self.calls.append((scope["path"], doc))
            if doc.get("method") == "tools/call" and doc["params"]["name"] == "held":
                await self._held(doc, receive, send)
                return
        replay = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def again() -> Any:
            return next(replay, None) or await receive()

        await self.recording(scope, again, send)

    async def _held(self, doc: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": 1, "progress": 0},
        }
        await send(
            {
                "type": "http.response.body",
                "body": b"data: " + orjson.dumps(note) + b"\n\n",
                "more_body": True,
            }
        )
        if self.hold.is_set():
            self.held_open.set()
            while (await receive())["type"] != "http.disconnect":
                pass  # open until the replica forwarding it goes away
            return
        done = {"jsonrpc": "2.0", "id": doc["id"], "result": {"content": [{"type": "text", "text": "done"}]}}
        await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(done) + b"\n\n"})


@dataclass
class Replica:
    index: int
    config: Path
    port: int
    audit_file: Path
    process: ServeProcess | None = None
    _running: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> None:
        self._running = contextlib.ExitStack()
        self.process = self._running.enter_context(serve_process(self.config, self.port))

    def close(self) -> None:
        self._running.close()
        self.process = None

    def events(self) -> list[dict[str, Any]]:
        if not self.audit_file.exists():
            return []
        return [json.loads(line) for line in self.audit_file.read_bytes().splitlines()]


@dataclass
class Stack:
    base: str
    issuer: LocalIssuer
    upstream: PathUpstream
    replicas: list[Replica]
    valkey: Valkey
    nginx_log: Path

    def url(self) -> str:
        return f"{self.base}/rec/mcp"

    def token(self, subject: str = "alice") -> str:
        return self.issuer.token(audience=self.url(), subject=subject)

    def headers(self, token: str, **extra: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "accept": ACCEPT,
            **extra,
        }

    def audited(self) -> list[dict[str, Any]]:
        return [event for replica in self.replicas for event in replica.events()]


def _replica_config(tmp: Path, index: int, base: str, issuer: str, upstream: str, valkey: Valkey) -> Replica:
    folder = tmp / f"replica-{index}"
    folder.mkdir()
    port = free_port()
    audit_file = folder / "audit.jsonl"
    config = {
        "public_base_url": base,  # the load balancer's URL: tokens name it, not a replica
        "listen": {
            "host": "127.0.0.1",
            "port": port,
            "drain": {"grace_seconds": 10, "stream_grace_seconds": 1},
        },
        "identity_providers": [{"name": "test", "issuer": issuer, "allow_insecure_http": True}],
        "servers": [{"name": "rec", "upstream": f"{upstream}/r{index}/mcp"}],
        "sessions": {"key": {"file": str(tmp / "sessions.key")}},
        "signing": {"key": {"file": str(tmp / "signing.jwk")}},
        "quotas": {
            "store": "redis",
            "redis": {"url": valkey.url},
            "rules": [
                {
                    "name": "metered",
                    "key": ["subject", "tool"],
                    "tools": ["metered"],
                    "rate": 1,
                    "per_seconds": 3600,
                    "burst": BURST,
                }
            ],
        },
        "audit": {
            "sink": "file",
            "path": str(audit_file),
            "spool": {"dir": str(folder / "spool"), "segment_bytes": 65_536, "retry_max_seconds": 0.2},
        },
    }
    return Replica(index, write_config(folder / "bastion.yaml", config), port, audit_file)


def _nginx_config(tmp: Path, port: int, replicas: list[Replica]) -> Path:
    servers = "".join(f"    server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;\n" for r in replicas)
    temp = "".join(
        f"  {kind}_temp_path {tmp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = (
        "daemon off;\nmaster_process off;\n"  # one foreground process the test owns (no privilege drop)
        f"pid {tmp / 'nginx.pid'};\nerror_log {tmp / 'nginx-error.log'} info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"  access_log {tmp / 'nginx-access.log'};\n{temp}"
        f"  upstream bastion {{\n{servers}  }}\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n{NGINX_LOCATION}    }}\n  }}\n"
        "}\n"
    )
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


def _until(condition: Callable[[], bool], message: str, timeout: float = WAIT_S) -> None:
    # Polling subprocesses' ports and files: there is no event in this process to wait on.
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        pause.wait(0.05)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def _nginx(tmp: Path, port: int, replicas: list[Replica]) -> Iterator[None]:
    config = _nginx_config(tmp, port, replicas)
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _until(
            lambda: process.poll() is None and _answers(f"http://127.0.0.1:{port}/healthz"),
            "nginx did not start",
        )
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert os.access(NGINX, os.X_OK), "Debian's nginx is missing: run scripts/install-apt-tools (as root)"
    tmp = tmp_path_factory.mktemp("replicas")
    (tmp / "sessions.key").write_text(base64.b64encode(os.urandom(32)).decode())
    (tmp / "signing.jwk").write_text(json.dumps(ECKey.generate_key("P-256").as_dict(private=True)))
    upstream = PathUpstream()
    nginx_port = free_port()
    base = f"http://127.0.0.1:{nginx_port}"
    with running_valkey() as valkey, running_issuer() as issuer, serve_asgi(upstream) as up:
        replicas = [
            _replica_config(tmp, i, base, issuer.issuer, up.base_url, valkey) for i in range(REPLICAS)
        ]
        try:
            for replica in replicas:
                replica.start()
            with _nginx(tmp, nginx_port, replicas):
                yield Stack(base, issuer, upstream, replicas, valkey, tmp / "nginx-error.log")
        finally:
            for replica in replicas:
                replica.close()


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
            _until(lambda: len(answered) >= 200, "the load did not get going")
            assert victim.process is not None
            victim.process.signal(signal.SIGKILL)  # mid-stream, mid-load
            with pytest.raises(httpx.HTTPError):  # the client sees the stream break off
                for _ in lines:
                    pass
        victim.process.process.wait(timeout=WAIT_S)
        with lock:
            at_kill = len(answered)
        _until(lambda: len(answered) >= at_kill + 200, "the load did not go on without the killed replica")
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
    _until(
        lambda: wanted <= {e["trace_id"] for e in stack.audited()},
        "audit events of answered requests are missing",
    )
    lost = wanted - {e["trace_id"] for e in stack.audited()}
    waited = wanted - before_restart
    print(
        f"kill: {len(answered)} answered, {len(failed)} failed (seen by the client), {len(waited)} events delivered only after the restart, {len(lost)} lost"
    )
    assert not lost
    assert _answers(f"http://127.0.0.1:{victim.port}/readyz")


def _restart_in_rotation(stack: Stack, replica: Replica, answered: Callable[[], int]) -> None:
    """SIGTERM one replica under load, start it again, and wait until nginx sends it calls and
    the load has gone on, as an operator's rolling restart waits before the next replica."""
    _until(lambda: answered() >= 100, "the load did not get going")
    assert replica.process is not None
    before = answered()
    assert replica.process.stop(timeout=WAIT_S) == 0  # SIGTERM: drained, exit 0
    replica.close()
    replica.start()
    _until(lambda: _answers(f"http://127.0.0.1:{replica.port}/readyz"), "the restarted replica is not ready")
    # Back in rotation: nginx tries it again once its `fail_timeout` is over.
    since = stack.upstream.count_from(replica.index)
    _until(lambda: stack.upstream.count_from(replica.index) > since + 20, "nginx never came back to it")
    _until(lambda: answered() >= before + 100, "the load stalled")


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
