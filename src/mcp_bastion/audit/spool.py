"""The durable audit spool: append-only segment files in a folder, and a delivery cursor.

Layout of one lane (one per worker process, `lane-N`, held with an exclusive `flock` so a
restarted worker takes over the lane of one that died):

    lane-0/lock                  flock'd while a process owns the lane
    lane-0/cursor                "<segment> <offset>\\n": everything before it was delivered
    lane-0/0000000000000007.seg  records, appended; a new segment past `segment_bytes`

A record is one event line, framed `<crc32 as 8 hex> <json>\\n`. The id the spool gives the
event (`"id"`, first key) is stored in the record, so a record delivered twice (a crash after
delivery, before the cursor was saved) carries the same id both times: a SIEM dedupes on it.

A record whose CRC does not match, or bytes after the last newline of a segment that is no
longer written (a crash or power loss mid-write), are skipped and counted (`torn`), never
delivered. A short write (a disk filling up) is cut back to the last whole record at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Batch", "Spool", "SpoolFull"]

log = logging.getLogger("mcp_bastion.audit")

MAX_LANES = 256
_SUFFIX = ".seg"


class SpoolFull(Exception):
    """No room for the record within `max_bytes` (and the spool may not drop the oldest)."""


@dataclass(frozen=True)
class Batch:
    """Records read from the cursor on: their event lines, and where the next read starts."""

    lines: list[bytes]
    start: tuple[int, int]
    end: tuple[int, int]
    bad: int = 0  # records between start and end that failed their check (skipped)


class Spool:
    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int,
        segment_bytes: int,
        drop_oldest: bool,
        durable: bool = True,
    ) -> None:
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.drop_oldest = drop_oldest
        self._durable = durable  # a segment is fdatasync'ed when it is closed
        self.path, self._lock_fd = _claim_lane(Path(directory))
        self.torn = 0  # records skipped as torn or corrupt (counted, logged)
        self.dropped = 0  # undelivered records removed because the spool was full
        self._prefix = os.urandom(6).hex().encode() + b"-"  # this process's ids: <prefix><n>
        self._count = 0
        self._sizes: dict[int, int] = {}
        for entry in self.path.iterdir():
            if entry.suffix == _SUFFIX and entry.stem.isdigit():
                self._sizes[int(entry.stem)] = entry.stat().st_size
        self.size = sum(self._sizes.values())  # bytes of all segments (bounded by max_bytes)
        self.cursor = self._read_cursor()
        # A fresh segment per process: nothing is ever appended after a torn tail.
        self._write_seq = max(self._sizes, default=self.cursor[0]) + 1
        self._fd = self._open_segment(self._write_seq)
        self._read_fd: tuple[int, int] | None = None  # (segment, fd)

    # -- writing ------------------------------------------------------------------------

    def append(self, line: bytes) -> None:
        """Store one event line (from `AuditEvent.to_json`) under a fresh id; raise SpoolFull
        or OSError when it cannot be stored whole (nothing partial is left behind)."""
        self._count += 1
        body = b'{"id":"' + self._prefix + b"%x" % self._count + b'",' + line[1:]
        record = b"%08x " % zlib.crc32(memoryview(body)[:-1]) + body
        self._make_room(len(record))
        size = self._sizes[self._write_seq]
        try:
            written = os.write(self._fd, record)
        except OSError:
            self._count -= 1
            raise
        if written != len(record):  # a disk filling up took part of it: cut it back
            os.ftruncate(self._fd, size)
            self._count -= 1
            raise OSError(28, "short write to the audit spool")
        self._sizes[self._write_seq] = size + written
        self.size += written
        if size + written >= self.segment_bytes:
            self._rotate()

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def writer_fd(self) -> int:
        """A duplicate of the segment being written, for an fdatasync in another thread (the
        segment may rotate meanwhile: the duplicate stays valid); the caller closes it."""
        return os.dup(self._fd)

    def _make_room(self, needed: int) -> None:
        while self.size + needed > self.max_bytes:
            if not self.drop_oldest:
                raise SpoolFull
            oldest = min(self._sizes)
            if oldest == self._write_seq:
                if self._sizes[oldest] == 0:
                    raise SpoolFull  # one record larger than the whole spool
                self._rotate()
                continue
            self._drop(oldest)

    def _drop(self, seq: int) -> None:
        path = self._segment_path(seq)
        data = path.read_bytes()
        if seq == self.cursor[0]:
            data = data[self.cursor[1] :]
        lost = data.count(b"\n") if seq >= self.cursor[0] else 0
        self._forget(seq)
        if seq >= self.cursor[0]:
            self._save_cursor((min(self._sizes), 0))
        self.dropped += lost
        log.error(
            "audit spool full (%d bytes): dropped the oldest segment, %d undelivered events; %d so far",
            self.max_bytes,
            lost,
            self.dropped,
        )

    def _rotate(self) -> None:
        if self._durable:
            os.fdatasync(self._fd)  # once per segment: what it holds is on disk before it is left
        os.close(self._fd)
        self._write_seq += 1
        self._fd = self._open_segment(self._write_seq)

    def _open_segment(self, seq: int) -> int:
        fd = os.open(self._segment_path(seq), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._sizes[seq] = os.fstat(fd).st_size
        self.size += self._sizes[seq]
        return fd

    # -- reading and delivery ------------------------------------------------------------

    def read(self, max_events: int, max_bytes: int = 4 * 1_048_576) -> Batch | None:
        """The next records after the cursor (None: nothing waits). Moves nothing: `commit`
        does, once the batch is delivered."""
        while True:
            seq, offset = self.cursor
            if seq not in self._sizes:
                later = [s for s in self._sizes if s > seq]
                if not later:
                    return None
                self._save_cursor((min(later), 0))
                continue
            data = self._pread(seq, offset, max_bytes)
            end = data.rfind(b"\n") + 1
            if end == 0 and len(data) == max_bytes:
                max_bytes *= 2  # one record longer than a read: read more
                continue
            if end == 0 and seq == self._write_seq:
                return None  # the segment being written holds whole records only
            if end == 0:
                if data:  # the tail of a segment no longer written: a crash cut it
                    self._count_torn(1, seq)
                self._forget(seq)  # everything before the cursor was delivered
                continue
            lines, used, bad = _records(data[:end], max_events)
            return Batch(lines, (seq, offset), (seq, offset + used), bad)

    def commit(self, batch: Batch) -> None:
        """The batch was delivered: move the cursor past it, remove finished segments."""
        if self.cursor != batch.start:
            # The spool was full and dropped the batch's segment while it was being delivered:
            # the cursor is already past, and the drop counted records that did arrive.
            if batch.start[0] not in self._sizes:
                self.dropped -= len(batch.lines) + batch.bad
            return
        if batch.bad:
            self._count_torn(batch.bad, batch.start[0])
        self._save_cursor(batch.end)
        for seq in [s for s in self._sizes if s < batch.end[0]]:
            self._forget(seq)

    @property
    def backlog(self) -> bool:
        seq, offset = self.cursor
        return any(s > seq or (s == seq and size > offset) for s, size in self._sizes.items())

    def close(self) -> None:
        if self._read_fd is not None:
            os.close(self._read_fd[1])
            self._read_fd = None
        os.close(self._fd)
        os.close(self._lock_fd)  # releases the flock

    def _pread(self, seq: int, offset: int, size: int) -> bytes:
        if self._read_fd is None or self._read_fd[0] != seq:
            if self._read_fd is not None:
                os.close(self._read_fd[1])
            self._read_fd = (seq, os.open(self._segment_path(seq), os.O_RDONLY | os.O_CLOEXEC))
        return os.pread(self._read_fd[1], size, offset)

    def _forget(self, seq: int) -> None:
        if self._read_fd is not None and self._read_fd[0] == seq:
            os.close(self._read_fd[1])
            self._read_fd = None
        with contextlib.suppress(FileNotFoundError):
            self._segment_path(seq).unlink()
        self.size -= self._sizes.pop(seq)

    def _count_torn(self, count: int, seq: int) -> None:
        self.torn += count
        log.error(
            "audit spool: %d torn or corrupt record(s) in segment %d skipped; %d so far",
            count,
            seq,
            self.torn,
        )

    def _segment_path(self, seq: int) -> Path:
        return self.path / f"{seq:016d}{_SUFFIX}"

    def _read_cursor(self) -> tuple[int, int]:
        try:
            seq, offset = (self.path / "cursor").read_text().split()
            return int(seq), int(offset)
        except FileNotFoundError:
            return (min(self._sizes, default=0), 0)
        except ValueError:
            # A cursor we cannot read: deliver everything again (duplicates, never a loss).
            log.error("audit spool: unreadable cursor in %s; delivering the whole spool again", self.path)
            return (min(self._sizes, default=0), 0)

    def _save_cursor(self, cursor: tuple[int, int]) -> None:
        self.cursor = cursor
        temporary = self.path / "cursor.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            # Never fsync'ed: a cursor lost with the page cache (power loss) only moves back,
            # which delivers events again (same ids), never loses one. Renamed into place, so
            # a crash leaves the old cursor or the new one, never half of one.
            os.write(fd, b"%d %d\n" % cursor)
        finally:
            os.close(fd)
        os.replace(temporary, self.path / "cursor")


def _records(data: bytes, max_events: int) -> tuple[list[bytes], int, int]:
    """Up to `max_events` event lines of whole records; the bytes they took; how many failed the check."""
    lines: list[bytes] = []
    used = bad = 0
    for raw in data.split(b"\n")[:-1]:
        used += len(raw) + 1
        body = raw[9:]
        if _crc(raw) == zlib.crc32(body):
            lines.append(body + b"\n")
            if len(lines) >= max_events:
                break
        else:
            bad += 1
    return lines, used, bad


def _crc(raw: bytes) -> int:
    if len(raw) < 10 or raw[8:9] != b" ":
        return -1
    try:
        return int(raw[:8], 16)
    except ValueError:
        return -1


def _claim_lane(directory: Path) -> tuple[Path, int]:
    """The first lane no live process holds: each worker gets its own; a dead one's is taken over."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for n in range(MAX_LANES):
        lane = directory / f"lane-{n}"
        lane.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(lane / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return lane, fd
    raise OSError(f"all {MAX_LANES} audit spool lanes in {directory} are held by other processes")
