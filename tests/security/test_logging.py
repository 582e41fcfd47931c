"""Catalog section H (SL-03): hostile strings in tool names, subjects, client ids, User-Agent and
session ids cannot forge audit lines or response headers. The real gateway over loopback; the
audit feed is also written as the JSON lines every sink writes, and read back."""

from __future__ import annotations

import base64
import json
import re
import socket
from pathlib import Path

from .support import (
    MODERN,
    AuditLines,
    Stack,
    call,
    es256_header,
    forge,
    initialize,
    issuer_signer,
    request_head,
    rpc,
    stack,
    standard_claims,
)

FORGED = '\r\n{"event":"mcp.request","decision":"allow","subject":"root"}\n\x1b[2J\x1b]0;pwned\x07\u2028'
_HEADER_LINE = re.compile(rb"^[A-Za-z0-9-]+: [\x20-\x7e]*\Z")


def raw_exchange(s: Stack, body: bytes, token: str | None, extra: bytes = b"") -> tuple[int, bytes]:
    """Send one request on a socket; return the status and the raw response head."""
    with socket.create_connection((s.host, s.port), timeout=5) as conn:
        conn.sendall(request_head(s, token, body_length=len(body)) + extra + b"\r\n" + body)
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    return int(head.split(b" ", 2)[1]), head


def assert_clean_head(head: bytes) -> None:
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 ")
    for line in lines[1:]:
        assert _HEADER_LINE.match(line), f"response header line {line!r}"
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert b"x-injected" not in names
    assert names.count(b"content-length") + names.count(b"transfer-encoding") == 1


def test_sl03_audit_lines_and_response_headers_cannot_be_forged(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    feed = AuditLines(path)
    with stack(audit=feed) as s:
        hostile_token = s.token(subject="alice" + FORGED, client_id="cli" + FORGED, scopes="tools.read")
        statuses = []
        # A tool name carrying a forged line and terminal escapes (denied: unknown, needs write).
        statuses.append(raw_exchange(s, json.dumps(call("read_thing" + FORGED, 1)).encode(), s.token()))
        # The same in the 2026-07-28 era, with the name base64-encoded in Mcp-Name as it must be.
        body = rpc(
            "tools/call", {"name": "x" + FORGED, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}
        )
        encoded = base64.b64encode(("x" + FORGED).encode()).decode()
        modern = (
            f"MCP-Protocol-Version: {MODERN}\r\nMcp-Method: tools/call\r\nMcp-Name: =?base64?{encoded}?=\r\n"
        )
        statuses.append(raw_exchange(s, json.dumps(body).encode(), s.token(), modern.encode()))
        # A subject and a client id carrying them (allowed: the token is valid).
        statuses.append(raw_exchange(s, json.dumps(rpc("ping", id=2)).encode(), hostile_token))
        statuses.append(raw_exchange(s, json.dumps(initialize(3)).encode(), hostile_token))
        # A User-Agent with escapes (not audited, not forwarded: the gateway sends its own).
        statuses.append(
            raw_exchange(
                s,
                json.dumps(rpc("ping", id=4)).encode(),
                s.token(),
                b"User-Agent: evil\x1b[2J\x1b]0;x\x07\r\n",
            )
        )
        # A session id with an escape, and a token whose typ carries one.
        statuses.append(
            raw_exchange(
                s, json.dumps(rpc("ping", id=5)).encode(), s.token(), b"Mcp-Session-Id: abc\x1b[2J\r\n"
            )
        )
        bad_typ = forge(
            es256_header(s.idp, typ="JWT" + FORGED), standard_claims(s), signer=issuer_signer(s.idp)
        )
        statuses.append(raw_exchange(s, json.dumps(rpc("ping", id=6)).encode(), bad_typ))

        codes = [status for status, _ in statuses]
        assert codes[:4] == [403, 403, 200, 200]
        assert codes[4] in (200, 400)  # 400: the HTTP parser refuses control bytes in a header
        assert codes[5] == 400
        assert codes[6] == 401
        for _, head in statuses:
            assert_clean_head(head)
        if codes[4] == 200:
            assert s.upstream.calls("ping")[-1].headers["user-agent"].startswith("mcp-bastion/")
        # Requests the HTTP parser refused (control bytes in a header) answer in text/plain and
        # never reach the gateway; every other one leaves exactly one audit event.
        reaching_the_gateway = sum(1 for _, head in statuses if b"content-type: application/json" in head)
        s.gateway.audit.wait_for(lambda e: len(feed.events) >= reaching_the_gateway)
    feed.close()

    data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    assert len(lines) == len(feed.events)  # one line per event: nothing split, nothing forged
    records = [json.loads(line) for line in lines]
    for line, record in zip(lines, records, strict=True):
        assert record["event"] == "mcp.request"
        assert not re.search(rb"[\x00-\x1f\x7f]", line), f"raw control byte in {line!r}"
        assert b"\xe2\x80\xa8" not in line  # U+2028 escaped too (str.splitlines breaks on it)
    targets = {r["target"] for r in records}
    assert {"read_thing" + FORGED, "x" + FORGED} <= targets
    subjects = {r["subject"] for r in records}
    assert "alice" + FORGED in subjects
    assert "cli" + FORGED in {r["client_id"] for r in records}
    assert [r["decision"] for r in records if r["target"] == "read_thing" + FORGED] == ["deny"]
    assert "root" not in subjects
