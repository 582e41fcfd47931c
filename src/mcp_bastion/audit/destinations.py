"""Where spooled events are delivered: a stream (stdout) or a rotating file (`webhook.py`: HTTP).

A destination takes a batch of whole event lines and either takes all of them or raises;
the spool keeps the batch and offers it again (the same batch, from the same place) until
it is taken. Neither leaves half a line behind: the file is cut back to its last whole line,
a stream that took part of a batch is given exactly the rest on the next try.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from .spool import Batch

__all__ = ["Destination", "RotatingFileDestination", "StreamDestination"]


class Destination(Protocol):
    async def deliver(self, batch: Batch) -> None:
        """Take every line of `batch`, or raise (OSError, or the destination's own error)."""

    async def aclose(self) -> None: ...


class StreamDestination:
    """A file descriptor that cannot be cut back (stdout, a pipe)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._partial: tuple[tuple[int, int], int] | None = None  # (batch start, bytes taken)

    async def deliver(self, batch: Batch) -> None:
        data = memoryview(b"".join(batch.lines))
        taken = 0
        if self._partial is not None and self._partial[0] == batch.start:
            taken = self._partial[1]  # the same batch again: only the rest
        while taken < len(data):
            try:
                taken += os.write(self._fd, data[taken:])
            except OSError:
                self._partial = (batch.start, taken)
                raise
        self._partial = None

    async def aclose(self) -> None:
        return None


class RotatingFileDestination:
    """Appends to `path`; past `max_bytes` the file becomes `path.1` (`path.1` becomes `path.2`,
    … up to `keep`) and a new one starts. `max_bytes` 0: never rotated."""

    def __init__(self, path: str, *, max_bytes: int = 0, keep: int = 0) -> None:
        self._path = Path(path)
        self._max_bytes = max_bytes
        self._keep = keep
        self._fd = self._open()
        # The file's size up to its last whole line. A process killed mid-write may have left
        # part of a batch (Linux stops a write between pages on SIGKILL): that batch was not
        # committed, so it comes again from the spool, and the part is cut off before it.
        self._good = _last_line_end(self._fd)

    async def deliver(self, batch: Batch) -> None:
        data = b"".join(batch.lines)
        if os.fstat(self._fd).st_size != self._good:
            os.ftruncate(self._fd, self._good)  # a write that failed half-way: cut it off first
        written = os.write(self._fd, data)
        if written != len(data):
            os.ftruncate(self._fd, self._good)
            raise OSError(28, "short write to the audit file")
        self._good += written
        if self._max_bytes and self._good >= self._max_bytes:
            self._rotate()

    async def aclose(self) -> None:
        os.close(self._fd)

    def _open(self) -> int:
        return os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _rotate(self) -> None:
        os.close(self._fd)
        for n in range(self._keep - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{n}")
            if older.exists():
                older.replace(self._path.with_name(f"{self._path.name}.{n + 1}"))
        self._path.replace(self._path.with_name(f"{self._path.name}.1"))
        self._fd = self._open()
        self._good = 0


def _last_line_end(fd: int, chunk: int = 65_536) -> int:
    """The offset just past the file's last newline (0 if it has none)."""
    end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - chunk)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0
