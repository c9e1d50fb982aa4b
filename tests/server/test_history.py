"""HistoryStore: chathistory semantics on every storage path, persistence, concurrency.

The same queries run against each way a store can hold messages (all in the cache, on
disk behind a tiny cache, appended but not yet written, reloaded after a restart,
memory only) and are compared with a plain list model of the chathistory spec, so
the fast paths cannot drift from the slow one. A few hand-written cases pin the
model itself down.

Messages carry msgids the way the server mints them, ``<name>-<seq in hex>``, and are
appended with that sequence: the store finds a msgid through the sequence it names
and no other msgid (see test_msgid_lookups_*).
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_server.history import (
    DEFAULT_CACHE_BYTES,
    HistoryStore,
    HistoryStoreError,
    Ref,
    StoredMessage,
    dm_key,
    format_time,
    parse_time,
)
from chat_server.history_cache import (
    CONVERSATION_BYTES,
    TargetCache,
    entries_bytes,
    runs_bytes,
)
from chat_server.history_model import msgid_seq
from chat_server.history_writer import BLOCK_SEQS, Run, connect_for_writing, write_rows

ROOM = "#room"
BASE_MS = 1_700_000_000_000
N = 50
DM = dm_key("Alice", "bob")


def at(ms_offset: int) -> float:
    """A ms-exact float time, so stored and reloaded messages compare equal."""
    return (BASE_MS + ms_offset) / 1000


def room_msg(
    i: int, target: str = ROOM, offset: int | None = None, seq: int | None = None
) -> StoredMessage:
    """Message i of a conversation; pairs (0,1), (2,3), ... share a timestamp.

    Its msgid is ``<name>-<seq in hex>``, name ``m07`` (``#other-m07`` elsewhere); by
    default seq is 3i + 1 in ROOM, 3i + 3 in DM and 3i + 2 in any other conversation,
    so the three can be appended interleaved, in sequence order (see fill)."""
    ms = (i // 2) * 250 if offset is None else offset
    tags = (("+draft/reply", f"m{i - 1:02d}"),) if i % 7 == 3 else ()
    if i % 11 == 5:
        tags += (("bot", ""),)
    if seq is None:
        seq = 3 * i + (1 if target == ROOM else 3 if target == DM else 2)
    name = f"{target}-m{i:02d}" if target != ROOM else f"m{i:02d}"
    return StoredMessage(
        msgid=f"{name}-{seq:x}",
        time=at(ms),
        target=target,
        source=f"nick{i % 3}!u@h",
        command="NOTICE" if i % 5 == 4 else "PRIVMSG",
        recipient=target.upper() if target.startswith("#") else "Alice",
        text=f"message {i} ✓",
        tags=tags,
    )


def ms_of(t: float) -> int:
    return round(t * 1000)


def put(store: HistoryStore, msg: StoredMessage) -> None:
    """Append ``msg`` with the sequence its msgid names, as the server does."""
    store.append(msg, msgid_seq(msg.msgid))


def mref(name: str) -> Ref:
    """A msgid reference to ROOM's message ``m<i>`` (as room_msg(i) makes it)."""
    return Ref(msgid=room_msg(int(name[1:])).msgid)


def name_of(msgid: str) -> str:
    """The name part of a msgid: ``m07`` of ``m07-16``."""
    return msgid.rsplit("-", 1)[0]


class Model:
    """The chathistory spec over a plain list: slow, obvious, the reference."""

    def __init__(self, msgs: list[StoredMessage]) -> None:
        # Stable sort: equal times keep insertion order.
        self.ordered = sorted(msgs, key=lambda m: ms_of(m.time))

    def _index(self, ref: Ref) -> int | None:
        for i, m in enumerate(self.ordered):
            if m.msgid == ref.msgid:
                return i
        return None

    def _known(self, ref: Ref) -> bool:
        return ref.time is not None or self._index(ref) is not None

    def _is_after(self, i: int, ref: Ref) -> bool:
        if ref.time is not None:
            return ms_of(self.ordered[i].time) > ms_of(ref.time)
        j = self._index(ref)
        return j is not None and i > j

    def _is_before(self, i: int, ref: Ref) -> bool:
        if ref.time is not None:
            return ms_of(self.ordered[i].time) < ms_of(ref.time)
        j = self._index(ref)
        return j is not None and i < j

    def _point(self, ref: Ref) -> tuple[int, int]:
        if ref.time is not None:
            return (ms_of(ref.time), -1)
        j = self._index(ref)
        assert j is not None
        return (ms_of(self.ordered[j].time), j)

    def _where(self, keep: Callable[[int], bool]) -> list[StoredMessage]:
        return [m for i, m in enumerate(self.ordered) if keep(i)]

    def latest(self, limit: int, after: Ref | None = None) -> list[StoredMessage]:
        if limit <= 0 or (after is not None and not self._known(after)):
            return []
        found = self._where(lambda i: after is None or self._is_after(i, after))
        return found[-limit:]

    def before(self, ref: Ref, limit: int) -> list[StoredMessage]:
        if limit <= 0 or not self._known(ref):
            return []
        return self._where(lambda i: self._is_before(i, ref))[-limit:]

    def after(self, ref: Ref, limit: int) -> list[StoredMessage]:
        if limit <= 0 or not self._known(ref):
            return []
        return self._where(lambda i: self._is_after(i, ref))[:limit]

    def between(self, start: Ref, end: Ref, limit: int) -> list[StoredMessage]:
        if limit <= 0 or not self._known(start) or not self._known(end):
            return []
        if self._point(start) <= self._point(end):
            found = self._where(lambda i: self._is_after(i, start) and self._is_before(i, end))
            return found[:limit]
        found = self._where(lambda i: self._is_after(i, end) and self._is_before(i, start))
        return found[-limit:]

    def around(self, ref: Ref, limit: int) -> list[StoredMessage]:
        if limit <= 0 or not self._known(ref):
            return []
        older = self._where(lambda i: self._is_before(i, ref))
        newer = self._where(lambda i: not self._is_before(i, ref))
        n_old = min(len(older), limit // 2)
        n_new = min(len(newer), limit - n_old)
        n_old = min(len(older), limit - n_new)
        return older[len(older) - n_old :] + newer[:n_new]


ROOM_MSGS = [room_msg(i) for i in range(N)]
# Other conversations, interleaved with the room's, to prove targets never mix.
OTHER_MSGS = [room_msg(i, "#other", offset=(N - i) * 90) for i in range(N)]
DM_MSGS = [room_msg(i, DM, offset=i * 400 + 7) for i in range(20)]
MODEL = Model(ROOM_MSGS)

MSGID_REFS = ["m00", "m01", "m02", "m13", "m24", "m25", "m44", "m48", "m49"]
TIME_REFS = [-1000, 0, 250, 3000, 3100, 6000, 6125, 50_000]  # ms offsets
M03_SEQ, M13_SEQ = 10, 40  # room_msg(3) is "m03-a", room_msg(13) "m13-28"
# msgids that name no message of ROOM: not ours at all, another conversation's, ours
# with another prefix, upper-case or zero-padded, past the newest sequence, no number.
UNKNOWN_MSGIDS = ["nope", OTHER_MSGS[10].msgid, f"zz-{M13_SEQ:x}", f"m03-{M03_SEQ:X}",
                  f"m13-0{M13_SEQ:x}", "m49-fffffff", "m49-", "-", "", "m13-²"]  # fmt: skip
REFS = (
    [mref(x) for x in MSGID_REFS]
    + [Ref(time=at(x)) for x in TIME_REFS]
    + [Ref(msgid=x) for x in UNKNOWN_MSGIDS[:3]]
)
LIMITS = [1, 2, 3, 5, 6, 7, 49, 100]
MODES = ["memory", "cache", "sqlite", "unflushed", "restart-small", "restart-big"]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Callable[..., HistoryStore]]:
    """Make stores under tmp_path; all are closed after the test."""
    made: list[HistoryStore] = []

    def make(name: str | None = "h.db", **kwargs: object) -> HistoryStore:
        store = HistoryStore(None if name is None else tmp_path / name, **kwargs)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def fill(store: HistoryStore) -> None:
    for a, b, c in zip(ROOM_MSGS, OTHER_MSGS, DM_MSGS + [None] * N, strict=False):
        put(store, a)
        put(store, b)
        if c is not None:
            put(store, c)


@pytest.fixture(params=MODES)
def filled(request: pytest.FixtureRequest, stores: Callable[..., HistoryStore]) -> HistoryStore:
    """A store holding ROOM/OTHER/DM messages, reached through one storage path."""
    mode: str = request.param
    if mode == "memory":
        store = stores(None)
        fill(store)
    elif mode == "cache":
        store = stores(cache_per_target=1000)
        fill(store)
        store.flush()
    elif mode == "sqlite":
        store = stores(cache_per_target=5, max_batch=16)
        fill(store)
        store.flush()
    elif mode == "unflushed":
        store = stores(cache_per_target=5, flush_interval=600, max_batch=100_000)
        fill(store)
        assert store.stats["written"] == 0  # every query must see unwritten messages
    else:
        first = stores(cache_per_target=1000)
        fill(first)
        first.close()
        store = stores(cache_per_target=5 if mode == "restart-small" else 1000)
    return store


def ids(msgs: list[StoredMessage]) -> list[str]:
    """The messages' names (``m07``), in order."""
    return [name_of(m.msgid) for m in msgs]


# -- every query, every path, against the model ------------------------------------------


def test_latest_matches_model(filled: HistoryStore) -> None:
    for limit in [0, *LIMITS]:
        assert filled.latest(ROOM, limit) == MODEL.latest(limit), limit
        for ref in REFS:
            assert filled.latest(ROOM, limit, ref) == MODEL.latest(limit, ref), (limit, ref)


@pytest.mark.parametrize("query", ["before", "after", "around"])
def test_single_ref_queries_match_model(filled: HistoryStore, query: str) -> None:
    for limit in [0, *LIMITS]:
        for ref in REFS:
            got = getattr(filled, query)(ROOM, ref, limit)
            assert got == getattr(MODEL, query)(ref, limit), (query, limit, ref)


def test_between_matches_model(filled: HistoryStore) -> None:
    for limit in [1, 3, 7, 100]:
        for start in REFS:
            for end in REFS:
                got = filled.between(ROOM, start, end, limit)
                assert got == MODEL.between(start, end, limit), (limit, start, end)


def test_dm_and_other_targets_are_separate(filled: HistoryStore) -> None:
    assert filled.latest(DM, 100) == DM_MSGS
    assert filled.latest("#other", 100) == Model(OTHER_MSGS).latest(100)
    assert filled.latest("#nobody", 10) == []
    assert filled.before(DM, mref("m10"), 10) == []  # ROOM's msgid names nothing in DM


def test_targets_on_every_path(filled: HistoryStore) -> None:
    keys = [ROOM, "#other", DM, "#nobody"]
    everything = filled.targets(keys, Ref(time=at(-10_000)), Ref(time=at(100_000)), 10)
    newest = {
        ROOM: ROOM_MSGS[-1].time,
        "#other": OTHER_MSGS[0].time,
        DM: DM_MSGS[-1].time,
    }
    assert everything == sorted(newest.items(), key=lambda kv: kv[1])
    # The window only counts messages strictly inside it: ROOM at 3000 ms is m24/m25,
    # excluded, so its newest inside (0, 3000) is m22/m23 at 2750 ms.
    window = filled.targets(keys, Ref(time=at(0)), Ref(time=at(3000)), 10)
    assert dict(window)[ROOM] == at(2750)
    assert dict(window)[DM] == at(2807)
    assert dict(window)["#other"] == at(2970)
    assert [k for k, _ in window] == [ROOM, DM, "#other"]


# -- hand-written cases that pin the model down ------------------------------------------


@pytest.mark.parametrize("mode", ["memory", "sqlite"])
def test_examples(stores: Callable[..., HistoryStore], mode: str) -> None:
    store = stores(None) if mode == "memory" else stores(cache_per_target=5)
    for m in ROOM_MSGS:
        put(store, m)
    store.flush()
    assert ids(store.latest(ROOM, 3)) == ["m47", "m48", "m49"]
    assert ids(store.latest(ROOM, 3, mref("m10"))) == ["m47", "m48", "m49"]
    assert ids(store.latest(ROOM, 10, mref("m46"))) == ["m47", "m48", "m49"]
    assert ids(store.before(ROOM, mref("m10"), 3)) == ["m07", "m08", "m09"]
    assert ids(store.after(ROOM, mref("m10"), 3)) == ["m11", "m12", "m13"]
    assert ids(store.between(ROOM, mref("m10"), mref("m14"), 50)) == [
        "m11",
        "m12",
        "m13",
    ]
    # Backwards BETWEEN counts from the start side and still returns oldest first.
    assert ids(store.between(ROOM, mref("m20"), mref("m10"), 3)) == [
        "m17",
        "m18",
        "m19",
    ]
    assert ids(store.around(ROOM, mref("m25"), 5)) == ["m23", "m24", "m25", "m26", "m27"]
    assert ids(store.around(ROOM, mref("m01"), 5)) == ["m00", "m01", "m02", "m03", "m04"]
    assert ids(store.around(ROOM, mref("m49"), 3)) == ["m47", "m48", "m49"]
    # Timestamps are exclusive: m10 and m11 share 1250 ms, so both are left out.
    t10 = Ref(time=ROOM_MSGS[10].time)
    assert ids(store.before(ROOM, t10, 3)) == ["m07", "m08", "m09"]
    assert ids(store.after(ROOM, t10, 3)) == ["m12", "m13", "m14"]
    assert ids(store.around(ROOM, t10, 4)) == ["m08", "m09", "m10", "m11"]
    assert store.before(ROOM, Ref(msgid="unknown"), 5) == []
    assert store.latest(ROOM, 5, Ref(msgid="unknown")) == []


def test_targets_limit_and_direction(stores: Callable[..., HistoryStore]) -> None:
    store = stores(cache_per_target=2)
    named: dict[str, StoredMessage] = {}
    for n, key in enumerate(["#a", "#b", "#c", "#d"]):
        for k in range(3):
            msg = room_msg(k, key, offset=n * 1000 + k, seq=store.next_seq)
            put(store, msg)
            named[name_of(msg.msgid)] = msg
    store.flush()
    keys = ["#a", "#b", "#c", "#d"]
    lo, hi = Ref(time=at(-1)), Ref(time=at(10_000))
    assert [k for k, _ in store.targets(keys, lo, hi, 2)] == ["#a", "#b"]
    assert [k for k, _ in store.targets(keys, hi, lo, 2)] == ["#c", "#d"]
    assert store.targets(keys, lo, hi, 1) == [("#a", at(2))]
    # A window that cuts #b: its newest message inside is the one at 1001 ms.
    assert dict(store.targets(keys, Ref(time=at(1000)), Ref(time=at(1002)), 9)) == {"#b": at(1001)}
    assert store.targets(keys, Ref(msgid=named["#b-m01"].msgid), hi, 9)[0] == ("#b", at(1002))
    assert store.targets(keys, Ref(msgid="missing"), hi, 9) == []


# -- ordering ------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [1, 3, 1000])
def test_equal_times_keep_insertion_order(stores: Callable[..., HistoryStore], cache: int) -> None:
    store = stores(cache_per_target=cache, max_batch=4)
    same = [room_msg(i, offset=500) for i in range(12)]
    for m in same:
        put(store, m)
    assert store.latest(ROOM, 12) == same
    store.close()
    reopened = stores(cache_per_target=cache)
    assert reopened.latest(ROOM, 12) == same
    assert ids(reopened.after(ROOM, mref("m05"), 3)) == ["m06", "m07", "m08"]
    assert ids(reopened.before(ROOM, mref("m05"), 2)) == ["m03", "m04"]


@pytest.mark.parametrize("cache", [3, 1000])
def test_late_message_is_placed_by_time(stores: Callable[..., HistoryStore], cache: int) -> None:
    """A clock step back (or a late relay) must not break the order or hide the message."""
    store = stores(cache_per_target=cache, flush_interval=600, max_batch=100_000)
    for i in range(10):
        put(store, room_msg(i, offset=1000 + i * 10))
    late = room_msg(99, offset=1005)
    put(store, late)
    assert ids(store.latest(ROOM, 3, Ref(time=at(1000)))) == ["m07", "m08", "m09"]
    assert ids(store.after(ROOM, mref("m00"), 2)) == ["m99", "m01"]
    assert ids(store.before(ROOM, mref("m01"), 5)) == ["m00", "m99"]
    store.flush()
    assert ids(store.latest(ROOM, 100)) == ["m00", "m99"] + [f"m{i:02d}" for i in range(1, 10)]


# -- persistence and modes ----------------------------------------------------------------


def test_restart_sees_everything_flushed(stores: Callable[..., HistoryStore]) -> None:
    first = stores(cache_per_target=10, max_batch=7)
    fill(first)
    first.flush()
    assert first.stats["written"] == first.stats["appended"] == 2 * N + len(DM_MSGS)
    assert first.stats["batches"] >= (2 * N + len(DM_MSGS)) // 7
    first.close()
    second = stores(cache_per_target=10)
    assert second.latest(ROOM, 100) == ROOM_MSGS
    assert second.latest(DM, 100) == DM_MSGS
    # New messages continue the sequence after the old ones, even at an equal time.
    extra = room_msg(77, offset=ms_of(ROOM_MSGS[-1].time) - BASE_MS)
    second.append(extra)
    assert second.latest(ROOM, 2) == [ROOM_MSGS[-1], extra]
    second.close()
    third = stores(cache_per_target=1)
    assert third.latest(ROOM, 100) == [*ROOM_MSGS, extra]


def test_close_writes_without_flush(stores: Callable[..., HistoryStore], tmp_path: Path) -> None:
    store = stores(flush_interval=600, max_batch=100_000)
    for m in ROOM_MSGS:
        store.append(m)
    store.close()
    store.close()  # idempotent
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("SELECT SUM(count) FROM messages").fetchone() == (N,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with pytest.raises(RuntimeError):
        store.append(ROOM_MSGS[0])


def test_memory_only_keeps_the_newest(stores: Callable[..., HistoryStore]) -> None:
    store = stores(None, cache_per_target=10)
    for m in ROOM_MSGS:
        store.append(m)  # numbered by the store: their msgids are aliases (as in a cluster)
    store.flush()
    assert store.latest(ROOM, 100) == ROOM_MSGS[-10:]
    assert store.before(ROOM, mref("m45"), 100) == ROOM_MSGS[40:45]
    assert store.after(ROOM, mref("m01"), 3) == []  # forgotten: unknown msgid
    assert len(store.cache.get(ROOM).aliases) == 10  # type: ignore[union-attr]
    assert store.stats == {"appended": N, "written": 0, "batches": 0, "failed": 0}


# -- errors --------------------------------------------------------------------------------


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HistoryStoreError, match="cannot open history database"):
        HistoryStore(bad)


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HistoryStoreError, match="cannot open history database"):
        HistoryStore(blocker / "h.db")


