"""The history store on its own: query semantics against a model, persistence,
idempotent writes, conversion of old files, hostile rows, and a file any tool reads.

The store runs its real worker process; the model is a plain sorted list. Old files
(schema v2 to v5) are built by hand with sqlite3, the way those servers wrote them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chat_server.history import HistoryStore, HistoryStoreError, StoredMessage
from chat_server.history.schema import SCHEMA_VERSION
from chat_server.history.worker import Worker
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

HIST = ["message-tags", "server-time", "batch", "draft/chathistory", "echo-message"]
T0 = 1_790_000_000_000  # 2026-09-21, in Unix ms
INF = float("inf")
ROOMS = ["#a", "#b", "dm:alice bob"]


# -- the model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One appended message, as the model knows it."""

    seq: int
    ms: int
    conv: str
    text: str

    @property
    def msgid(self) -> str:
        return f"test-{self.seq:x}"

    @property
    def key(self) -> tuple[int, int]:
        return (self.ms, self.seq)


Bound = tuple[float, float]
Ref = tuple[str, Any] | None


def random_history(rng: random.Random, count: int) -> list[Sent]:
    """Messages in runs of equal time, over three conversations, with a clock that
    mostly advances, often stands still and sometimes steps back."""
    sent: list[Sent] = []
    ms = T0
    seq = 1
    while len(sent) < count:
        ms += rng.choice([0, 0, 0, 1, 1, 2, 5, 1000, -1, -7, -2000])
        conv = rng.choice(ROOMS)
        for _ in range(rng.choice([1, 1, 1, 2, 4])):
            sent.append(Sent(seq, ms, conv, f"text {seq} in {conv}"))
            seq += 1
    return sent


def store_history(store: HistoryStore, sent: list[Sent]) -> None:
    """Append ``sent`` as runs (consecutive messages of one time and conversation)."""
    i = 0
    while i < len(sent):
        j = i + 1
        while j < len(sent) and (sent[j].ms, sent[j].conv) == (sent[i].ms, sent[i].conv):
            j += 1
        run = sent[i:j]
        first = run[0]
        recipient = "bob" if first.conv.startswith("dm:") else first.conv
        store.append_run(
            first.conv, first.seq, first.ms, "alice!a@host", recipient,
            [m.msgid for m in run], [m.text for m in run], (("+draft/x", "y"),),
        )  # fmt: skip
        i = j


def bounds(ref: Ref, conv: list[Sent]) -> tuple[Bound, Bound] | None:
    """A reference as (exclusive lower bound, exclusive upper bound); None when it names
    no message of this conversation."""
    assert ref is not None
    kind, value = ref
    if kind == "time":
        ms = round(value * 1000)
        return (ms, INF), (ms, -INF)
    found = [m for m in conv if m.msgid == value]
    return (found[0].key, found[0].key) if found else None


