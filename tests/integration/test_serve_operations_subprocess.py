"""`mcp-bastion serve` run as an operator runs it (a real subprocess): `--host/--port`, the log
format and level, the start / reload / shutdown lines, SIGHUP reloads, and no credential in
the log at any level. The IdP and the upstreams are real servers on loopback."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..server import RawClient
from ..server.test_tls import TlsClient
from ..support.certificates import make_ca, make_leaf
from ..support.gateway import post_mcp
from ..support.held_upstream import HeldUpstream
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.serve_process import ServeProcess, free_port, serve_process, write_config
from ..support.servers import serve_asgi

WAIT_S = 15.0
JWT_SHAPE = re.compile(r"eyJ[\w-]+\.[\w-]+\.")
UPSTREAM_SECRET = "Bearer upstream-static-secret-8d7f6e5c4b3a"
SESSION_KEY = base64.b64encode(b"k" * 32).decode()


def _base(port: int, upstream_url: str, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "public_base_url": f"http://127.0.0.1:{port}",
        "listen": {"port": port},
        "audit": {"sink": "none"},
        "servers": [{"name": "demo", "upstream": upstream_url, "auth": False}],
    }
    config.update(extra)
    return config


def _call(tool: str = "quick", id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}}


def _text(answer: httpx.Response) -> str:
    return str(answer.json()["result"]["content"][0]["text"])


@pytest.fixture
def two_upstreams() -> Iterator[tuple[HeldUpstream, str, HeldUpstream, str]]:
    first, second = HeldUpstream(name="first"), HeldUpstream(name="second")
    with serve_asgi(first) as a, serve_asgi(second) as b:
        try:
            yield first, f"{a.base_url}/mcp", second, f"{b.base_url}/mcp"
        finally:
            first.release.set()
            second.release.set()


# --- --host / --port and the log lines ---------------------------------------------------------


def test_host_and_port_on_the_command_line_override_listen(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    _, upstream_url, _, _ = two_upstreams
    port, unused = free_port(), free_port()
    config = _base(port, upstream_url)
    config["listen"] = {"host": "::1", "port": unused}  # neither is used
    path = write_config(tmp_path / "bastion.yaml", config)
    with serve_process(path, port, "--host", "127.0.0.1", "--port", str(port)) as served:
        assert f"listening on 127.0.0.1:{port}" in served.wait_for_text("listening on")
        with httpx.Client(timeout=WAIT_S) as http:
            assert post_mcp(http, f"http://127.0.0.1:{port}/demo/mcp", _call()).status_code == 200
        assert served.stop() == 0


def test_json_logs_have_one_line_at_start_reload_and_shutdown(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    _, upstream_url, _, _ = two_upstreams
    port = free_port()
    path = write_config(tmp_path / "bastion.yaml", _base(port, upstream_url))
    with serve_process(path, port, "--log-format", "json") as served:
        served.signal(signal.SIGHUP)
        served.wait_for_text("reloaded")
        assert served.stop() == 0
    entries = [json.loads(line) for line in served.lines]  # every line is one JSON object
    messages = [e["message"] for e in entries]
    assert all({"time", "level", "logger", "pid", "message"} <= e.keys() for e in entries)
    assert sum(m.startswith("listening on") for m in messages) == 1
    assert sum(m.startswith("reloaded ") for m in messages) == 1, messages
    assert sum(m.startswith("shutting down") for m in messages) == 1
    assert sum(m.startswith("stopped after") for m in messages) == 1
    assert messages.index(next(m for m in messages if m.startswith("stopped after"))) == len(messages) - 1


def test_log_level_warning_keeps_info_lines_out(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    _, upstream_url, _, _ = two_upstreams
    port = free_port()
    path = write_config(tmp_path / "bastion.yaml", _base(port, upstream_url))
    # "listening on" is INFO: with --log-level warning the process is watched by its port instead.
    with serve_process(path, port, "--log-level", "warning", ready="servers[0].auth: false") as served:
        with httpx.Client(timeout=WAIT_S) as http:
            served.wait_until_serving(http)
        assert served.stop() == 0
    assert served.lines
    assert all(" INFO " not in line for line in served.lines)


# --- SL-01: no credential in the log, at debug level ------------------------------------------


def test_sl01_no_token_or_secret_reaches_the_log_at_debug_level(tmp_path: Path) -> None:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        port = free_port()
        url = f"http://127.0.0.1:{port}/demo/mcp"
        config = _base(
            port,
            f"{up.base_url}/mcp",
            identity_providers=[{"name": "test", "issuer": issuer.issuer, "allow_insecure_http": True}],
            sessions={"key": {"env": "BASTION_TEST_SESSION_KEY"}},
        )
        config["servers"] = [
            {
                "name": "demo",
                "upstream": f"{up.base_url}/mcp",
                "upstream_auth": {"type": "static", "secret": {"env": "BASTION_TEST_UPSTREAM_SECRET"}},
            }
        ]
        path = write_config(tmp_path / "bastion.yaml", config)
        env = {"BASTION_TEST_UPSTREAM_SECRET": UPSTREAM_SECRET, "BASTION_TEST_SESSION_KEY": SESSION_KEY}
        with serve_process(path, port, "--log-level", "debug", env=env) as served:
            tokens = _send_every_kind_of_token(issuer, url)
            served.signal(signal.SIGHUP)  # a reload reads the secrets again
            served.wait_for_text("reloaded")
            tokens += _send_every_kind_of_token(issuer, url)
            assert served.stop() == 0
    log = served.log
    assert "DEBUG" in log  # the level really was debug
    assert upstream.seen
    assert upstream.seen[-1].headers["authorization"] == UPSTREAM_SECRET
    for secret in [*tokens, UPSTREAM_SECRET.split()[1], SESSION_KEY]:
        assert secret not in log
        assert secret[-24:] not in log  # nor a tell-tale tail (a JWT's signature)
    assert not JWT_SHAPE.search(log)


def _send_every_kind_of_token(issuer: LocalIssuer, url: str) -> list[str]:
    good = issuer.token(audience=url)
    expired = issuer.token(audience=url, ttl=-600, iat=1)
    wrong_audience = issuer.token(audience="https://elsewhere.example/mcp")
    forged = LocalIssuer(issuer.issuer, kid=issuer.kid).token(audience=url)
    unknown_kid = LocalIssuer(issuer.issuer, kid="unknown").token(audience=url)
    with httpx.Client(timeout=WAIT_S) as http:
        assert post_mcp(http, url, _call("read_thing"), token=good).status_code == 200
        for bad in (expired, wrong_audience, forged, unknown_kid):
            assert post_mcp(http, url, _call("read_thing"), token=bad).status_code == 401
        # A token where none belongs: a second Authorization header, the query, another header.
        http.post(url, headers=[("authorization", f"Bearer {good}"), ("authorization", f"Bearer {forged}")])
        http.post(f"{url}?access_token={good}", json=_call())
        http.post(url, headers={"x-access-token": good, "authorization": f"Basic {good}"}, json=_call())
    return [good, expired, wrong_audience, forged, unknown_kid]


# --- SIGHUP: reload -------------------------------------------------------------------------------


def test_sighup_reloads_a_changed_config(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    _, first_url, second, second_url = two_upstreams
    port = free_port()
    path = write_config(tmp_path / "bastion.yaml", _base(port, first_url))
    with serve_process(path, port) as served, httpx.Client(timeout=WAIT_S) as http:
        base = f"http://127.0.0.1:{port}"
        assert post_mcp(http, f"{base}/extra/mcp", _call()).status_code == 404
        config = _base(port, first_url)
        config["servers"].append({"name": "extra", "upstream": second_url, "auth": False})
        write_config(path, config)
        served.signal(signal.SIGHUP)
        assert "2 server(s)" in served.wait_for_text("reloaded")
        answer = post_mcp(http, f"{base}/extra/mcp", _call())
        assert (answer.status_code, _text(answer)) == (200, "second done tools/call")
        assert len(second.calls) == 1
        assert served.stop() == 0


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ("servers:\n  - name: demo\n    upstreem: x\n", "servers[0].upstreem"),
        ("{{{", "bastion.yaml"),
        (None, "servers[0].upstream_auth.secret"),  # a secret the environment does not have
    ],
)
def test_a_bad_config_is_refused_on_sighup_and_the_old_one_keeps_serving(
    tmp_path: Path,
    two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str],
    bad: str | None,
    named: str,
) -> None:
    first, first_url, _, second_url = two_upstreams
    port = free_port()
    path = write_config(tmp_path / "bastion.yaml", _base(port, first_url))
    with serve_process(path, port) as served, httpx.Client(timeout=WAIT_S) as http:
        if bad is None:
            config = _base(port, second_url)
            config["servers"][0]["upstream_auth"] = {
                "type": "static",
                "secret": {"env": "BASTION_TEST_UNSET"},
            }
            write_config(path, config)
        else:
            path.write_text(bad)
        served.signal(signal.SIGHUP)
        refusal = served.wait_for_text("reload refused")
        assert named in refusal
        assert "ERROR" in refusal
        answer = post_mcp(http, f"http://127.0.0.1:{port}/demo/mcp", _call())
        assert (answer.status_code, _text(answer)) == (200, "first done tools/call")
        assert len(first.calls) == 1
        assert served.stop() == 0
    assert "reloaded" not in served.log


def test_a_request_in_flight_finishes_on_the_config_it_started_with(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    first, first_url, second, second_url = two_upstreams
    port = free_port()
    path = write_config(tmp_path / "bastion.yaml", _base(port, first_url))
    url = f"http://127.0.0.1:{port}/demo/mcp"
    with serve_process(path, port) as served, httpx.Client(timeout=WAIT_S) as http:
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(post_mcp, http, url, _call("slow"))
            assert first.slow_entered.wait(WAIT_S)
            write_config(path, _base(port, second_url))  # the same server, another upstream
            served.signal(signal.SIGHUP)
            assert "1 request(s) in flight" in served.wait_for_text("reloaded")
            # New calls go to the new upstream while the old one still holds the first call.
            fresh = post_mcp(http, url, _call())
            assert _text(fresh) == "second done tools/call"
            first.release.set()
            assert _text(slow.result(WAIT_S)) == "first done tools/call"
        assert [c["params"]["name"] for c in first.calls] == ["slow"]
        assert [c["params"]["name"] for c in second.calls] == ["quick"]
        assert served.stop() == 0


def test_every_worker_reloads_on_sighup(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    _, first_url, _, _ = two_upstreams
    port = free_port()
    path = write_config(tmp_path / "bastion.yaml", _base(port, first_url))
    with serve_process(path, port, "--workers", "2", "--log-format", "json") as served:
        # Each worker says it is ready once its loop handles SIGHUP.
        served.wait_for_line(lambda line: sum("worker" in x and "ready" in x for x in served.lines) == 2)
        served.signal(signal.SIGHUP)
        served.wait_for_line(lambda line: _reloads(served) == 2)
        assert served.stop() == 0
    pids = {json.loads(line)["pid"] for line in served.lines if "reloaded" in line}
    assert len(pids) == 2
    assert os.getpid() not in pids


def _reloads(served: ServeProcess) -> int:
    return sum("reloaded" in line for line in served.lines)


def test_a_session_sealed_before_a_reload_still_opens_after_it(tmp_path: Path) -> None:
    # No sessions.key in the config: the process's own key must outlive a reload, or every
    # client's session would be "not found" after each SIGHUP.
    upstream = RecordingUpstream()
    with serve_asgi(upstream) as up:
        port = free_port()
        path = write_config(tmp_path / "bastion.yaml", _base(port, f"{up.base_url}/mcp"))
        url = f"http://127.0.0.1:{port}/demo/mcp"
        with serve_process(path, port) as served, httpx.Client(timeout=WAIT_S) as http:
            init = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
            opened = post_mcp(http, url, init)
            session = opened.headers["mcp-session-id"]
            assert session != upstream.session_id  # sealed by the gateway
            served.signal(signal.SIGHUP)
            served.wait_for_text("reloaded")
            headers = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
            listed = post_mcp(http, url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers)
            assert listed.status_code == 200
            assert upstream.seen[-1].headers["mcp-session-id"] == upstream.session_id
            assert served.stop() == 0


def test_a_sighup_during_the_drain_is_refused(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    # A reload now would start a gateway (key fetches, pools) that nothing will ever serve.
    first, first_url, _, _ = two_upstreams
    port = free_port()
    path = write_config(tmp_path / "bastion.yaml", _base(port, first_url))
    url = f"http://127.0.0.1:{port}/demo/mcp"
    with serve_process(path, port) as served, httpx.Client(timeout=WAIT_S) as http:
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(post_mcp, http, url, _call("slow"))
            assert first.slow_entered.wait(WAIT_S)
            served.signal(signal.SIGTERM)
            served.wait_for_text("shutting down")
            served.signal(signal.SIGHUP)
            served.wait_for_text("reload refused: the server is shutting down")
            first.release.set()
            assert slow.result(WAIT_S).status_code == 200
        assert served.process.wait(WAIT_S) == 0


# --- TLS termination: curl and Python's ssl against a real serve ------------------------------


def _curl_subject(port: int, ca: Path) -> tuple[str, str]:
    """(the certificate subject curl saw, the body) for one GET /healthz over TLS."""
    done = subprocess.run(
        ["curl", "-sS", "-v", "--cacert", str(ca), f"https://127.0.0.1:{port}/healthz"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=True,
    )
    subject = next(line for line in done.stderr.splitlines() if "subject:" in line)
    return subject, done.stdout


def test_serve_terminates_tls_and_a_sighup_renews_the_certificate_without_dropping_a_connection(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    _, upstream_url, _, _ = two_upstreams
    ca = make_ca(tmp_path / "ca")
    first, renewed = make_leaf(ca, tmp_path, "server-1"), make_leaf(ca, tmp_path, "server-2")
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(first.certificate, live_cert)
    shutil.copy(first.key, live_key)
    port = free_port()
    config = _base(port, upstream_url)
    config["public_base_url"] = f"https://127.0.0.1:{port}"
    config["listen"]["tls"] = {"certificate": str(live_cert), "key": str(live_key), "watch_seconds": 0}
    path = write_config(tmp_path / "bastion.yaml", config)
    with serve_process(path, port) as served:
        assert "(https)" in served.wait_for_text("listening on")
        subject, body = _curl_subject(port, ca.certificate)
        assert "CN=server-1" in subject
        assert json.loads(body) == {"status": "ok"}
        context = ssl.create_default_context(cafile=str(ca.certificate))
        with TlsClient(port, context, WAIT_S) as kept:  # one connection, kept alive throughout
            _post_raw(kept, port)
            first_answer = kept.read_response()
            assert (first_answer.status, first_answer.header("connection")) == (200, None)
            assert kept.peer_name() == "server-1"
            shutil.copy(renewed.certificate, live_cert)
            shutil.copy(renewed.key, live_key)
            served.signal(signal.SIGHUP)
            served.wait_for_text("TLS certificate reloaded")
            served.wait_for_text("reloaded " + str(path))
            assert "CN=server-2" in _curl_subject(port, ca.certificate)[0]
            # The connection opened before the renewal still works: the same socket, served again.
            _post_raw(kept, port)
            assert kept.read_response().status == 200
        assert served.stop() == 0
    assert served.log.count("TLS certificate reloaded") == 1


def test_plain_http_to_a_tls_listener_gets_no_answer_in_clear(
    tmp_path: Path, two_upstreams: tuple[HeldUpstream, str, HeldUpstream, str]
) -> None:
    _, upstream_url, _, _ = two_upstreams
    ca = make_ca(tmp_path / "ca")
    leaf = make_leaf(ca, tmp_path, "server-1")
    port = free_port()
    config = _base(port, upstream_url)
    config["listen"]["tls"] = {"certificate": str(leaf.certificate), "key": str(leaf.key)}
    path = write_config(tmp_path / "bastion.yaml", config)
    with serve_process(path, port) as served, httpx.Client(timeout=WAIT_S) as http:
        with pytest.raises(httpx.TransportError):
            http.get(f"http://127.0.0.1:{port}/healthz")
        assert served.stop() == 0


def _post_raw(client: RawClient, port: int) -> None:
    data = json.dumps(_call()).encode()
    client.send(
        f"POST /demo/mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
