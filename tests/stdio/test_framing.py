"""`LineReader`: one JSON-RPC message per line, under a cap that bounds memory, not just lines."""

from __future__ import annotations

import asyncio
import sys
import tracemalloc

from mcp_bastion.stdio.framing import CHUNK_BYTES, LineReader, Oversize


def _reader(data: bytes, cap: int) -> LineReader:
    stream = asyncio.StreamReader()
    stream.feed_data(data)
    stream.feed_eof()
    return LineReader(stream, cap)


async def _all(reader: LineReader) -> list[bytes | Oversize]:
    items: list[bytes | Oversize] = []
    while (item := await reader.next()) is not None:
        items.append(item)
    return items


async def test_lines_are_split_and_a_last_line_without_newline_is_kept() -> None:
    assert await _all(_reader(b'{"a":1}\n\n{"b":2}\nend', 4096)) == [b'{"a":1}', b"", b'{"b":2}', b"end"]


async def test_a_line_over_the_cap_is_dropped_with_its_edges_and_the_next_line_survives() -> None:
    line = b'{"id":7,' + b"x" * 20_000 + b',"tail":"id":9}'
    items = await _all(_reader(line + b"\nnext\n", 4096))
    [oversize, following] = items
    assert isinstance(oversize, Oversize)
    assert oversize.size == len(line)
    assert oversize.head.startswith(b'{"id":7,')
    assert oversize.tail.endswith(b'"id":9}')
    assert following == b"next"


async def test_an_oversize_line_at_eof_is_reported() -> None:
    [item] = await _all(_reader(b"y" * 10_000, 4096))
    assert isinstance(item, Oversize)
    assert item.size == 10_000


async def test_a_50_mb_line_is_never_held_whole() -> None:
    # A real pipe, as from a plug-in: the writer blocks while the reader drops what it read.
    size = 50 * 1_048_576
    script = f"import sys; sys.stdout.buffer.write(b'z' * {size} + b'\\nafter\\n')"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    reader = LineReader(proc.stdout, 1_048_576)
    tracemalloc.start()
    try:
        first, second = await reader.next(), await reader.next()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await proc.wait()
    assert isinstance(first, Oversize)
    assert first.size == size
    assert second == b"after"
    assert peak < 1_048_576 + 8 * CHUNK_BYTES + 1_048_576  # the cap, a few chunks, slack: not 50 MB
