"""docs/audit.schema.json against real events: the gateway served on loopback with its
production sink (a spool delivering to a file), in front of a real upstream and issuer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import AuditEvent
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.facade._audit import FACADE_EVENTS, REFRESHED

from ..support.gateway import gateway_config, post_mcp, serve_gateway
from ..support.issuer import running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "audit.schema.json").read_text())


def _events(tmp_path: Path) -> list[dict[str, Any]]:
    audit_file = tmp_path / "audit.jsonl"
    audit = {"sink": "file", "path": str(audit_file), "spool": {"dir": str(tmp_path / "spool")}}
    with running_issuer() as issuer, serve_asgi(RecordingUpstream()) as up:
        sock = bind_loopback()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = parse_config(gateway_config(base, issuer.issuer, {"rec": f"{up.base_url}/mcp"}, audit=audit))
        gateway = build_gateway(LoadedConfig(config, {}))  # the sink the config names
        url = f"{base}/rec/mcp"
        token = issuer.token(audience=url)
        with serve_gateway(gateway, sock, config), httpx.Client(timeout=10) as http:
            assert (
                post_mcp(http, url, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, token=token).status_code
                == 200
            )
            listed = post_mcp(http, url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, token=token)
            assert listed.status_code == 200
            call = {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "nope", "arguments": {}},
            }
            post_mcp(http, url, call, token=token)
            assert post_mcp(http, url, {"jsonrpc": "2.0", "id": 4, "method": "ping"}).status_code == 401
            post_mcp(http, url, b"{not json", token=token)
            http.get(url, headers={"authorization": "Bearer a", "Authorization": "Bearer b"})
        # Leaving the block shut the gateway down: the spool delivered everything to the file.
    return [orjson.loads(line) for line in audit_file.read_bytes().splitlines()]


def test_every_event_of_a_running_gateway_matches_the_published_schema(tmp_path: Path) -> None:
    events = _events(tmp_path)
    assert len(events) >= 6
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in events:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        assert errors == [], event
    assert {e["decision"] for e in events} >= {"allow", "deny"}
    assert all("id" in e for e in events)  # spooled: each has its id


def test_the_schema_names_exactly_the_fields_an_event_has() -> None:
    # A field added to AuditEvent and not to the schema (or the other way) fails here: the
    # schema is versioned (docs/audit.md), so it must not drift from the code.
    emitted = set(
        orjson.loads(AuditEvent(0.0, "0" * 32, "s", "ping", None, "allow", "ok", 200, 0.0).to_json())
    )
    assert set(SCHEMA["properties"]) == emitted | {"id"}
    assert set(SCHEMA["required"]) == emitted


def test_the_schema_refuses_what_an_event_never_holds() -> None:
    good = orjson.loads(AuditEvent(0.0, "a" * 32, "s", "ping", None, "allow", "ok", 200, 0.0).to_json())
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert validator.is_valid(good)
    for bad in ({**good, "token": "eyJ..."}, {**good, "decision": "maybe"}, {**good, "trace_id": "x"}):
        assert not validator.is_valid(bad)


def test_the_schema_names_exactly_the_kinds_of_event() -> None:
    # The facade's event kinds (facade/_audit.py) and the schema's enum may not drift apart.
    assert set(SCHEMA["properties"]["event"]["enum"]) == {"mcp.request", REFRESHED, *FACADE_EVENTS.values()}
    good = orjson.loads(AuditEvent(0.0, "a" * 32, "s", "ping", None, "allow", "ok", 200, 0.0).to_json())
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert validator.is_valid({**good, "event": "facade.consent"})
    assert not validator.is_valid({**good, "event": "facade.anything"})