def test_foreign_or_newer_database_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryStoreError, match="newer"):
        HistoryStore(newer)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE messages (id INTEGER, body TEXT)")
    with pytest.raises(HistoryStoreError, match="unexpected columns"):
        HistoryStore(foreign)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        HistoryStore(None, cache_per_target=0)
    with pytest.raises(ValueError):
        HistoryStore(None, cache_bytes=-1)
    with pytest.raises(HistoryStoreError):
        HistoryStore(":memory:")


# -- concurrency ---------------------------------------------------------------------------


def test_append_while_writer_writes(stores: Callable[..., HistoryStore]) -> None:
    """Appends from this thread race the writer; queries in between see every message."""
    store = stores(cache_per_target=50, flush_interval=0.001, max_batch=64)
    total = 20_000
    for i in range(total):
        seq = store.next_seq
        msg = StoredMessage(f"c{i}-{seq:x}", at(i // 3), ROOM, "a!b@c", "PRIVMSG", ROOM, str(i))
        store.append(msg, seq)
        if i % 2500 == 2499:
            newest = store.latest(ROOM, 1)
            assert newest[0].msgid == msg.msgid
            assert ids(store.after(ROOM, Ref(msgid="c0-1"), 2)) == ["c1", "c2"]
            assert len(store.before(ROOM, Ref(msgid=msg.msgid), 300)) == 300
    store.flush()
    assert store.stats["written"] == total
    assert store.stats["batches"] > 1
    got = store.latest(ROOM, total)
    assert ids(got) == [f"c{i}" for i in range(total)]


def test_appends_from_two_threads(stores: Callable[..., HistoryStore]) -> None:
    store = stores(cache_per_target=20, flush_interval=0.002, max_batch=50)
    errors: list[BaseException] = []

    def writer(target: str) -> None:
        try:
            for i in range(3000):
                store.append(room_msg(i, target, offset=i))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("#x", "#y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store.flush()
    for target in ("#x", "#y"):
        assert [m.text for m in store.latest(target, 5000)] == [
            f"message {i} ✓" for i in range(3000)
        ]


# -- timestamps, refs, keys ----------------------------------------------------------------


def test_format_and_parse_known_values() -> None:
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(1704067200.5) == "2024-01-01T00:00:00.500Z"
    assert format_time(1704067199.9996) == "2024-01-01T00:00:00.000Z"  # rounds to ms
    assert parse_time("2024-01-01T00:00:00.000Z") == 1704067200.0
    assert parse_time("2024-01-01T00:00:00Z") == 1704067200.0
    assert parse_time("2024-01-01T00:00:00.123999Z") == 1704067200.123
    assert parse_time("1969-12-31T23:59:59.999Z") == -0.001


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2024-01-01T00:00:00.000",
        "2024-01-01 00:00:00.000Z",
        "2024-13-01T00:00:00.000Z",
        "2023-02-29T00:00:00.000Z",
        "2024-01-01T24:00:00.000Z",
        "2024-01-01T00:00:00.Z",
        "2024-1-01T00:00:00.000Z",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00.000Z",  # non-ASCII digits
        " 2024-01-01T00:00:00.000Z",
    ],
)
def test_parse_time_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_time(bad)


MS_RANGE = st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999)


