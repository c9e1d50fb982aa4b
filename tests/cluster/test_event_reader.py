"""The reader on a real Redis: several streams as one order, rewinds, and gaps found by
the streams' ordinals (issue 18, defect 8)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from chat_server.cluster import event_reader
from chat_server.cluster.event_reader import Batch, EventReader, Gap, id_order
from chat_server.cluster.scripts import EVENTS, SCRIPTS
from chat_server.cluster.shards import shard_stream, streams_read
from chat_server.cluster.stats import LinkStats
from tests.support.redis_server import RedisProcess

SHARDS = 4


class Reader:
    """An EventReader on its thread, and what it posted."""

    def __init__(self, url: str) -> None:
        self.posted: list[tuple[Any, ...]] = []
        self.stopping = threading.Event()

        def connect(timeout: float) -> redis.Redis:
            return redis.Redis.from_url(url, socket_timeout=timeout, decode_responses=True)

        self.reader = EventReader(
            connect, self.posted.append, self.stopping, 100, SHARDS, LinkStats()
        )
        self.thread = threading.Thread(target=self.reader.run, daemon=True)
        self.thread.start()

    def batches(self, rewinds: int | None = None) -> list[Batch]:
        return [
            p[1]
            for p in list(self.posted)
            if p[0] == "events" and (rewinds is None or p[1].rewinds == rewinds)
        ]

    def ids(self, rewinds: int | None = None) -> list[str]:
        return [entry_id for b in self.batches(rewinds) for entry_id, _ in b.entries]

    def gaps(self) -> list[Gap]:
        return [p[1] for p in list(self.posted) if p[0] == "gap"]

    def stop(self) -> None:
        self.stopping.set()
        self.reader.wake()
        self.thread.join(5)


def wait(check: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def rc(redis_server: RedisProcess) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, decode_responses=True)


@pytest.fixture
def reader(redis_server: RedisProcess) -> Iterator[Reader]:
    r = Reader(redis_server.url)
    yield r
    r.stop()


def message(rc: redis.Redis, stream: str, text: str) -> str:
    """A message written as a node writes it (MESSAGE); returns its id."""
    args = ["t", "g", "", json.dumps({"t": text}), "", 100, "", 0, stream]
    return str(rc.eval(SCRIPTS["message"], 0, *args))


def event(rc: redis.Redis, text: str) -> str:
    """A state event (PUBLISH) in dc:events; returns its id."""
    return str(rc.eval(SCRIPTS["publish"], 0, 0, "t", "g", "", "noop", json.dumps(text)))


def test_streams_are_handed_over_as_one_order_even_when_a_read_is_cut(
    rc: redis.Redis, reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_reader, "READ_COUNT", 7)  # most reads are cut
    start = event(rc, "start")
    written = []
    for i in range(60):
        written.append(message(rc, shard_stream(0), f"m{i}"))
        if i % 4 == 0:
            written.append(message(rc, shard_stream(1), f"n{i}"))
        if i % 9 == 0:
            written.append(event(rc, f"e{i}"))
    reader.reader.follow(streams_read({0, 1}), None)
    reader.reader.resume(start)
    wait(lambda: len(reader.ids()) >= len(written), "every entry handed over")
    assert written == sorted(written, key=id_order)  # one counter for every stream
    assert reader.ids() == written  # in that order, each once
    assert not reader.gaps()
    read = reader.reader.stats.entries_read
    assert read[shard_stream(0)] >= 60 and read[EVENTS] >= 7
    # a shard it does not follow is not read
    message(rc, shard_stream(2), "elsewhere")
    last = message(rc, shard_stream(0), "last")
    wait(lambda: reader.ids()[-1:] == [last], "the last entry")
    assert shard_stream(2) not in read


def test_a_shard_followed_later_is_read_from_the_loops_position(
    rc: redis.Redis, reader: Reader
) -> None:
    start = event(rc, "start")
    reader.reader.follow(streams_read({0}), None)
    reader.reader.resume(start)
    first = message(rc, shard_stream(0), "a")
    wait(lambda: first in reader.ids(), "the first message")
    loop_at = reader.batches()[-1].upto  # what the loop has applied
    before = message(rc, shard_stream(1), "before")  # after loop_at: must be read
    more = message(rc, shard_stream(0), "b")
    wait(lambda: more in reader.ids(), "the next message")
    rewinds = reader.reader.follow(streams_read({0, 1}), loop_at)
    after = message(rc, shard_stream(1), "after")
    wait(lambda: after in reader.ids(rewinds), "the new shard's message")
    assert reader.ids(rewinds) == [before, more, after]  # from loop_at, in order, once
    assert id_order(loop_at.upto) < id_order(before)
    assert not reader.gaps()


def test_gap_in_a_quiet_shard_is_found_when_reading_resumes(
    rc: redis.Redis, reader: Reader
) -> None:
    start = event(rc, "start")
    reader.reader.follow(streams_read({3}), None)
    reader.reader.resume(start)
    seen = message(rc, shard_stream(3), "seen")
    wait(lambda: seen in reader.ids(), "the first message")
    reader.reader.pause()
    for i in range(5):
        message(rc, shard_stream(3), f"missed {i}")
    rc.xtrim(shard_stream(3), maxlen=0)  # trimmed away before the reader came back
    reader.reader.resume(start)
    wait(reader.gaps, "a gap")
    (gap,) = reader.gaps()
    assert list(gap.streams) == [shard_stream(3)] and not gap.data_lost and gap.fresh
    # The next message is read as usual, and no second gap is reported for it.
    after = message(rc, shard_stream(3), "after")
    wait(lambda: after in reader.ids(), "the message after the gap")
    assert len(reader.gaps()) == 1


def test_gap_in_a_busy_shard_is_found_by_its_ordinals(rc: redis.Redis, reader: Reader) -> None:
    start = event(rc, "start")
    reader.reader.follow(streams_read({2}), None)
    reader.reader.resume(start)
    seen = message(rc, shard_stream(2), "seen")
    wait(lambda: seen in reader.ids(), "the first message")
    reader.reader.pause()
    gone = [message(rc, shard_stream(2), f"gone {i}") for i in range(3)]
    for entry_id in gone:
        rc.xdel(shard_stream(2), entry_id)
    kept = message(rc, shard_stream(2), "kept")
    reader.reader.resume(start)
    wait(lambda: kept in reader.ids(), "the message after the gap")
    (gap,) = reader.gaps()
    assert gap.streams == {shard_stream(2): "(" + kept} and gap.until == kept
    assert not gap.data_lost


def test_redis_that_lost_its_data_is_told_from_trimming(rc: redis.Redis, reader: Reader) -> None:
    start = event(rc, "start")
    reader.reader.follow(streams_read({1}), None)
    reader.reader.resume(start)
    seen = message(rc, shard_stream(1), "seen")
    wait(lambda: seen in reader.ids(), "the first message")
    reader.reader.pause()
    rc.flushall()
    fresh = event(rc, "a new beginning")
    reader.reader.resume(start)
    wait(reader.gaps, "a gap")
    assert reader.gaps()[0].data_lost
    wait(lambda: fresh in reader.ids(), "the entry written after the loss")
