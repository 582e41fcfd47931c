"""Audit events: one JSON line each, which no field can break into two (SL-03)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from mcp_bastion.audit import AuditEvent, FileSink, MemorySink, NullSink, StreamSink, sink_for
from mcp_bastion.config.model import AuditConfig


def _event(**overrides: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "time": 1_700_000_000.25,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "server": "demo",
        "method": "tools/call",
        "target": "echo",
        "decision": "allow",
        "reason": "ok",
        "status": 200,
        "latency_ms": 1.5,
        "subject": "alice",
        "client_id": "client-1",
        "issuer": "https://idp.example",
        "token_hash": "0" * 32,
        "protocol_version": "2026-07-28",
        "scopes_required": ("tools.read",),
        "policy_ids": ("only-ops-destructive",),
        "quota": "per-user",
    }
    values.update(overrides)
    return AuditEvent(**values)


def test_event_serializes_to_one_json_line() -> None:
    line = _event().to_json()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert orjson.loads(line) == {
        "event": "mcp.request",
        "time": "2023-11-14T22:13:20.250Z",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "server": "demo",
        "method": "tools/call",
        "target": "echo",
        "decision": "allow",
        "reason": "ok",
        "status": 200,
        "latency_ms": 1.5,
        "subject": "alice",
        "client_id": "client-1",
        "issuer": "https://idp.example",
        "token_hash": "0" * 32,
        "protocol_version": "2026-07-28",
        "scopes_required": ["tools.read"],
        "policy_ids": ["only-ops-destructive"],
        "filters": [],
        "quota": "per-user",
    }


def test_filter_verdicts_serialize_as_a_list_of_entries() -> None:
    line = _event(filters=("arguments:guard:allow", "result:secrets:redact:jwt")).to_json()
    assert orjson.loads(line)["filters"] == ["arguments:guard:allow", "result:secrets:redact:jwt"]


@pytest.mark.parametrize(
    ("seconds", "stamp"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (0.5, "1970-01-01T00:00:00.500Z"),
        (1_700_000_000.123, "2023-11-14T22:13:20.123Z"),
        (1_700_000_000.001, "2023-11-14T22:13:20.001Z"),
        (1_700_000_000.999, "2023-11-14T22:13:20.999Z"),
        (1_700_000_000.9999, "2023-11-14T22:13:21.000Z"),
    ],
)
def test_time_is_utc_with_milliseconds(seconds: float, stamp: str) -> None:
    assert orjson.loads(_event(time=seconds).to_json())["time"] == stamp


FORGERIES = [
    '\r\n{"event":"mcp.request","decision":"allow"}',
    '\n{"decision":"allow"}',
    "\r",
    "\x1b[2J\x1b[1;1H",
    '"},{"decision":"allow',
    "\u2028\u2029",
    "\x00\x07\x08\x0b\x0c\x7f",
]


@pytest.mark.parametrize("field", ["target", "subject", "client_id", "reason", "method", "server", "issuer"])
@pytest.mark.parametrize("hostile", FORGERIES)
def test_sl03_hostile_fields_cannot_forge_a_line(field: str, hostile: str) -> None:
    line = _event(**{field: f"x{hostile}y", "decision": "deny"}).to_json()
    assert line.count(b"\n") == 1
    assert b"\r" not in line
    assert b"\x1b" not in line
    assert b"\x00" not in line
    record = orjson.loads(line)
    assert record[field] == f"x{hostile}y"
    assert record["decision"] == "deny"


def test_sl03_hostile_scope_names_stay_inside_their_array() -> None:
    line = _event(scopes_required=('a"]\n{"x":1}',)).to_json()
    assert line.count(b"\n") == 1
    assert orjson.loads(line)["scopes_required"] == ['a"]\n{"x":1}']


def test_stream_sink_writes_one_line_per_event() -> None:
    stream = io.BytesIO()
    sink = StreamSink(stream)
    sink.emit(_event(target="a\nb"))
    sink.emit(_event(target="c"))
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["target"] for line in lines] == ["a\nb", "c"]


def test_file_sink_appends(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"earlier":true}\n')
    sink = sink_for(AuditConfig(sink="file", path=str(path)))
    assert isinstance(sink, FileSink)
    try:
        sink.emit(_event(target="t1"))
        sink.emit(_event(target="t2"))
    finally:
        sink._stream.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3
    assert [orjson.loads(line).get("target") for line in lines] == [None, "t1", "t2"]


def test_memory_and_null_sinks() -> None:
    memory = MemorySink()
    event = _event()
    memory.emit(event)
    assert memory.events == [event]
    assert NullSink().emit(event) is None


def test_sink_for_each_config() -> None:
    assert isinstance(sink_for(AuditConfig(sink="none")), NullSink)
    assert isinstance(sink_for(AuditConfig(sink="stdout")), StreamSink)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_unicode_line_separators_are_escaped(separator: str) -> None:
    line = _event(subject=f"alice{separator}bob").to_json()
    assert line.decode().splitlines() == [line.decode().rstrip("\n")]
    assert orjson.loads(line)["subject"] == f"alice{separator}bob"


def test_every_event_field_is_in_the_line_with_its_value() -> None:
    """to_json lists the fields one by one (it runs per request): none may be forgotten."""
    event = _event(filters=("result:secrets:allow",))
    record = orjson.loads(event.to_json())
    expected = {name: getattr(event, name) for name in AuditEvent._fields if name not in ("time", "event")}
    expected["scopes_required"] = list(event.scopes_required)
    expected["policy_ids"] = list(event.policy_ids)
    expected["filters"] = list(event.filters)
    assert {k: v for k, v in record.items() if k not in ("event", "time")} == expected
    assert record["event"] == "mcp.request"
    assert record["time"] == "2023-11-14T22:13:20.250Z"
    # The facade's events (facade/_audit.py) carry their own kind in the same member.
    assert orjson.loads(_event(event="facade.consent").to_json())["event"] == "facade.consent"


def test_events_in_the_same_second_keep_their_own_milliseconds() -> None:
    times = [orjson.loads(_event(time=t).to_json())["time"] for t in (1_700_000_000.001, 1_700_000_000.999)]
    assert times == ["2023-11-14T22:13:20.001Z", "2023-11-14T22:13:20.999Z"]
