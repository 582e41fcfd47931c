"""W3C Trace Context: a valid traceparent is continued, anything else starts a new trace."""

from __future__ import annotations

import os
import re

import pytest

from mcp_bastion.trace import TraceContext

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "flags"),
    [
        (f"00-{TRACE}-{PARENT}-01", "01"),
        (f"00-{TRACE}-{PARENT}-00", "00"),
        (f"  00-{TRACE}-{PARENT}-01\t", "01"),
        (f"00-{TRACE}-{PARENT}-ff", "ff"),
    ],
)
def test_valid_traceparent_is_continued_with_a_new_span(value: str, flags: str) -> None:
    context = TraceContext.from_header(value)
    assert (context.trace_id, context.flags) == (TRACE, flags)
    assert re.fullmatch(r"[0-9a-f]{16}", context.span_id)
    assert context.span_id != PARENT
    assert context.header() == f"00-{TRACE}-{context.span_id}-{flags}".encode()


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"01-{TRACE}-{PARENT}-01",
        f"ff-{TRACE}-{PARENT}-01",
        f"00-{TRACE.upper()}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}0-{PARENT}-01",
        f"00-{TRACE}-{PARENT[:-1]}-01",
        f"00-{TRACE}-{PARENT}-1",
        f"00-{TRACE}-{PARENT}-01-extra",
        f"00_{TRACE}_{PARENT}_01",
        f"00-{TRACE}-{PARENT}-01\r\nX-Injected: 1",
        f"00-{TRACE[:-1]}g-{PARENT}-01",
    ],
)
def test_invalid_traceparent_starts_a_new_trace(value: str | None) -> None:
    context = TraceContext.from_header(value)
    assert context.trace_id != TRACE
    assert re.fullmatch(r"[0-9a-f]{32}", context.trace_id)
    assert context.trace_id != "0" * 32
    assert re.fullmatch(r"[0-9a-f]{16}", context.span_id)
    assert context.flags == "01"


def test_header_is_one_well_formed_traceparent() -> None:
    header = TraceContext.from_header(f"00-{TRACE}-{PARENT}-01\n").header()
    assert re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", header)


def test_new_traces_and_spans_are_random() -> None:
    contexts = [TraceContext.from_header(None) for _ in range(100)]
    assert len({c.trace_id for c in contexts}) == 100
    assert len({c.span_id for c in contexts}) == 100
    continued = [TraceContext.from_header(f"00-{TRACE}-{PARENT}-01") for _ in range(100)]
    assert len({c.span_id for c in continued}) == 100


def test_ids_stay_distinct_across_buffer_refills() -> None:
    """Ids come from a 4 KiB buffer of OS randomness: crossing refills must not repeat any."""
    traces = [TraceContext.from_header(None) for _ in range(1000)]  # 24 bytes each: ~6 refills
    ids = [t.trace_id for t in traces] + [t.span_id for t in traces]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", t.trace_id) for t in traces)
    assert all(re.fullmatch(r"[0-9a-f]{16}", t.span_id) for t in traces)


def test_a_forked_worker_does_not_repeat_its_parents_ids() -> None:
    TraceContext.from_header(None)  # the buffer holds unused bytes now
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, through the pipe
        os.write(write_end, TraceContext.from_header(None).trace_id.encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child_id)
    assert child_id != TraceContext.from_header(None).trace_id