@given(MS_RANGE)
def test_time_round_trip_from_ms(ms: int) -> None:
    text = format_time(ms / 1000)
    assert len(text) == 24
    assert parse_time(text) == ms / 1000
    assert format_time(parse_time(text)) == text


@given(st.datetimes(timezones=st.none()))
def test_time_round_trip_from_text(when: datetime) -> None:
    # %Y is not zero-padded before year 1000, hence the explicit year.
    text = f"{when.year:04d}-{when:%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"
    assert format_time(parse_time(text)) == text


def test_ref_parse() -> None:
    assert Ref.parse("*") is None
    assert Ref.parse("msgid=abc") == Ref(msgid="abc")
    assert Ref.parse("timestamp=2024-01-01T00:00:00.000Z") == Ref(time=1704067200.0)
    for bad in ["", "abc", "msgid=", "time=2024-01-01T00:00:00.000Z", "timestamp=yesterday"]:
        with pytest.raises(ValueError):
            Ref.parse(bad)
    with pytest.raises(ValueError):
        Ref()
    with pytest.raises(ValueError):
        Ref(msgid="a", time=1.0)


def test_dm_key_is_symmetric_and_casefolded() -> None:
    assert dm_key("Bob", "alice") == dm_key("ALICE", "bob") == "dm:alice bob"
    assert dm_key("Zed[", "zed{") == "dm:zed[ zed{"  # ascii casemapping: [ is not {


