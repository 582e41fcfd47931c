"""Reading a plug-in's stdout as hostile input: newline-delimited JSON-RPC under a line cap.

MCP's stdio transport frames one JSON-RPC message per line. A plug-in can write anything:
a banner before its first message, a line with NUL bytes, or one 50 MB line. `LineReader`
reads in chunks and never holds more than `max_line_bytes` of a line: a longer line is
dropped as it streams past, keeping only its first and last few bytes (where a response's
`id` is written, by the Python and the TypeScript SDKs respectively) so the caller can tell
which call it answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = ["CHUNK_BYTES", "LineReader", "Oversize"]

CHUNK_BYTES = 65_536
EDGE_BYTES = 4096  # kept from each end of an oversize line


@dataclass(frozen=True, slots=True)
class Oversize:
    """A line longer than the cap: its size and edges, the rest was never buffered."""

    size: int
    head: bytes
    tail: bytes


class LineReader:
    """`await reader.next()` → the next line (without its newline), an `Oversize`, or None at EOF."""

    def __init__(self, stream: asyncio.StreamReader, max_line_bytes: int) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._eof = False

    async def next(self) -> bytes | Oversize | None:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                if end > self._max:
                    return await self._drop(end)
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > self._max:
                return await self._drop(None)
            if self._eof:
                if not self._buffer:
                    return None
                line, self._buffer = bytes(self._buffer), bytearray()  # a last line without newline
                return line
            await self._fill()

    async def _fill(self) -> None:
        chunk = await self._stream.read(CHUNK_BYTES)
        if chunk:
            self._buffer += chunk
        else:
            self._eof = True

    async def _drop(self, end: int | None) -> Oversize:
        """Skip the rest of an oversize line, keeping only its edges."""
        head = bytes(self._buffer[:EDGE_BYTES])
        size = 0
        while end is None:
            # Keep the last EDGE_BYTES, discard the rest: memory stays at the cap plus a chunk.
            keep = max(len(self._buffer) - EDGE_BYTES, 0)
            size += keep
            del self._buffer[:keep]
            if self._eof:
                end = len(self._buffer)
                break
            await self._fill()
            found = self._buffer.find(b"\n")
            end = found if found >= 0 else None
        tail = bytes(self._buffer[max(end - EDGE_BYTES, 0) : end])
        size += end
        del self._buffer[: end + 1]
        return Oversize(size, head, tail)