def model_query(
    sent: list[Sent], sub: str, conv_name: str, refs: list[Ref], limit: int, floor: int
) -> list[str] | None:
    """What CHATHISTORY should answer, as msgids in chronological order; None when a
    msgid names no message of the conversation (an error, not an empty answer)."""
    conv = sorted((m for m in sent if m.conv == conv_name), key=lambda m: m.key)
    visible = [m for m in conv if m.seq >= floor]
    if any(ref is not None and bounds(ref, conv) is None for ref in refs):
        return None

    def between(lo: Bound, hi: Bound) -> list[Sent]:
        return [m for m in visible if lo < m.key < hi]

    if limit <= 0:
        return []
    ref = refs[0] if refs else None
    if sub == "LATEST":
        if ref is None:
            return [m.msgid for m in visible[-limit:]]
        b = bounds(ref, conv)
        assert b is not None
        return [m.msgid for m in between(b[0], (INF, INF))[-limit:]]
    b = bounds(ref, conv)
    assert b is not None
    lo, hi = b
    if sub == "BEFORE":
        return [m.msgid for m in between((-INF, -INF), hi)[-limit:]]
    if sub == "AFTER":
        return [m.msgid for m in between(lo, (INF, INF))[:limit]]
    if sub == "AROUND":
        # ``limit`` consecutive messages, half before the reference, the reference (or
        # the first message at or after it) and the rest after; one side running short
        # lets the other fill.
        centre = sum(1 for m in visible if m.key < hi)
        start = max(0, min(centre - limit // 2, len(visible) - limit))
        return [m.msgid for m in visible[start : start + limit]]
    assert sub == "BETWEEN"
    e = bounds(refs[1], conv)
    assert e is not None
    end_lo, end_hi = e
    if lo <= end_hi:
        return [m.msgid for m in between(lo, end_hi)[:limit]]
    return [m.msgid for m in between(end_lo, hi)[-limit:]]  # backwards: nearest the start


def random_ref(rng: random.Random, sent: list[Sent], conv: str) -> Ref:
    """A msgid of this conversation, of another one, of nothing, or a timestamp on,
    next to or far from a stored message's time."""
    mine = [m for m in sent if m.conv == conv]
    pick = rng.random()
    if pick < 0.45:
        return ("msgid", rng.choice(mine).msgid)
    if pick < 0.5:
        return ("msgid", rng.choice([m for m in sent if m.conv != conv]).msgid)
    if pick < 0.55:
        return ("msgid", rng.choice(["test-fffffff", "nope", "test-00a", "other-1"]))
    if pick < 0.95:
        ms = rng.choice(mine).ms + rng.choice([0, 0, 0, -1, 1])
        return ("time", ms / 1000)
    return ("time", rng.choice([0.0, 4_000_000_000.0]))


def random_query(rng: random.Random, sent: list[Sent]) -> tuple[Any, ...]:
    sub = rng.choice(["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"])
    conv = rng.choice(ROOMS)
    if sub == "LATEST":
        refs: list[Ref] = [None if rng.random() < 0.4 else random_ref(rng, sent, conv)]
    elif sub == "BETWEEN":
        refs = [random_ref(rng, sent, conv), random_ref(rng, sent, conv)]
    else:
        refs = [random_ref(rng, sent, conv)]
    limit = rng.choice([0, 1, 2, 3, 4, 7, 10, 50, 1000])
    floor = rng.choice([0, 0, 0, rng.randint(1, len(sent))])
    return (sub, conv, refs, limit, floor)


def asked(store: HistoryStore, query: tuple[Any, ...]) -> list[str] | None:
    """The msgids the worker answers; None for its "unknown msgid" answer."""
    ok, rows = store.call("chathistory", query)
    assert ok, (query, rows)
    return None if isinstance(rows, dict) else [row[3] for row in rows]


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[..., HistoryStore]]:
    """Open HistoryStores (closed at the end of the test)."""
    stores: list[HistoryStore] = []

    def make(path: Path | None = None, **kwargs: Any) -> HistoryStore:
        store = HistoryStore(path if path is not None else tmp_path / "history.db", **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def child_pids(parent: int, needle: str) -> list[int]:
    """Children of ``parent`` whose command line contains ``needle``."""
    pids: list[int] = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, children):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if needle.encode() in cmdline:
                pids.append(pid)
    return pids


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not in {timeout} s: {what or check}")
        time.sleep(0.01)


def stored_texts(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [text for (text,) in db.execute("SELECT text FROM messages ORDER BY seq")]
    finally:
        db.close()


# -- query semantics ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_queries_match_the_model_and_survive_a_reopen(
    open_store: Callable[..., HistoryStore], tmp_path: Path, seed: int
) -> None:
    """LATEST/BEFORE/AFTER/AROUND/BETWEEN by msgid and timestamp, with equal times and
    a clock that steps back, against a sorted list; the same answers after a reopen."""
    rng = random.Random(seed)
    sent = random_history(rng, 300)
    store = open_store()
    store_history(store, sent)
    queries = [random_query(rng, sent) for _ in range(400)]
    for query in queries:
        assert asked(store, query) == model_query(sent, *query), query
    store.close()

    again = open_store(tmp_path / "history.db")
    assert again.next_seq == sent[-1].seq + 1
    for query in queries[:150]:
        assert asked(again, query) == model_query(sent, *query), query
    ok, rows = again.call("chathistory", ("LATEST", "#a", [None], 1000, 0))
    assert ok
    expected = {m.seq: m for m in sent if m.conv == "#a"}
    for seq, ms, conv, msgid, sender, command, target, text, tags in rows:
        m = expected.pop(seq)
        assert (ms, conv, msgid, text) == (m.ms, "#a", m.msgid, m.text)
        assert (sender, command, target, tags) == (
            "alice!a@host", "PRIVMSG", "#a", (("+draft/x", "y"),),
        )  # fmt: skip
    assert not expected


@pytest.mark.parametrize("seed", [4, 5])
def test_postgres_answers_the_same_queries_as_sqlite_and_skips_what_it_has(
    postgres_url: str, seed: int
) -> None:
    """A cluster's shared history (postgres.py) against the same model: the SQL of
    queries.py runs on both engines. Two stores on one database, as two cluster nodes
    write it: the second's copies of the same messages are skipped, and both answer
    alike (and so does a store that only reads)."""
    rng = random.Random(seed)
    sent = random_history(rng, 300)
    with contextlib.ExitStack() as stores:
        first, second, reader = (
            stores.enter_context(HistoryStore(None, postgres=postgres_url)) for _ in range(3)
        )
        _check_shared_store(rng, sent, first, second, reader, postgres_url)


def _check_shared_store(
    rng: random.Random,
    sent: list[Sent],
    first: HistoryStore,
    second: HistoryStore,
    reader: HistoryStore,
    postgres_url: str,
) -> None:
    store_history(first, sent)
    store_history(second, sent)
    first.flush()
    second.flush()
    for query in [random_query(rng, sent) for _ in range(300)]:
        want = model_query(sent, *query)
        for store in (first, second, reader):
            assert asked(store, query) == want, query
    ok, rows = reader.call("chathistory", ("LATEST", "#a", [None], 1000, 0))
    assert ok
    assert sorted(row[0] for row in rows) == sorted(m.seq for m in sent if m.conv == "#a")
    assert all(row[8] == (("+draft/x", "y"),) for row in rows)
    with psycopg.connect(postgres_url) as db:
        row = db.execute("SELECT count(*), count(DISTINCT msgid) FROM messages").fetchone()
        assert row == (len(sent), len(sent))


def test_join_replay_of_a_live_room_is_its_newest_messages(
    open_store: Callable[..., HistoryStore],
) -> None:
    """The replay cache of a room in use gives the same newest messages, in the same
    order, as LATEST, also when the clock stepped back (an older time appended later)."""
    rng = random.Random(7)
    sent = random_history(rng, 400)
    store = open_store(replay=50)
    for room in ("#a", "#b"):
        store.room_opened(room)
    store_history(store, sent)
    for room in ("#a", "#b"):
        want = model_query(sent, "LATEST", room, [None], 50, 0)
        assert [m.msgid for m in store.replay(room, 50)] == want, room


def test_join_replay_after_the_clock_stepped_back(open_store: Callable[..., HistoryStore]) -> None:
    """The smallest case of the one above: 50 messages, then the clock steps back a
    second and one more comes. LATEST 50 keeps the 50 with the latest times; so must
    the join replay."""
    store = open_store(replay=50)
    store.room_opened("#r")
    for seq in range(1, 51):
        store.append_run("#r", seq, T0 + 1000 + seq, "a!a@h", "#r", [f"test-{seq:x}"], ["x"])
    store.append_run("#r", 51, T0, "a!a@h", "#r", ["test-33"], ["late, with an older time"])
    ok, rows = store.call("chathistory", ("LATEST", "#r", [None], 50, 0))
    assert ok and [r[0] for r in rows] == list(range(1, 51))
    assert [m.msgid for m in store.replay("#r", 50)] == [r[3] for r in rows]


def test_join_replay_of_a_cold_room_loads_its_newest_messages(
    open_store: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    """A room not in memory (after a restart) is loaded through the worker: its newest
    messages by time, as LATEST answers them."""
    rng = random.Random(8)
    sent = random_history(rng, 400)
    store = open_store(replay=50)
    store_history(store, sent)
    store.close()
    cold = open_store(tmp_path / "history.db", replay=50)
    assert not cold.ready("#a")
    assert sorted(cold.call("stored", ())[1]) == ["#a", "#b"]
    loaded: list[bool] = []
    cold.load(["#a", "#b"], lambda: loaded.append(True))  # no loop: answered at once
    assert loaded == [True]
    for room in ("#a", "#b"):
        assert cold.ready(room)
        want = model_query(sent, "LATEST", room, [None], 50, 0)
        assert [m.msgid for m in cold.replay(room, 50)] == want


def test_notices_tags_and_direct_conversations_are_kept(
    open_store: Callable[..., HistoryStore],
) -> None:
    store = open_store()
    store.append(
        StoredMessage("test-1", T0 / 1000, "#r", "a!a@h", "NOTICE", "#R", "notice", (("k", "v"),)),
        1,
    )
    store.append(StoredMessage("test-2", T0 / 1000, "dm:alice bob", "a!a@h", "PRIVMSG", "Bob",
                               "to bob"), 2)  # fmt: skip
    store.flush()
    ok, rows = store.call("chathistory", ("LATEST", "#r", [None], 10, 0))
    assert ok and rows == [(1, T0, "#r", "test-1", "a!a@h", "NOTICE", "#R", "notice",
                            (("k", "v"),))]  # fmt: skip
    ok, rows = store.call("chathistory", ("LATEST", "dm:alice bob", [None], 10, 0))
    assert ok and [r[7] for r in rows] == ["to bob"]
    ok, rows = store.call("chathistory", ("LATEST", "dm:alice bob", [None], 10, 3))
    assert ok and rows == []  # below the reader's floor


# -- durability of the file ----------------------------------------------------------------


def test_history_survives_close_and_reopen(
    open_store: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    store = open_store()
    store.room_opened("#p")
    store.append_run("#p", 1, T0, "a!a@h", "#p", ["test-1", "test-2"], ["one", "two"])
    store.close()
    assert stored_texts(tmp_path / "history.db") == ["one", "two"]
    again = open_store(tmp_path / "history.db")
    assert again.next_seq == 3
    again.append_run("#p", 3, T0 + 5, "a!a@h", "#p", ["test-3"], ["three"])
    again.close()
    assert stored_texts(tmp_path / "history.db") == ["one", "two", "three"]


def test_the_same_runs_written_twice_are_no_error(tmp_path: Path) -> None:
    """The worker's inserts are idempotent: a batch that a restarted worker gets again
    (it was committed, the reply was lost) is skipped, not a UNIQUE failure."""
    path = tmp_path / "history.db"
    runs = [(1, T0, "#r", "a!a@h", "PRIVMSG", "#r", (), ["test-1", "test-2"], ["x", "y"]),
            (3, T0 + 1, "dm:a b", "a!a@h", "PRIVMSG", "b", (), ["test-3"], ["z"])]  # fmt: skip
    for _ in range(2):  # the second worker is the restarted one
        worker = Worker({"path": str(path)})
        worker.append(list(runs))
        worker.commit()
        assert worker.out == [("committed", 3, 3)]
        worker.db.close()
    assert stored_texts(path) == ["x", "y", "z"]
    db = sqlite3.connect(path)
    hits = db.execute("SELECT count(*) FROM message_search WHERE message_search MATCH 'x'")
    assert hits.fetchone() == (1,)  # the words are indexed once, too
    db.close()


def test_a_worker_killed_after_its_commit_loses_nothing_and_repeats_without_error(
    open_store: Callable[..., HistoryStore], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Kill the worker once it has committed a batch but before the store read its
    reply: the store sends the batch again to a new worker, which skips it (no UNIQUE
    failure), and the messages appended meanwhile are written too."""
    path = tmp_path / "history.db"
    store = open_store(path)
    store.append_run("#r", 1, T0, "a!a@h", "#r", ["test-1"], ["first"])
    store.flush()
    store.append_run("#r", 2, T0 + 1, "a!a@h", "#r", ["test-2", "test-3"], ["second", "third"])
    store.send_pending()  # into the pipe; the worker commits it within flush_interval
    wait_for(lambda: stored_texts(path) == ["first", "second", "third"], what="the commit")
    (pid,) = child_pids(os.getpid(), "chat_server.history")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: is_dead(pid), what="the worker's death")
    store.append_run("#r", 4, T0 + 2, "a!a@h", "#r", ["test-4"], ["fourth"])
    with caplog.at_level(logging.ERROR, logger="chat_server.history"):
        store.close()
    assert stored_texts(path) == ["first", "second", "third", "fourth"]
    bad = [r.getMessage() for r in caplog.records if "worker stopped" not in r.getMessage()]
    assert not bad, bad


def test_a_worker_that_dies_with_messages_in_its_pipe_is_replaced_on_close(
    open_store: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    """The worker dies after the store wrote messages to its pipe and before it read
    them (here: stopped, then killed); close() must still save them, through a new
    worker, as the running server would."""
    path = tmp_path / "history.db"
    store = open_store(path)
    store.append_run("#r", 1, T0, "a!a@h", "#r", ["test-1"], ["first"])
    store.flush()
    (pid,) = child_pids(os.getpid(), "chat_server.history")
    os.kill(pid, signal.SIGSTOP)
    store.append_run("#r", 2, T0 + 1, "a!a@h", "#r", ["test-2"], ["in the pipe"])
    store.send_pending()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: is_dead(pid), what="the worker's death")
    store.close()
    assert stored_texts(path) == ["first", "in the pipe"]


def test_one_history_file_has_one_server(
    open_store: Callable[..., HistoryStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second store on a file in use is refused with a clear error (two would number
    messages from the same sequence); once the owner closed, the file opens again."""
    path = tmp_path / "history.db"
    store = open_store(path)
    store.append_run("#r", 1, T0, "a!a@h", "#r", ["test-1"], ["first"])
    store.flush()
    monkeypatch.setattr("chat_server.history.pipe.LOCK_WAIT", 0.2)
    with pytest.raises(HistoryStoreError, match="in use by another chat-server"):
        HistoryStore(path)
    store.close()
    reopened = open_store(path)
    assert reopened.next_seq == 2
    assert stored_texts(path) == ["first"]


def is_dead(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie, or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# -- old files ----------------------------------------------------------------------------

V2 = """CREATE TABLE messages (seq INTEGER PRIMARY KEY, msgid TEXT NOT NULL,
    time_ms INTEGER NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,
    command TEXT NOT NULL, recipient TEXT NOT NULL, text TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '')"""
V3 = """CREATE TABLE messages (seq INTEGER PRIMARY KEY, msgids TEXT NOT NULL,
    time_ms INTEGER NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,
    command TEXT NOT NULL, recipient TEXT NOT NULL, texts TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '', count INTEGER NOT NULL DEFAULT 1)"""
V5 = V3[:-1] + ", runs TEXT)"
OLD_EXTRAS = """
CREATE INDEX messages_by_target ON messages (target, time_ms, seq);
CREATE TABLE dm_peers (nick TEXT NOT NULL, peer TEXT NOT NULL, PRIMARY KEY (nick, peer))
    WITHOUT ROWID;
"""

# Every message the old files below hold: (seq, time_ms, conversation, sender, text).
OLD_MESSAGES = [
    (1, T0, "#old", "alice!a@h", "hello"),
    (2, T0 + 10, "#old", "bob!b@h", "hi alice"),
    (3, T0 + 10, "#old", "bob!b@h", "how are you"),
    (4, T0 + 5, "dm:alice bob", "alice!a@h", "psst"),  # the clock stepped back
    (5, T0 + 20, "#old", "alice!a@h", "fine, thanks"),
    (6, T0 + 20, "#old", "alice!a@h", "and you?"),
    (7, T0 + 30, "#other", "carol!c@h", "elsewhere"),
]


def old_runs() -> list[list[Any]]:
    """OLD_MESSAGES as the runs the old writer made: [seq, time_ms, target, source,
    command, recipient, tags, msgids, texts]."""
    runs: list[list[Any]] = []
    for seq, ms, conv, source, text in OLD_MESSAGES:
        last = runs[-1] if runs else None
        if last and (last[1], last[2], last[3]) == (ms, conv, source):
            last[7].append(f"old-{seq:x}")
            last[8].append(text)
            continue
        recipient = "bob" if conv.startswith("dm:") else conv
        runs.append([seq, ms, conv, source, "PRIVMSG", recipient, [["+draft/react", "x"]],
                     [f"old-{seq:x}"], [text]])  # fmt: skip
    return runs


def make_old_file(path: Path, version: int, *, extra_rows: Sequence[tuple[Any, ...]] = ()) -> None:
    """A history file of schema ``version`` holding OLD_MESSAGES (v4/v5: partly in blocks)."""
    db = sqlite3.connect(path)
    runs = old_runs()
    if version == 2:
        db.executescript(V2 + ";" + OLD_EXTRAS)
        for seq, ms, conv, source, text in OLD_MESSAGES:
            recipient = "bob" if conv.startswith("dm:") else conv
            db.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (seq, f"old-{seq:x}", ms, conv, source, "PRIVMSG", recipient, text,
                        '[["+draft/react", "x"]]'))  # fmt: skip
    else:
        db.executescript((V3 if version == 3 else V5) + ";" + OLD_EXTRAS)
        plain = runs if version == 3 else runs[:2]  # v4/v5: the rest in one block
        for run in plain:
            seq, ms, conv, source, command, recipient, tags, msgids, texts = run
            row = [seq, "\n".join(msgids), ms, conv, source, command, recipient,
                   "\n".join(texts), json.dumps(tags), len(texts)]  # fmt: skip
            db.execute(f"INSERT INTO messages VALUES ({', '.join('?' * len(row))}"
                       f"{', NULL' if version > 3 else ''})", row)  # fmt: skip
        if version > 3:
            block = runs[2:]
            if version == 4:
                blob: Any = pickle.dumps(
                    [(*r[:6], tuple(tuple(t) for t in r[6]), r[7], r[8]) for r in block]
                )
            else:
                blob = json.dumps(block)
            ids = "\n".join(i for r in block for i in r[7])
            db.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (block[0][0], ids, block[0][1], block[0][2], block[0][3], "PRIVMSG",
                        block[0][5], "", "", ids.count("\n") + 1, blob))  # fmt: skip
    for extra in extra_rows:
        db.execute(f"INSERT INTO messages VALUES ({', '.join('?' * len(extra))})", extra)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def plain_sql_messages(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT seq, time_ms, conversation, sender, text FROM messages ORDER BY seq"
        ).fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_old_files_open_as_v6_with_every_message(
    open_store: Callable[..., HistoryStore], tmp_path: Path, version: int
) -> None:
    path = tmp_path / f"v{version}.db"
    make_old_file(path, version)
    store = open_store(path)
    assert store.next_seq == 8
    ok, rows = store.call("chathistory", ("LATEST", "#old", [None], 100, 0))
    assert ok
    assert [(r[0], r[3], r[4], r[7], r[8]) for r in rows] == [
        (seq, f"old-{seq:x}", source, text, (("+draft/react", "x"),))
        for seq, _, conv, source, text in sorted(OLD_MESSAGES, key=lambda m: (m[1], m[0]))
        if conv == "#old"
    ]
    ok, rows = store.call("chathistory", ("BEFORE", "#old", [("msgid", "old-5")], 2, 0))
    assert ok and [r[7] for r in rows] == ["hi alice", "how are you"]
    ok, rows = store.call("targets", ([], "alice", 0, 0.0, 4e9, 10))
    assert ok and [name for name, _ in rows] == ["dm:alice bob"]
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "dm_peers" not in tables and not any("before_v6" in t for t in tables)
    found = db.execute(
        "SELECT rowid FROM message_search WHERE message_search MATCH 'thanks'"
    ).fetchall()
    assert found == [(5,)]
    db.close()
    assert plain_sql_messages(path) == [tuple(m) for m in OLD_MESSAGES]


def _bomb_block() -> bytes:
    """A pickled v4 block of 3000 runs that all share one 100 KB text: 300 KB on disk,
    300 MB once unpickled into rows."""
    text = "A" * 100_000
    runs = [(100 + i, T0, "#bomb", "m!m@h", "PRIVMSG", "#bomb", (), [f"b-{i}"], [text])
            for i in range(3000)]  # fmt: skip
    return pickle.dumps(runs)


def test_crafted_rows_are_skipped_and_bounded(
    open_store: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    """A pickle bomb, a run of a hundred thousand empty lines, a JSON block of junk and
    a pickle that names a function are each skipped: the file opens quickly, the good
    messages are all there, and nothing runs."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    null = ""
    rows = [
        (100, "b-0", T0, "#bomb", "m!m@h", "PRIVMSG", "#bomb", null, null, 3000, _bomb_block()),
        (4000, "\n" * 100_000, T0, "#huge", "m!m@h", "PRIVMSG", "#huge", "\n" * 100_000, "",
         100_001, None),
        (200_000, "j", T0, "#junk", "m!m@h", "PRIVMSG", "#junk", "", "", 1, '{"not": "runs"}'),
        (200_001, "e", T0, "#evil", "m!m@h", "PRIVMSG", "#evil", "", "", 1,
         pickle.dumps([Evil()])),
    ]  # fmt: skip
    path = tmp_path / "crafted.db"
    make_old_file(path, 4, extra_rows=rows)
    assert path.stat().st_size < 2_000_000
    started = time.monotonic()
    store = open_store(path)
    took = time.monotonic() - started
    ok, found = store.call("chathistory", ("LATEST", "#old", [None], 100, 0))
    assert ok and len(found) == 5
    for room in ("#bomb", "#huge", "#junk", "#evil"):
        ok, found = store.call("chathistory", ("LATEST", room, [None], 100, 0))
        assert ok and found == [], room
    store.close()
    assert took < 5, f"opening took {took:.1f} s"
    assert not marker.exists()
    assert plain_sql_messages(path) == [tuple(m) for m in OLD_MESSAGES]
    assert path.stat().st_size < 4_000_000


def test_hostile_rows_in_a_current_file_affect_only_themselves(
    open_store: Callable[..., HistoryStore], tmp_path: Path
) -> None:
    """Rows written into a v6 file by another hand: a text that would smuggle IRC
    lines, a text no IRC line can carry, bytes for a text, broken tags. Each is left
    out of LATEST, the join replay and SEARCH; its neighbours are not."""
    path = tmp_path / "history.db"
    store = open_store(path)
    store.append_run("#h", 1, T0, "a!a@h", "#h", ["test-1"], ["good one"])
    store.close()
    db = sqlite3.connect(path)
    hostile = [
        (2, "good\r\nQUIT :smuggled", "{}"),
        (3, "good " + "x" * 1_000_000, "{}"),
        (4, b"\xffbinary", "{}"),
        (5, "good but tags are not json", "not json"),
        (6, "good but tags are a list", "[1, 2]"),
    ]
    for seq, text, tags in hostile:
        db.execute("INSERT INTO messages VALUES (?, '#h', ?, ?, 'a!a@h', 'PRIVMSG', '#h', ?, ?)",
                   (seq, T0 + seq, f"test-{seq:x}", text, tags))  # fmt: skip
        db.execute("INSERT INTO message_search (rowid, text) VALUES (?, ?)", (seq, str(text)))
    db.execute("INSERT INTO messages VALUES (7, '#h', ?, 'test-7', 'a!a@h', 'PRIVMSG', '#h',"
               " 'good two', '{}')", (T0 + 7,))  # fmt: skip
    db.execute("INSERT INTO message_search (rowid, text) VALUES (7, 'good two')")
    db.commit()
    db.close()
    again = open_store(path)
    ok, rows = again.call("chathistory", ("LATEST", "#h", [None], 100, 0))
    assert ok and [r[7] for r in rows] == ["good one", "good two"]
    ok, rows = again.call("chathistory", ("AROUND", "#h", [("msgid", "test-4")], 100, 0))
    assert ok and [r[7] for r in rows] == ["good one", "good two"]
    ok, rows = again.call("search", ([("#h", 0)], "a", "good", None, None, None, 100))
    assert ok and [r[7] for r in rows] == ["good one", "good two"]
    again.load(["#h"], lambda: None)
    assert [m.text for m in again.replay("#h", 50)] == ["good one", "good two"]


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE messages (seq INTEGER PRIMARY KEY, anything TEXT)")
    db.execute("INSERT INTO messages VALUES (1, 'from the future')")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(HistoryStoreError, match="newer"):
        HistoryStore(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
    assert db.execute("SELECT * FROM messages").fetchall() == [(1, "from the future")]
    db.close()


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)",
        # Columns named like ours, but no layout we ever wrote.
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY, time_ms INTEGER, body TEXT)",
    ],
)
def test_someone_elses_messages_table_is_refused_and_left_alone(tmp_path: Path, ddl: str) -> None:
    path = tmp_path / "foreign.db"
    db = sqlite3.connect(path)
    db.execute(ddl)
    db.execute("INSERT INTO messages VALUES (1, 2, 'keep me')" if "time_ms" in ddl
               else "INSERT INTO messages VALUES (1, 'keep me')")  # fmt: skip
    db.commit()
    db.close()
    with pytest.raises(HistoryStoreError):
        HistoryStore(path)
    db = sqlite3.connect(path)
    assert "keep me" in str(db.execute("SELECT * FROM messages").fetchall())
    db.close()


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(HistoryStoreError):
        HistoryStore(path)


# -- a file any tool reads ----------------------------------------------------------------


def test_plain_sqlite3_finds_every_message(tmp_path: Path) -> None:
    """Messages sent over IRC (single lines, bursts, a NOTICE, a DM) are found with the
    sqlite3 module and plain SQL only: text, sender, time as the client saw it, tags as
    JSON, by time range, by LIKE and by FTS MATCH."""
    with ServerProcess(tmp_path, flood_limit=False) as srv:
        a = RawClient(srv.host, srv.port)
        b = RawClient(srv.host, srv.port)
        a.register("alice", caps=HIST)
        b.register("bob", caps=HIST)
        a.join("#Plain")
        lines = [f"PRIVMSG #Plain :line {i} zebra{i}" for i in range(5)]
        lines.append("@+draft/reply=abc PRIVMSG #Plain :a reply")
        a.send("".join(line + "\r\n" for line in lines).encode())  # one read: one run
        a.send("NOTICE #Plain :a notice")
        a.send("PRIVMSG bob :a direct word")
        echoed = [a.expect(lambda m: m.command in ("PRIVMSG", "NOTICE")) for _ in range(8)]
        b.expect("PRIVMSG", pattern="direct")
        a.close()
        b.close()
        assert srv.stop(signal.SIGTERM) == 0, srv.tail()
    db = sqlite3.connect(srv.history_db)
    try:
        rows = db.execute(
            "SELECT msgid, time, sender, command, target, text, tags, conversation"
            " FROM message_log ORDER BY time_ms, seq"
        ).fetchall()
        assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows] == [
            (m.tags["msgid"], m.tags["time"], m.command, m.params[0], m.params[1]) for m in echoed
        ]
        assert {r[2].split("!")[0] for r in rows} == {"alice"}
        assert {r[7] for r in rows} == {"#plain", "dm:alice bob"}
        reply = next(r for r in rows if r[5] == "a reply")
        assert json.loads(reply[6]) == {"+draft/reply": "abc"}
        like = db.execute("SELECT count(*) FROM messages WHERE text LIKE '%zebra%'").fetchone()
        assert like == (5,)
        first, last = echoed[0].tags["time"], echoed[-1].tags["time"]
        (count,) = db.execute(
            "SELECT count(*) FROM message_log WHERE time BETWEEN ? AND ?", (first, last)
        ).fetchone()
        assert count == 8  # each row has its own time
        hits = db.execute(
            "SELECT m.text FROM message_search JOIN messages AS m ON m.seq = message_search.rowid"
            " WHERE message_search MATCH 'zebra3 OR direct'"
        ).fetchall()
        assert sorted(hits) == [("a direct word",), ("line 3 zebra3",)]
        (partners,) = db.execute(
            "SELECT party_a || ' ' || party_b FROM conversations WHERE party_a IS NOT NULL"
        ).fetchone()
        assert partners == "alice bob"
    finally:
        db.close()


def test_a_v6_file_gains_accounts_and_a_smaller_search_index(
    tmp_path: Path, open_store: Callable[..., HistoryStore]
) -> None:
    """v6 indexed word positions; v7 keeps only which message holds a word, rebuilt
    from the stored texts when the file is opened, and adds the accounts table."""
    path = tmp_path / "v6.db"
    store = open_store(path)
    store.append_run("#r", 1, T0, "a!a@h", "#r", ["test-1", "test-2"], ["can't stop", "deploy ok"])
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE message_search")
    db.execute("DROP TABLE accounts")
    db.execute("CREATE VIRTUAL TABLE message_search USING fts5(text, content = 'messages',"
               " content_rowid = 'seq', columnsize = 0)")  # fmt: skip
    db.execute("INSERT INTO message_search (message_search) VALUES ('rebuild')")
    db.execute("PRAGMA user_version = 6")
    db.commit()
    db.close()
    again = open_store(path)
    for words, found in (
        ("can't", ["can't stop"]),
        ("stop can", ["can't stop"]),
        ("ok", ["deploy ok"]),
    ):
        ok, rows = again.call("search", ([("#r", 0)], "a", words, None, None, None, 100))
        assert ok and [r[7] for r in rows] == found, words
    ok, rows = again.call("search", ([("#r", 0)], "a", "!!!", None, None, None, 100))
    assert ok and rows == []  # punctuation only: no word, nothing matches
    again.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'message_search'").fetchone()
    assert "detail = none" in sql
    assert db.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
    db.close()


def test_postgres_retention_by_age_and_count_runs_on_one_node_at_a_time(
    postgres_url: str,
) -> None:
    """A cluster's retention (postgres.py): messages past the age go, each conversation
    keeps its newest N; while another node holds the retention lock, a node's call
    deletes nothing (two nodes never prune the same rows at once)."""
    from chat_server.history.postgres import PostgresWriter

    now = int(time.time() * 1000)
    day = 86_400_000
    runs = [(i + 1, now - (10 - i) * day, "#a" if i % 2 else "#b", "x!y@z", "PRIVMSG",
             "#a" if i % 2 else "#b", (), [f"m-{i + 1:x}"], [f"text {i}"])
            for i in range(10)]  # fmt: skip
    writer = PostgresWriter(postgres_url, sync=False)
    other = psycopg.connect(postgres_url)
    try:
        writer.insert(runs)
        writer.commit()

        def left() -> list[str]:
            rows = other.execute("SELECT text FROM messages ORDER BY seq").fetchall()
            return [text for (text,) in rows]

        with other.transaction():
            other.execute("SELECT pg_advisory_xact_lock(hashtext('distchat retention'))")
            assert writer.prune(5.5, None) == 0  # another node is pruning
        assert len(left()) == 10
        assert writer.prune(5.5, None) == 5  # older than 5.5 days: the first five
        assert left() == [f"text {i}" for i in range(5, 10)]
        assert writer.prune(None, 1) == 3  # each room keeps its newest one
        assert left() == ["text 8", "text 9"]
    finally:
        other.close()
        writer.close()