class _FlakyConnection:
    """Wraps the writer's connection; the first ``failures`` executemany calls fail."""

    def __init__(self, real: sqlite3.Connection, failures: int) -> None:
        self.real = real
        self.failures = failures

    @property
    def in_transaction(self) -> bool:
        return self.real.in_transaction

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        return self.real.execute(sql, *args)

    def executemany(self, sql: str, rows: object) -> sqlite3.Cursor:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return self.real.executemany(sql, rows)  # type: ignore[arg-type]


def _rows(msgs: list[StoredMessage]) -> list[Run]:
    """One run per message, numbered from 1, as the writer process receives them."""
    return [
        (
            i + 1,
            round(m.time * 1000),
            m.target,
            m.source,
            m.command,
            m.recipient,
            m.tags,
            [m.msgid],
            [m.text],
        )
        for i, m in enumerate(msgs)
    ]


def test_failed_commit_is_retried(stores: Callable[..., HistoryStore], tmp_path: Path) -> None:
    stores().close()  # creates the schema
    conn = _FlakyConnection(connect_for_writing(tmp_path / "h.db"), failures=2)
    assert write_rows(conn, _rows(ROOM_MSGS[:10])) == (10, 0)  # type: ignore[arg-type]
    conn.real.close()
    assert stores(cache_per_target=2).latest(ROOM, 20) == ROOM_MSGS[:10]


