"""The durable spool: records survive a reopen (a crash), torn and corrupt records are skipped
and counted, a full spool refuses or drops the oldest with a true count."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from mcp_bastion.audit import AuditEvent, Spool, SpoolFull


def _line(n: int) -> bytes:
    return AuditEvent(0.0, "t" * 32, "s", "ping", None, "allow", "ok", 200, 1.0, subject=f"u{n}").to_json()


def _spool(path: Path, **overrides: object) -> Spool:
    options: dict[str, object] = {"max_bytes": 10_000_000, "segment_bytes": 100_000, "drop_oldest": False}
    options.update(overrides)
    return Spool(path, **options)  # type: ignore[arg-type]


def _drain(spool: Spool) -> list[dict[str, object]]:
    events = []
    while (batch := spool.read(100)) is not None:
        events += [orjson.loads(line) for line in batch.lines]
        spool.commit(batch)
    return events


def test_records_come_back_in_order_with_an_id_each(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for n in range(250):
        spool.append(_line(n))
    events = _drain(spool)
    assert [e["subject"] for e in events] == [f"u{n}" for n in range(250)]
    assert len({e["id"] for e in events}) == 250
    assert list(events[0])[:2] == ["id", "event"]  # the id leads; the event is otherwise as emitted
    assert spool.read(100) is None


def test_undelivered_records_survive_a_reopen_and_delivered_ones_do_not_return(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for n in range(10):
        spool.append(_line(n))
    batch = spool.read(4)
    assert batch is not None
    spool.commit(batch)
    ids = [orjson.loads(line)["id"] for line in spool.read(100).lines]  # type: ignore[union-attr]
    spool.close()  # what a kill -9 leaves: records written, the last batch read but not committed
    again = _spool(tmp_path)
    events = _drain(again)
    assert [e["subject"] for e in events] == [f"u{n}" for n in range(4, 10)]
    assert [e["id"] for e in events] == ids  # delivered again with the same ids: a SIEM dedupes


def test_segments_rotate_and_delivered_ones_are_removed(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment_bytes=64 * 1024)
    for n in range(1000):
        spool.append(_line(n))
    lane = spool.path
    assert len(list(lane.glob("*.seg"))) > 3
    assert len(_drain(spool)) == 1000
    assert len(list(lane.glob("*.seg"))) == 1  # only the one being written


def test_each_process_takes_its_own_lane_and_a_dead_ones_is_taken_over(tmp_path: Path) -> None:
    first = _spool(tmp_path)
    second = _spool(tmp_path)  # another worker: the first lane is held (flock)
    assert (first.path.name, second.path.name) == ("lane-0", "lane-1")
    first.append(_line(1))
    first.close()  # the worker died: the kernel released its lock
    third = _spool(tmp_path)
    assert third.path.name == "lane-0"
    assert [e["subject"] for e in _drain(third)] == ["u1"]


def test_a_torn_tail_is_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = _spool(tmp_path)
    for n in range(3):
        spool.append(_line(n))
    spool.close()
    segment = max(spool.path.glob("*.seg"))
    whole = segment.read_bytes()
    with segment.open("ab") as tail:  # a crash (or power loss) mid-write: half a record
        tail.write(whole.splitlines(keepends=True)[0][:40])
    caplog.set_level(logging.ERROR, logger="mcp_bastion.audit")
    again = _spool(tmp_path)
    again.append(_line(3))
    events = _drain(again)
    assert [e["subject"] for e in events] == ["u0", "u1", "u2", "u3"]
    assert again.torn == 1
    assert any("torn or corrupt" in r.getMessage() for r in caplog.records)


def test_a_corrupt_record_is_skipped_and_counted_never_delivered(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for n in range(3):
        spool.append(_line(n))
    spool.close()
    segment = max(spool.path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    middle = data.index(b"u1")
    data[middle : middle + 2] = b"u9"  # one flipped byte: the record's CRC no longer matches
    segment.write_bytes(bytes(data))
    again = _spool(tmp_path)
    assert [e["subject"] for e in _drain(again)] == ["u0", "u2"]
    assert again.torn == 1


def test_zeroes_left_by_a_power_loss_are_not_delivered(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.append(_line(0))
    spool.close()
    segment = max(spool.path.glob("*.seg"))
    with segment.open("ab") as tail:  # the file grew, its data never reached the disk
        tail.write(b"\0" * 300 + b"\n")
    again = _spool(tmp_path)
    assert [e["subject"] for e in _drain(again)] == ["u0"]
    assert again.torn == 1


def test_full_spool_refuses_when_it_may_not_drop(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_bytes=2 * 1_048_576, segment_bytes=256 * 1024)
    stored = 0
    while spool.size + len(_line(stored)) + 30 <= 2 * 1_048_576:
        spool.append(_line(stored))
        stored += 1
    with pytest.raises(SpoolFull):
        spool.append(_line(stored))
    assert spool.size <= 2 * 1_048_576
    assert len(_drain(spool)) == stored  # nothing stored was lost
    spool.append(_line(0))  # delivered records made room again


def test_full_spool_drops_the_oldest_with_a_true_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mcp_bastion.audit")
    spool = _spool(tmp_path, max_bytes=2 * 1_048_576, segment_bytes=256 * 1024, drop_oldest=True)
    appended = 20_000  # about 9 MB of records into 2 MiB
    for n in range(appended):
        spool.append(_line(n))
    assert spool.size <= 2 * 1_048_576
    events = _drain(spool)
    assert spool.dropped + len(events) == appended  # every event is delivered or counted
    subjects = [int(str(e["subject"])[1:]) for e in events]
    assert subjects == list(range(appended - len(events), appended))  # the newest are kept, in order
    assert any("dropped the oldest segment" in r.getMessage() for r in caplog.records)


def test_a_batch_delivered_while_the_spool_dropped_its_segment_is_not_counted_lost(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_bytes=2 * 1_048_576, segment_bytes=256 * 1024, drop_oldest=True)
    for n in range(1000):
        spool.append(_line(n))
    batch = spool.read(100)  # in flight (a slow POST) ...
    assert batch is not None
    appended = 1000
    while spool.dropped == 0:  # ... while new events fill the spool and its segment is dropped
        spool.append(_line(appended))
        appended += 1
    spool.commit(batch)  # ... and then the POST succeeds
    rest = _drain(spool)
    assert len(batch.lines) + spool.dropped + len(rest) == appended  # each event counted once