def test_commit_gives_up_after_repeated_failures(
    stores: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    stores().close()
    conn = _FlakyConnection(connect_for_writing(tmp_path / "h.db"), failures=100)
    assert write_rows(conn, _rows(ROOM_MSGS[:3])) == (0, 3)  # type: ignore[arg-type]
    conn.real.close()
    assert stores().latest(ROOM, 20) == []


def test_writer_process_is_restarted_when_it_dies(stores: Callable[..., HistoryStore]) -> None:
    store = stores(cache_per_target=2)
    store.append(ROOM_MSGS[0])
    store.flush()
    child = store._process._proc  # type: ignore[union-attr]
    assert child is not None
    child.kill()
    child.wait()
    for m in ROOM_MSGS[1:10]:
        store.append(m)
    store.flush()
    assert store.stats["written"] == 10
    assert store.stats["failed"] == 0
    store.close()
    assert stores(cache_per_target=2).latest(ROOM, 20) == ROOM_MSGS[:10]


# -- random histories ------------------------------------------------------------------------


def assert_answers_like_model(store: HistoryStore, sent: list[StoredMessage], limit: int) -> None:
    """Every kind of query on #a, by msgid and by time, gives the model's answer."""
    model = Model([m for m in sent if m.target == "#a"])
    refs = [Ref(msgid=m.msgid) for m in sent[:: max(1, len(sent) // 6)]]
    refs += [Ref(time=at(t)) for t in (-5, 0, 55, 150, 305)]
    refs.append(Ref(msgid="zz-1"))  # not a msgid of any message: unknown
    assert store.latest("#a", limit) == model.latest(limit)
    for ref in refs:
        assert store.latest("#a", limit, ref) == model.latest(limit, ref)
        assert store.before("#a", ref, limit) == model.before(ref, limit)
        assert store.after("#a", ref, limit) == model.after(ref, limit)
        assert store.around("#a", ref, limit) == model.around(ref, limit)
        for end in refs[::2]:
            assert store.between("#a", ref, end, limit) == model.between(ref, end, limit)


EVENTS = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(["#a", "#b"]), st.booleans()),
    min_size=1,
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(EVENTS, st.integers(1, 4), st.integers(1, 8))
def test_random_histories_match_model(
    events: list[tuple[int, str, bool]], cache: int, limit: int
) -> None:
    """Arbitrary times (ties, steps back), a tiny cache, flushes at random points."""
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(Path(tmp) / "h.db", cache_per_target=cache, flush_interval=600)
        try:
            sent: list[StoredMessage] = []
            for n, (offset, target, flush_now) in enumerate(events):
                seq = store.next_seq
                msg = StoredMessage(f"x{n}-{seq:x}", at(offset * 10), target, "s!u@h", "PRIVMSG",
                                    "t", "")  # fmt: skip
                store.append(msg, seq)
                sent.append(msg)
                if flush_now:
                    store.flush()
            assert_answers_like_model(store, sent, limit)
        finally:
            store.close()


RUN_EVENTS = st.lists(
    st.tuples(
        st.integers(0, 30), st.sampled_from(["#a", "#b", "#c"]), st.integers(0, 12), st.booleans()
    ),
    min_size=1,
    max_size=60,
)
# The default budget (never reached here), none at all (every append and query drops
# every other conversation), and room for about two small conversations.
BUDGETS = st.sampled_from([DEFAULT_CACHE_BYTES, 0, 6000])


@settings(max_examples=80, deadline=None)
@given(RUN_EVENTS, st.integers(1, 12), st.integers(1, 8), BUDGETS)
def test_random_runs_match_model(
    events: list[tuple[int, str, int, bool]], cache: int, limit: int, budget: int
) -> None:
    """Runs of lines (as the server's fast path appends them) mixed with single appends:
    whole runs leave a small cache, whole conversations leave under a byte budget, both
    spill while uncommitted, and queries turn them into entries at any point; the
    answers are the model's."""
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(Path(tmp) / "h.db", cache_per_target=cache, flush_interval=600,
                             cache_bytes=budget)  # fmt: skip
        try:
            sent: list[StoredMessage] = []
            for n, (offset, target, length, flush_now) in enumerate(events):
                ms = BASE_MS + offset * 10
                seq = store.next_seq
                if length == 0:  # a single append, the general path
                    msg = StoredMessage(f"y{n}-{seq:x}", ms / 1000, target, "o!u@h", "NOTICE", "T",
                                        "n")  # fmt: skip
                    store.append(msg, seq)
                    sent.append(msg)
                else:
                    msgids = [f"p-{seq + i:x}" for i in range(length)]
                    texts = [f"{n}.{i}" for i in range(length)]
                    store.append_run(target, seq, ms, "r!u@h", "T", msgids, texts)
                    sent += [
                        StoredMessage(m, ms / 1000, target, "r!u@h", "PRIVMSG", "T", t)
                        for m, t in zip(msgids, texts, strict=True)
                    ]
                if flush_now:
                    store.flush()
                if n % 9 == 8:  # a query in between makes entries of the runs so far
                    assert store.latest("#a", limit) == Model(
                        [m for m in sent if m.target == "#a"]
                    ).latest(limit)
            assert_answers_like_model(store, sent, limit)
            store.flush()
            assert store.stats["written"] == len(sent)
            store.close()
            # Reopened, everything comes from the rows on disk (a row per run).
            store = HistoryStore(Path(tmp) / "h.db", cache_per_target=cache, flush_interval=600,
                                 cache_bytes=budget)  # fmt: skip
            assert_answers_like_model(store, sent, limit)
        finally:
            store.close()


# -- msgid lookups without an msgid index ----------------------------------------------------


def test_server_style_msgids_are_found_by_seq_after_restart(
    stores: Callable[..., HistoryStore],
) -> None:
    first = stores(cache_per_target=2)
    start = first.next_seq
    sent = []
    for i in range(20):
        seq = start + 3 * i  # the server's counter also numbers TAGMSGs: gaps are normal
        msg = StoredMessage(f"abcd-{seq:x}", at(i), ROOM, "s!u@h", "PRIVMSG", ROOM, f"m{i}")
        first.append(msg, seq)
        sent.append(msg)
    assert first.next_seq == start + 3 * 19 + 1
    first.close()
    again = stores(cache_per_target=2)  # a cold cache: lookups go to SQLite
    assert again.next_seq == start + 3 * 19 + 1
    assert again.after(ROOM, Ref(msgid=sent[4].msgid), 3) == sent[5:8]
    assert again.before(ROOM, Ref(msgid="zz-" + sent[4].msgid.split("-")[1]), 3) == []
    with pytest.raises(ValueError, match="below next_seq"):
        again.append(sent[0], start)


def test_a_run_is_one_row_and_reads_back_message_by_message(
    stores: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    first = stores(cache_per_target=1)
    seq = first.next_seq
    ids_ = [f"ab-{seq + i:x}" for i in range(7)]
    # Each run in a batch of its own (several runs of one room in a batch make a block).
    first.append_run(ROOM, seq, BASE_MS, "s!u@h", ROOM, ids_[:3], ["one", "two", ""])
    first.flush()
    # A line break inside a text (not from the wire, but the API allows it) cannot be
    # joined on: that run is stored a row per message.
    first.append_run(ROOM, seq + 3, BASE_MS + 5, "s!u@h", ROOM, ids_[3:5], ["a\nb", "c"])
    first.flush()
    first.append_run(ROOM, seq + 5, BASE_MS + 9, "s!u@h", ROOM, ids_[5:], ["d", "e"])
    first.close()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        rows = conn.execute("SELECT seq, msgids, texts, count FROM messages").fetchall()
    conn.close()
    assert rows == [
        (seq, "\n".join(ids_[:3]), "one\ntwo\n", 3),
        (seq + 3, ids_[3], "a\nb", 1),
        (seq + 4, ids_[4], "c", 1),
        (seq + 5, "\n".join(ids_[5:]), "d\ne", 2),
    ]
    again = stores(cache_per_target=1)  # cold: every answer is read from those rows
    texts = ["one", "two", "", "a\nb", "c", "d", "e"]
    assert [m.text for m in again.latest(ROOM, 10)] == texts
    assert [m.text for m in again.after(ROOM, Ref(msgid=ids_[1]), 3)] == texts[2:5]
    assert [m.text for m in again.before(ROOM, Ref(msgid=ids_[3]), 2)] == ["two", ""]
    assert [m.text for m in again.after(ROOM, Ref(msgid=ids_[5]), 5)] == ["e"]
    assert [m.msgid for m in again.around(ROOM, Ref(msgid=ids_[4]), 3)] == ids_[3:6]
    # Inside a run by time: all its messages share one ms.
    assert [m.text for m in again.before(ROOM, Ref(time=at(9)), 10)] == texts[:5]
    assert again.next_seq == seq + 7
    # An empty or foreign msgid finds nothing, and reads no row to find it out.
    read = again.reader.rows_read
    assert again.before(ROOM, Ref(msgid=""), 5) == []
    assert again.after(ROOM, Ref(msgid="i"), 5) == []
    assert again.reader.rows_read == read


def test_version_1_database_becomes_version_5_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY, msgid TEXT NOT NULL,"
            " time_ms INTEGER NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,"
            " command TEXT NOT NULL, recipient TEXT NOT NULL, text TEXT NOT NULL,"
            " tags TEXT NOT NULL DEFAULT '')"
        )
        conn.execute("CREATE INDEX messages_by_msgid ON messages (msgid)")
        conn.execute(
            "INSERT INTO messages VALUES (7, 'old-style-id', ?, ?, 's!u@h', 'PRIVMSG', ?, ?, '')",
            (BASE_MS, ROOM, ROOM, "hi"),
        )
        conn.execute(
            "INSERT INTO messages VALUES (8, 'dm-id', ?, ?, 'a!u@h', 'PRIVMSG', 'Zed', ?, '')",
            (BASE_MS, dm_key("alice", "zed"), "psst"),
        )
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = HistoryStore(path, cache_per_target=1)
    try:
        assert store.next_seq == 9
        assert [m.text for m in store.around(ROOM, Ref(time=at(0)), 5)] == ["hi"]
        # Not "<prefix>-<seq>": such an old msgid is not looked for (no scan), by design.
        assert store.around(ROOM, Ref(msgid="old-style-id"), 5) == []
        assert store.dm_peers("ALICE") == {"zed"} and store.dm_peers("zed") == {"alice"}
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(messages)")}
        rows = conn.execute("SELECT seq, msgids, texts, count FROM messages").fetchall()
    conn.close()
    assert "messages_by_msgid" not in indexes
    assert rows == [(7, "old-style-id", "hi", 1), (8, "dm-id", "psst", 1)]


def test_a_batch_that_cannot_be_written_stays_visible_and_is_written_later(
    stores: Callable[..., HistoryStore], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """While no writer process can run, appended messages stay answerable even after
    they leave a tiny cache; once one can, they are written, oldest first."""
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    store = stores(cache_per_target=2)
    assert store.latest(ROOM, 1) == []  # a loaded cache: evictions now matter
    for m in ROOM_MSGS[:5]:
        put(store, m)
    store.flush()  # answers: the writer thread survives a child it cannot start
    assert store.stats["written"] == 0 and store.stats["failed"] == 0
    assert store._pending == []
    for m in ROOM_MSGS[5:8]:  # pushes the unwritten ones out of the cache of 2
        put(store, m)
    store.flush()
    assert store.latest(ROOM, 20) == ROOM_MSGS[:8]
    assert store.before(ROOM, Ref(msgid=ROOM_MSGS[3].msgid), 2) == ROOM_MSGS[1:3]
    monkeypatch.undo()  # the next try starts a child again
    store.flush()
    assert store.stats["written"] == 8 and store.stats["failed"] == 0
    assert store.latest(ROOM, 20) == ROOM_MSGS[:8]
    store.close()
    assert stores(cache_per_target=2).latest(ROOM, 20) == ROOM_MSGS[:8]


def test_unwritable_history_is_given_up_past_its_bound_and_at_close(
    stores: Callable[..., HistoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that stays broken costs bounded memory: past retry_max messages waiting,
    the oldest are counted lost (and leave queries once out of the cache)."""
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    store = stores(cache_per_target=2, retry_max=4)
    assert store.latest(ROOM, 1) == []
    for m in ROOM_MSGS[:6]:
        store.append(m)
    store.flush()
    assert store.stats["failed"] == 2 and store.stats["written"] == 0
    assert store.latest(ROOM, 20) == ROOM_MSGS[2:6]
    store.close()  # nothing can write the other four either
    assert store.stats["failed"] == 6


def test_runs_are_stored_with_consecutive_sequences_and_survive_a_reopen(
    stores: Callable[..., HistoryStore],
) -> None:
    store = stores(cache_per_target=2, max_batch=2)
    store.append_run("#r", 5, 1_700_000_000_123, "a!u@h", "#R", ["x-5", "x-6", "x-7"],
                     ["one", "two", "three"], (("bot", ""),))  # fmt: skip
    store.append(StoredMessage("x-8", 1_700_000_000.124, "#r", "b!u@h", "PRIVMSG", "#R", "four"))
    with pytest.raises(ValueError):
        store.append_run("#r", 7, 1_700_000_000_125, "a!u@h", "#R", ["x-7"], ["again"])
    store.flush()
    assert store.stats["written"] == 4
    store.close()
    reopened = stores(cache_per_target=2)
    got = reopened.latest("#r", 10)
    assert [(m.msgid, m.text, m.source, m.tags) for m in got] == [
        ("x-5", "one", "a!u@h", (("bot", ""),)),
        ("x-6", "two", "a!u@h", (("bot", ""),)),
        ("x-7", "three", "a!u@h", (("bot", ""),)),
        ("x-8", "four", "b!u@h", ()),
    ]
    assert {m.time for m in got[:3]} == {1_700_000_000.123}
    assert reopened.next_seq == 9
    assert [m.text for m in reopened.before("#r", Ref(msgid="x-7"), 10)] == ["one", "two"]


def test_runs_that_leave_the_cache_before_they_are_written_stay_visible(
    stores: Callable[..., HistoryStore],
) -> None:
    store = stores(cache_per_target=3, flush_interval=600, max_batch=100_000)
    assert store.latest("#r", 1) == []  # loads the (empty) cache: queries now use it
    sent: list[str] = []
    for i in range(6):  # 12 messages through a cache of 3, none written yet
        seq = store.next_seq
        texts = [f"{i}a", f"{i}b"]
        store.append_run("#r", seq, BASE_MS + i, "s!u@h", "#r", [f"q-{seq:x}", f"q-{seq + 1:x}"],
                         texts)  # fmt: skip
        sent += texts
    assert store.stats["written"] == 0
    assert [m.text for m in store.latest("#r", 20)] == sent
    assert [m.text for m in store.after("#r", Ref(msgid="q-1"), 20)] == sent[1:]
    store.flush()
    assert [m.text for m in store.latest("#r", 20)] == sent


# -- blocks: a batch's runs of one conversation in one row ----------------------------------


def block_rows(path: Path, target: str) -> list[tuple[int, int]]:
    """(first seq, message count) of the target's block rows."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT seq, count FROM messages WHERE target = ? AND runs IS NOT NULL ORDER BY seq",
            (target,),
        ).fetchall()
    conn.close()
    return rows


def test_a_batch_of_runs_is_one_block_and_reads_back_exactly(
    stores: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    """Different senders, commands, tags and times in one batch: one row per room,
    and every field comes back as it went in, from any query and after a restart."""
    store = stores(cache_per_target=1, flush_interval=600)
    made = [room_msg(i, offset=i * 7) for i in range(20)]
    made += [room_msg(i, "#other", offset=i * 20) for i in range(5)]
    seqs = []
    msgs = []
    for msg in sorted(made, key=lambda m: m.time):  # two rooms interleaved by seq
        seq = store.next_seq
        msg = msg._replace(msgid=f"{name_of(msg.msgid)}-{seq:x}")  # numbered as appended
        seqs.append(seq)
        msgs.append(msg)
        store.append(msg, seq)
    store.close()
    assert block_rows(tmp_path / "h.db", ROOM) == [(seqs[0], 20)]
    assert len(block_rows(tmp_path / "h.db", "#other")) == 1
    again = stores(cache_per_target=1)  # cold: every answer is read from the blocks
    room = [m for m in msgs if m.target == ROOM]
    assert again.latest(ROOM, 50) == room
    assert again.after(ROOM, Ref(msgid=room[7].msgid), 3) == room[8:11]
    assert again.before(ROOM, Ref(msgid=room[7].msgid), 3) == room[4:7]
    assert again.around(ROOM, Ref(msgid=room[19].msgid), 3) == room[17:]
    assert again.before(ROOM, Ref(time=at(56)), 2) == room[6:8]
    assert again.latest("#other", 50) == [m for m in msgs if m.target == "#other"]
    assert again.next_seq == seqs[-1] + 1


def test_blocks_keep_their_bounds_and_order_when_the_clock_steps_back(
    stores: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    """Blocks split where time goes back or spans more than BLOCK_SPAN_MS; blocks that
    overlap in time (the clock stepped back between batches) still answer in key order,
    and a server-style msgid inside any of them is found after a restart."""
    store = stores(cache_per_target=1, flush_interval=600)
    sent: list[StoredMessage] = []

    def send(offsets: list[int], target: str = ROOM) -> None:
        for ms in offsets:
            seq = store.next_seq
            msg = StoredMessage(f"srv-{seq:x}", at(ms), target, "s!u@h", "PRIVMSG", "T", f"{ms}")
            store.append(msg, seq)
            sent.append(msg)

    send([0, 10, 10, 20, 400, 410, 5, 15, 30])  # over the span at 400, back at 5
    send([1, 2], "#elsewhere")
    store.flush()
    send([12, 13, 14, 500, 501, 11])  # a later batch, inside the first one's times
    send([3, 4], "#elsewhere")  # the store's last seqs: #elsewhere's run starts last
    store.close()
    # [0..20] [400, 410] [5..30] | [12..14] [500, 501], and 11 alone: a run, not a block
    assert [n for _, n in block_rows(tmp_path / "h.db", ROOM)] == [4, 2, 3, 3, 2]
    again = stores(cache_per_target=1)
    assert again.next_seq == len(sent) + 1
    model = Model([m for m in sent if m.target == ROOM])
    mine = [m for m in sent if m.target == ROOM]
    for limit in (1, 2, 3, 5, 20):
        assert again.latest(ROOM, limit) == model.latest(limit)
        for msg in mine:
            ref = Ref(msgid=msg.msgid)
            assert again.before(ROOM, ref, limit) == model.before(ref, limit), (msg, limit)
            assert again.after(ROOM, ref, limit) == model.after(ref, limit), (msg, limit)
        for ms in (0, 11, 12, 300, 450, 600):
            ref = Ref(time=at(ms))
            assert again.before(ROOM, ref, limit) == model.before(ref, limit), (ms, limit)
            assert again.after(ROOM, ref, limit) == model.after(ref, limit), (ms, limit)
    assert again.targets([ROOM, "#elsewhere"], Ref(time=at(-1)), Ref(time=at(450)), 5) == [
        ("#elsewhere", at(4)),
        (ROOM, at(410)),
    ]


def test_a_damaged_or_hostile_block_is_a_query_error(
    stores: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    store = stores(cache_per_target=1, flush_interval=600)
    for i in range(4):
        store.append(room_msg(i))
    store.close()
    hostile = pickle.dumps([(1, 2, ROOM, "s", "PRIVMSG", ROOM, (), [os.getcwd], ["x"])])
    not_runs = json.dumps([[1, 2, ROOM]])
    for blob in (b"\x80\x05garbage", hostile, "not json", not_runs):
        with sqlite3.connect(tmp_path / "h.db") as conn:
            conn.execute("UPDATE messages SET runs = ? WHERE runs IS NOT NULL", (blob,))
        conn.close()
        again = stores(cache_per_target=1)
        # Its last seq cannot be read: the next one is past anything the block may hold.
        assert again.next_seq == 1 + BLOCK_SEQS
        with pytest.raises(HistoryStoreError, match="history row 1 of #room"):
            again.latest(ROOM, 10)
        again.close()


def test_version_4_pickled_blocks_become_json_rows(
    stores: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    """A v4 file's blocks were pickled: opening it rewrites them as JSON text, which
    any SQLite tool reads, and every message still answers; a hostile pickle is left
    alone (never loaded past its first global) and stays a query error."""
    store = stores(cache_per_target=1, flush_interval=600)
    for i in range(4):
        store.append(room_msg(i))
    store.close()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        (text,) = conn.execute("SELECT runs FROM messages WHERE runs IS NOT NULL").fetchone()
        runs = [(*run[:6], tuple(map(tuple, run[6])), run[7], run[8]) for run in json.loads(text)]
        conn.execute("UPDATE messages SET runs = ? WHERE runs IS NOT NULL", (pickle.dumps(runs),))
        conn.execute("PRAGMA user_version = 4")
    conn.close()
    again = stores(cache_per_target=1)
    assert [m.text for m in again.latest(ROOM, 10)] == [room_msg(i).text for i in range(4)]
    again.close()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
        kinds = {kind for (kind,) in conn.execute("SELECT typeof(runs) FROM messages")}
        (text,) = conn.execute("SELECT runs FROM messages WHERE runs IS NOT NULL").fetchone()
    conn.close()
    assert kinds <= {"text", "null"}
    assert [run[8] for run in json.loads(text)] == [[room_msg(i).text] for i in range(4)]
    hostile = pickle.dumps([(1, 2, ROOM, "s", "PRIVMSG", ROOM, (), [os.getcwd], ["x"])])
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("UPDATE messages SET runs = ? WHERE runs IS NOT NULL", (hostile,))
        conn.execute("PRAGMA user_version = 4")
    conn.close()
    third = stores(cache_per_target=1)
    with pytest.raises(HistoryStoreError, match="history row 1 of #room"):
        third.latest(ROOM, 10)
    third.close()


def test_version_3_rows_read_beside_blocks(tmp_path: Path) -> None:
    """A v3 file gains the runs column; its rows and new blocks answer together."""
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY, msgids TEXT NOT NULL,"
            " time_ms INTEGER NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,"
            " command TEXT NOT NULL, recipient TEXT NOT NULL, texts TEXT NOT NULL,"
            " tags TEXT NOT NULL DEFAULT '', count INTEGER NOT NULL DEFAULT 1)"
        )
        conn.execute(
            "INSERT INTO messages VALUES (1, 'v-1\nv-2', ?, ?, 's!u@h', 'PRIVMSG', ?, ?, '', 2)",
            (BASE_MS, ROOM, ROOM, "old one\nold two"),
        )
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    store = HistoryStore(path, cache_per_target=1, flush_interval=600)
    try:
        assert store.next_seq == 3
        for i in range(3):
            store.append(room_msg(i, offset=10 + i), store.next_seq)
        store.flush()
        store.cache.clear()  # answer from disk
        texts = [m.text for m in store.latest(ROOM, 10)]
        assert texts == ["old one", "old two"] + [f"message {i} ✓" for i in range(3)]
        assert [m.text for m in store.after(ROOM, Ref(msgid="v-2"), 1)] == ["message 0 ✓"]
    finally:
        store.close()
    assert len(block_rows(path, ROOM)) == 1


# -- the cache's bound ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(16, 64), st.lists(st.integers(1, 6), min_size=1, max_size=300))
def test_cache_evicts_the_oldest_whole_runs_and_no_more(cap: int, sizes: list[int]) -> None:
    """A full cache lets go of whole runs, oldest first: never under ``cap``, over
    ``cap + slack`` only while its oldest run is bigger than the excess, and what leaves
    plus what stays is everything, in order."""
    cache = TargetCache(cap, loaded=True, complete=True)
    seq = 1
    added: list[int] = []  # first seq of every run
    evicted: list[int] = []
    for n in sizes:
        run: Run = (seq, BASE_MS + seq, ROOM, "s!u@h", "PRIVMSG", ROOM, (),
                    [f"k-{seq + i:x}" for i in range(n)], ["t"] * n)  # fmt: skip
        added.append(seq)
        seq += n
        out = cache.add_run(run, runs_bytes([run]))
        if out is not None:
            left, gone, freed = out
            assert left == []  # nothing was made an entry: only runs are held
            assert freed == runs_bytes(gone)
            evicted += [r[0] for r in gone]
            # Trimmed as far as whole runs allow: the oldest left is bigger than the excess.
            excess = len(cache) - cap
            assert excess >= 0 and (not cache.runs or len(cache.runs[0][8]) > excess)
        excess = len(cache) - cap
        assert excess <= cache.slack or len(cache.runs[0][8]) > excess
        assert evicted + [r[0] for r in cache.runs] == added
        assert cache.nbytes == runs_bytes(cache.runs)  # what it holds, no drift


# -- msgid lookups read no conversation ------------------------------------------------------


def one_row_per_message_db(path: Path, size: int) -> int:
    """A database where #big has ``size`` messages, a row each (the worst case for any
    scan), then a block of #other (seqs size+1, size+3) around a run of #third (size+2)
    and a few more #third rows. Returns the first seq past them."""
    HistoryStore(path).close()  # the schema
    conn = connect_for_writing(path)

    def run(seq: int, target: str) -> Run:
        return (seq, BASE_MS + seq, target, "s!u@h", "PRIVMSG", target, (), [f"srv-{seq:x}"],
                ["hello"])  # fmt: skip

    for start in range(1, size + 1, 10_000):
        write_rows(conn, [run(s, "#big") for s in range(start, min(size, start + 9_999) + 1)])
    block = json.dumps([run(size + 1, "#other"), run(size + 3, "#other")])
    write_rows(conn, [(size + 1, BASE_MS, "#other", 2, f"srv-{size + 1:x}\nsrv-{size + 3:x}",
                       block), run(size + 2, "#third")])  # fmt: skip
    write_rows(conn, [run(s, "#third") for s in range(size + 4, size + 10)])
    conn.close()
    return size + 10


def lookup_work(path: Path, target: str, msgid: str) -> tuple[list[StoredMessage], int, int]:
    """BEFORE ``msgid`` on a cold store: (answer, rows handed to Python, SQLite VM steps)."""
    store = HistoryStore(path, cache_per_target=10)
    try:
        conn = store.reader._conn
        assert conn is not None
        steps = [0]

        def step() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(step, 1)  # called for every VM instruction
        rows = store.reader.rows_read
        got = store.before(target, Ref(msgid=msgid), 5)
        return got, store.reader.rows_read - rows, steps[0]
    finally:
        store.close()


def test_msgid_lookups_never_read_the_conversation(tmp_path: Path) -> None:
    """A msgid we did not mint, or that names a sequence we never handed out or another
    conversation's message, is answered without walking #big: the same SQLite work, at
    most two rows, whether #big holds 2,000 or 40,000 messages. (The old fallback read
    every row of the conversation looking for the msgid: 221 ms at 434,000 rows.)"""
    work: dict[int, dict[str, tuple[int, int]]] = {}
    for size in (2_000, 40_000):
        path = tmp_path / f"h{size}.db"
        end = one_row_per_message_db(path, size)
        cases = {
            "not ours at all": "0123456789abcdef0123",
            "foreign prefix": f"zz-{size // 2:x}",
            "upper-case number": f"srv-{size // 2 + 10:X}",
            "zero-padded number": f"srv-0{size // 2:x}",
            "a unicode digit": "srv-²",
            "past the newest": f"srv-{end + 100:x}",
            "zero": "srv-0",
            "#third's run": f"srv-{size + 2:x}",
            "inside #other's block": f"srv-{size + 3:x}",
        }
        work[size] = {}
        for name, msgid in cases.items():
            got, rows, steps = lookup_work(path, "#big", msgid)
            assert got == [], name
            assert rows <= 2, name
            work[size][name] = (rows, steps)
        # A real one is found the same way.
        got, _, _ = lookup_work(path, "#big", f"srv-{size // 2:x}")
        assert [m.msgid for m in got] == [f"srv-{size // 2 - k:x}" for k in range(5, 0, -1)]
    assert work[2_000] == work[40_000]  # independent of how much history there is
    for _, steps in work[40_000].values():
        assert steps < 200, work[40_000]


def test_a_lookup_walks_at_most_block_seqs_rows(tmp_path: Path) -> None:
    """The one walk left: a seq inside another conversation's block, asked of a
    conversation with no row just before it, steps down the primary key at most
    BLOCK_SEQS rows, however long the history is."""
    steps = []
    for size in (BLOCK_SEQS + 100, 4 * BLOCK_SEQS):
        path = tmp_path / f"w{size}.db"
        one_row_per_message_db(path, size)
        got, rows, work = lookup_work(path, "#third", f"srv-{size + 3:x}")
        assert got == [] and rows == 1  # the block, found by primary key; no #third row
        steps.append(work)
    assert steps[0] == steps[1]


def test_unknown_msgids_name_nothing_on_every_path(filled: HistoryStore) -> None:
    for msgid in UNKNOWN_MSGIDS:
        ref = Ref(msgid=msgid)
        assert filled.before(ROOM, ref, 10) == [], msgid
        assert filled.after(ROOM, ref, 10) == [], msgid
        assert filled.around(ROOM, ref, 10) == [], msgid
        assert filled.latest(ROOM, 10, ref) == [], msgid
        assert filled.between(ROOM, ref, mref("m10"), 10) == [], msgid
        assert filled.between(ROOM, mref("m10"), ref, 10) == [], msgid
        assert filled.targets([ROOM, DM], ref, Ref(time=at(10**6)), 10) == [], msgid


def test_memory_only_store_finds_msgids_it_did_not_number(
    stores: Callable[..., HistoryStore],
) -> None:
    """A cluster node appends messages numbered by Redis ("<ms>-<n>"), not by itself: it
    keeps those msgids in a dict per conversation, bounded like the cache."""
    store = stores(None, cache_per_target=16)
    sent = []
    for i in range(100):
        msg = StoredMessage(f"{BASE_MS + i}-{i % 3}", at(i), ROOM, "s!u@h", "PRIVMSG", ROOM, f"{i}")
        store.append(msg)
        sent.append(msg)
    kept = store.latest(ROOM, 1000)
    assert kept == sent[-len(kept) :] and len(kept) >= 16
    assert store.before(ROOM, Ref(msgid=sent[90].msgid), 2) == sent[88:90]
    assert store.after(ROOM, Ref(msgid=sent[-1].msgid), 2) == []
    assert store.before(ROOM, Ref(msgid=sent[10].msgid), 2) == []  # long gone
    cache = store.cache.get(ROOM)
    assert cache is not None and set(cache.aliases) == {m.msgid for m in kept}


# -- the byte budget of the caches -----------------------------------------------------------


def test_cache_byte_budget_drops_the_coldest_conversations(
    stores: Callable[..., HistoryStore],
) -> None:
    """Many rooms that talked once and went quiet, beside one busy room: the caches stay
    under the budget all along, the busy room stays in memory, and every dropped room
    still answers in full (from the spill before the writer commits, from SQLite
    after), by time and by msgid."""
    budget = 256 * 1024
    store = stores(cache_per_target=50, cache_bytes=budget, flush_interval=600,
                   max_batch=1_000_000)  # fmt: skip
    line = "x" * 300
    sent: dict[str, list[StoredMessage]] = {}

    def say(room: str, text: str) -> None:
        seq = store.next_seq
        msg = StoredMessage(f"srv-{seq:x}", at(seq), room, "s!u@h", "PRIVMSG", room, text)
        store.append_run(room, seq, BASE_MS + seq, "s!u@h", room, [msg.msgid], [text])
        sent.setdefault(room, []).append(msg)

    dead = [f"#dead{i}" for i in range(60)]
    for room in dead:
        for k in range(30):
            say(room, f"{k} {line}")
            say(ROOM, f"busy {k}")
            assert store.cache.nbytes <= budget
        assert store.latest(ROOM, 5) == sent[ROOM][-5:]  # a join replay, from memory
    assert ROOM in store.cache
    assert store.cache.dropped >= 40 and len(store.cache) < 20
    assert store.stats["written"] == 0  # the dropped rooms answer from the spill
    for room in dead:
        assert store.latest(room, 100) == sent[room], room
        assert store.cache.nbytes <= budget
    store.flush()
    for room in dead[::7]:  # and from SQLite once written
        assert store.latest(room, 100) == sent[room], room
        middle = Ref(msgid=sent[room][15].msgid)
        assert store.around(room, middle, 3) == sent[room][14:17]
    assert store.cache.nbytes <= budget


def test_cache_bytes_follow_what_is_held(stores: Callable[..., HistoryStore]) -> None:
    """The estimate is the sum over the conversations held (nothing leaks as runs
    become entries, leave whole, or conversations are dropped and loaded again)."""
    store = stores(cache_per_target=8, cache_bytes=20_000)
    for i in range(400):
        seq = store.next_seq
        room = f"#r{i % 9}"
        store.append_run(room, seq, BASE_MS + i, "s!u@h", room, [f"a-{seq:x}", f"a-{seq + 1:x}"],
                         ["y" * (i % 50), "z"])  # fmt: skip
        if i % 13 == 0:
            store.latest(f"#r{i % 5}", 3)
        caches = [store.cache.get(f"#r{r}") for r in range(9)]
        held = [c for c in caches if c is not None]
        assert store.cache.nbytes == sum(c.nbytes + CONVERSATION_BYTES for c in held)
        for c in held:
            assert c.nbytes == entries_bytes(c.items) + runs_bytes(c.runs)
        assert store.cache.nbytes <= 20_000


def test_memory_only_stores_keep_every_conversation(stores: Callable[..., HistoryStore]) -> None:
    """With nothing behind the caches, dropping one would lose history: no budget."""
    store = stores(None, cache_per_target=10, cache_bytes=1)
    for i in range(50):
        store.append(room_msg(i, f"#r{i}", seq=store.next_seq))
    assert len(store.cache) == 50 and store.cache.dropped == 0
