"""The history worker: a child process that owns the SQLite connection.

Why a process: the event loop must never wait on the disk, and a thread in the server
would take the GIL back for every row it inserts (measured before: ~20 µs of the
loop's core per message). The server writes frames to the worker's stdin and reads
frames from its stdout, both through the event loop, never blocking (store.py).

Frames are a 4-byte big-endian length and a JSON payload (tuples travel as arrays;
pipe.decoded turns answers back into tuples). JSON costs the loop more than the
``marshal`` used before: ~0.4 µs a message to encode in isolation, and
``benchmarks.hotpath rooms`` went from 4.6 to ~5.3 µs of server CPU a message (medians
of 8 interleaved pairs, noisy). In exchange nothing Python-specific crosses the pipe,
and the history code holds no pickle or marshal at all.

To the worker:
    ("append", [run, ...])           messages to store (model.Run)
    ("ask", qid, kind, args)         a query; answered in order with the appends
    ("room", name, settings | None)  save (JSON text) or forget a room's settings
    ("marker", owner, target, time_ms)  move a read marker forward (never back)
    ("flush",)                       commit now
From the worker:
    ("committed", last_seq, count)   everything up to last_seq is in the file
    ("answer", qid, ok, value)       a query's result, or an error text
    ("failing", text)                a commit failed; the worker retries it

Invariants:
- Appends arrive in the order the server made them; a query is answered after every
  append sent before it, on the same connection, so it sees them committed or not.
- Writes are idempotent: a message already stored (same seq) is skipped, so a batch
  sent again after a worker restart is no error.
- Group commit: a transaction is committed ``flush_interval`` after its first append,
  at once in ``sync`` mode (then with an fsync: synchronous=FULL), on "flush", and at
  end of input. A commit that fails is rolled back and the same messages are inserted
  and committed again a second later, until it works or more than ``max_held`` wait
  (then the oldest are given up, loudly).
- The worker ignores SIGINT/SIGTERM (a Ctrl+C reaches the whole process group and the
  server flushes through it) and exits once its stdin closes, after a last commit. If
  the server dies, even by SIGKILL, stdin closes too: what it had written to the pipe
  is committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import sqlite3
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from chat_protocol.casemap import casefold
from chat_server.accounts.storage import SqliteAccounts
from chat_server.history import queries
from chat_server.history.model import (
    Run,
    dm_parties,
    msgid_seq,
    run_last_seq,
    run_texts,
)
from chat_server.history.schema import open_database

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
RETRY_DELAY = 1.0
# A query that runs longer than this is stopped and answered with an error: one
# expensive SEARCH must not hold up the writes queued behind it.
QUERY_BUDGET = 0.5
# How often retention (history_max_age_days / history_max_per_room) runs.
PRUNE_EVERY = 60.0
# Read markers one owner may keep: a client naming ever new nicks must not grow the
# file without bound. Past it the markers with the oldest times go.
MAX_READ_MARKERS = 1000


# ASCII (a lone surrogate survives); no cycle check: frames are flat records of ours.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def frame(value: Any) -> bytes:
    """``value`` as one frame."""
    payload = _ENCODER.encode(value).encode()
    return _HEADER.pack(len(payload)) + payload


def split_frames(buffer: bytearray) -> list[Any]:
    """Take every complete frame out of ``buffer``."""
    values = []
    start = 0
    end = len(buffer)
    while end - start >= 4:
        (size,) = _HEADER.unpack_from(buffer, start)
        if end - start - 4 < size:
            break
        values.append(json.loads(bytes(buffer[start + 4 : start + 4 + size])))
        start += 4 + size
    del buffer[:start]
    return values


def stream_msgid_seq(msgid: str) -> int | None:
    """The sequence of a cluster msgid (a Redis stream id ``<ms>-<n>``), else None."""
    ms, sep, n = msgid.partition("-")
    if not sep or not ms.isdigit() or not n.isdigit() or not ms.isascii() or not n.isascii():
        return None
    return stream_seq(int(ms), int(n))


def stream_seq(ms: int, n: int) -> int:
    """A stream id as a sequence number that keeps the stream's order."""
    return (ms << 20) + min(n, (1 << 20) - 1)


_COUNT_RANGE = "SELECT count(*) FROM messages WHERE seq BETWEEN ? AND ?"
_INSERT = "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INDEX_RANGE = (
    "INSERT INTO message_search (rowid, text)"
    " SELECT seq, text FROM messages WHERE seq BETWEEN ? AND ?"
)
_INDEX_ONE = "INSERT INTO message_search (rowid, text) VALUES (?, ?)"
_SAVE_MARKER = (
    "INSERT INTO read_markers VALUES (?, ?, ?) ON CONFLICT (owner, target)"
    " DO UPDATE SET time_ms = max(time_ms, excluded.time_ms)"
)
_TRIM_MARKERS = (
    "DELETE FROM read_markers WHERE owner = ? AND target IN (SELECT target FROM read_markers"
    " WHERE owner = ? AND target != ? ORDER BY time_ms LIMIT ?)"
)


class Worker:
    """The worker's state: the connection, the open transaction and what it holds."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.sync = bool(settings.get("sync"))
        self.flush_interval = float(settings.get("flush_interval", 0.05))
        self.max_held = int(settings.get("max_held", 200_000))
        self.max_age_days = settings.get("max_age_days")
        self.max_per_conversation = settings.get("max_per_conversation")
        self.db = open_database(settings["path"], sync=self.sync)
        self.db.create_function("irc_fold", 1, casefold, deterministic=True)
        finder: Callable[[str], int | None] = (
            stream_msgid_seq if settings.get("stream_ids") else msgid_seq
        )
        self.resolver = queries.Resolver(self.db, finder)
        self.held: list[Run] = []  # appended since the last commit (re-inserted on retry)
        self.held_count = 0
        self.deadline: float | None = None  # when the open transaction is committed
        self.retry_at: float | None = None
        self.next_prune = time.monotonic() + (PRUNE_EVERY if self.retention else 0.0)
        self.out: list[Any] = []  # frames for the server

    @property
    def retention(self) -> bool:
        return bool(self.max_age_days or self.max_per_conversation)

    # -- writing ------------------------------------------------------------------------

    def append(self, runs: list[Run]) -> None:
        self.held += runs
        self.held_count += sum(map(len, map(run_texts, runs)))
        if self.retry_at is None:
            try:
                self._insert(runs)
            except sqlite3.Error as exc:
                self._failed(exc)
                return
        if self.deadline is None:
            self.deadline = time.monotonic() + (0 if self.sync else self.flush_interval)
        if self.held_count > self.max_held:
            self._give_up_oldest()

    def _insert(self, runs: list[Run]) -> None:
        db = self.db
        if not db.in_transaction:
            db.execute("BEGIN")
        newest: dict[str, int] = {}
        rows: list[tuple[Any, ...]] = []
        for seq, ms, conv, source, command, target, tags, msgids, texts in runs:
            tag_text = json.dumps(dict(tags), ensure_ascii=False) if tags else "{}"
            rows += [
                (seq + i, conv, ms, msgid, source, command, target, text, tag_text)
                for i, (msgid, text) in enumerate(zip(msgids, texts, strict=True))
            ]
            if newest.get(conv, -1) < ms:
                newest[conv] = ms
        if not rows:
            return
        seqs = [row[0] for row in rows]
        low, high = min(seqs), max(seqs)
        (present,) = db.execute(_COUNT_RANGE, (low, high)).fetchone()
        if present == 0:
            # The usual case: none of these sequences is stored yet, so the rows go in
            # with one statement and the search index takes them from the table with
            # another (~1.3 us a message less than row by row, a fifth of the total).
            db.executemany(_INSERT, rows)
            db.execute(_INDEX_RANGE, (low, high))
        else:
            # Some are stored (a batch given again after a worker died): insert what
            # is missing and index only that.
            for row in rows:
                if db.execute(_INSERT, row).rowcount:
                    db.execute(_INDEX_ONE, (row[0], row[7]))
        db.executemany(
            "INSERT INTO conversations VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE"
            " SET last_ms = max(last_ms, excluded.last_ms)",
            [(conv, *(dm_parties(conv) or (None, None)), ms) for conv, ms in newest.items()],
        )

    def commit(self) -> None:
        """Commit the open transaction and tell the server how far it got."""
        if self.retry_at is not None:
            return
        try:
            if self.db.in_transaction:
                self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        if self.held:
            self.out.append(("committed", run_last_seq(self.held[-1]), self.held_count))
        self.held = []
        self.held_count = 0
        self.deadline = None

    def _failed(self, exc: sqlite3.Error) -> None:
        if self.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
        self.retry_at = time.monotonic() + RETRY_DELAY
        self.out.append(("failing", f"{type(exc).__name__}: {exc}"))

    def retry(self) -> None:
        """Insert everything held again and commit it (after a failure)."""
        self.retry_at = None
        try:
            self._insert(self.held)
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self.commit()

    def _give_up_oldest(self) -> None:
        dropped = 0
        while self.held_count > self.max_held and len(self.held) > 1:
            run = self.held.pop(0)
            size = len(run_texts(run))
            self.held_count -= size
            dropped += size
        self.out.append(("failing", f"gave up {dropped} messages: more than "
                                    f"{self.max_held} waited for a commit"))  # fmt: skip

    def save_room(self, name: str, settings: str | None) -> None:
        db = self.db
        if not db.in_transaction and self.retry_at is None:
            db.execute("BEGIN")
        if settings is None:
            db.execute("DELETE FROM rooms WHERE name = ?", (name,))
        else:
            db.execute(
                "INSERT OR REPLACE INTO rooms VALUES (?, ?, ?)",
                (name, settings, int(time.time() * 1000)),
            )
        if self.deadline is None:
            self.deadline = time.monotonic() + self.flush_interval

    def save_marker(self, owner: str, target: str, time_ms: int) -> None:
        """Keep the later of ``time_ms`` and the stored marker; past MAX_READ_MARKERS of
        one owner, drop the oldest (never the one just set). A failure costs only this
        marker (the asker's query behind it answers with what is stored)."""
        db = self.db
        try:
            if not db.in_transaction and self.retry_at is None:
                db.execute("BEGIN")
            db.execute(_SAVE_MARKER, (owner, target, time_ms))
            (count,) = db.execute(
                "SELECT count(*) FROM read_markers WHERE owner = ?", (owner,)
            ).fetchone()
            if count > MAX_READ_MARKERS:
                db.execute(_TRIM_MARKERS, (owner, owner, target, count - MAX_READ_MARKERS))
        except sqlite3.Error as exc:
            log.error("read marker of %s not saved: %s", owner, exc)
            return
        if self.deadline is None:
            self.deadline = time.monotonic() + self.flush_interval

    def prune(self) -> None:
        from chat_server.history.retention import prune  # retention is rare; load it late

        self.next_prune = time.monotonic() + PRUNE_EVERY
        if self.db.in_transaction or self.retry_at is not None:
            return
        try:
            removed = prune(
                self.db,
                max_age_days=self.max_age_days,
                max_per_conversation=self.max_per_conversation,
                now_ms=int(time.time() * 1000),
            )
        except sqlite3.Error as exc:
            self.out.append(("failing", f"retention: {exc}"))
            return
        if removed:
            log.info("history retention removed %d messages", removed)

    # -- reading ------------------------------------------------------------------------

    def answer(self, qid: int, kind: str, args: Any) -> None:
        started = time.monotonic()

        def too_long() -> int:
            return 1 if time.monotonic() - started > QUERY_BUDGET else 0

        self.db.set_progress_handler(too_long, 10_000)
        try:
            value = self._query(kind, args)
        except sqlite3.OperationalError as exc:
            why = "query too expensive" if "interrupt" in str(exc) else str(exc)
            self.out.append(("answer", qid, False, why))
            return
        except (sqlite3.Error, ValueError, TypeError) as exc:
            self.out.append(("answer", qid, False, f"{type(exc).__name__}: {exc}"))
            return
        finally:
            self.db.set_progress_handler(None, 0)
        self.out.append(("answer", qid, True, value))

    def _query(self, kind: str, args: Any) -> Any:
        db = self.db
        if kind == "chathistory":
            sub, conv, refs, limit, min_seq = args
            return queries.chathistory(db, self.resolver, sub, conv, refs, limit, min_seq)
        if kind == "latest":  # several conversations' newest messages (join replay)
            names, limit = args
            rooms = [
                (name, db.execute("SELECT settings FROM rooms WHERE name = ?", (name,)).fetchone())
                for name in names
            ]
            return [
                (name, queries.window(db, queries.Window(name, None, None, True, limit)),
                 row[0] if row else None)
                for name, row in rooms
            ]  # fmt: skip
        if kind == "targets":
            rooms, nick, min_seq, start, end, limit = args
            return queries.targets(db, rooms, nick, min_seq, start, end, limit)
        if kind == "search":
            return queries.search(db, queries.Search(*args))
        if kind == "markers":  # (owner, [target, ...]) -> [(target, time_ms), ...]
            owner, targets = args
            return queries.read_markers(db, owner, targets)
        if kind.startswith("account"):
            return self._account(kind, args)
        if kind == "stored":  # rooms with history (the server's list of cold rooms)
            return [name for (name,) in db.execute(
                "SELECT name FROM conversations WHERE party_a IS NULL")]  # fmt: skip
        raise ValueError(f"unknown query {kind!r}")

    def _account(self, kind: str, args: Any) -> Any:
        """Account lookups and changes (accounts/storage.py). A change is committed
        before it is answered: REGISTER SUCCESS means the account is on disk."""
        accounts = SqliteAccounts(self.db)
        if kind == "account":  # folded name -> the row, or None
            row = accounts.get(args)
            return None if row is None else list(row)
        if kind == "account_names":
            return accounts.names()
        if kind not in ("account_create", "account_password", "account_delete"):
            raise ValueError(f"unknown query {kind!r}")
        if self.retry_at is not None:
            raise sqlite3.OperationalError("the history database is failing; try again later")
        self.commit()  # messages first: the change below is its own transaction
        if self.retry_at is not None:
            raise sqlite3.OperationalError("the history database is failing; try again later")
        if kind == "account_create":
            return accounts.create(*args)
        if kind == "account_password":
            return accounts.set_password(*args)
        return accounts.delete(args)

    def handle(self, value: Any) -> bool:
        """One frame from the server; False at a request to stop."""
        kind = value[0]
        if kind == "append":
            self.append(value[1])
        elif kind == "ask":
            self.answer(value[1], value[2], value[3])
        elif kind == "room":
            self.save_room(value[1], value[2])
        elif kind == "marker":
            self.save_marker(value[1], value[2], value[3])
        elif kind == "flush":
            self.commit()
        return True


def main(argv: list[str]) -> int:
    """Serve one server: settings as JSON in argv[0]."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="history worker: %(message)s")
    try:
        worker = Worker(json.loads(argv[0]))
    except Exception as exc:  # the server reports why its worker could not start
        _write(("failing", f"cannot open history: {exc}"))
        return 1
    stdin = sys.stdin.fileno()
    buffer = bytearray()
    open_input = True
    while open_input:
        now = time.monotonic()
        wake = [t for t in (worker.deadline, worker.retry_at, worker.next_prune if worker.retention
                            else None) if t is not None]  # fmt: skip
        timeout = max(0.0, min(wake) - now) if wake else None
        readable, _, _ = select.select([stdin], [], [], timeout)
        if readable:
            data = os.read(stdin, 1 << 20)
            if not data:
                open_input = False
            buffer += data
            for value in split_frames(buffer):
                worker.handle(value)
        now = time.monotonic()
        if worker.retry_at is not None and now >= worker.retry_at:
            worker.retry()
        if worker.deadline is not None and now >= worker.deadline:
            worker.commit()
        if worker.retention and now >= worker.next_prune:
            worker.prune()
        for value in worker.out:
            _write(value)
        worker.out.clear()
    worker.commit()
    if worker.held and worker.retry_at is not None:  # one last try before giving up
        worker.retry()
    for value in worker.out:
        _write(value)
    worker.db.close()
    return 0


def _write(value: Any) -> None:
    data = frame(value)
    fd = sys.stdout.fileno()
    while data:
        try:
            written = os.write(fd, data)
        except BrokenPipeError:  # the server is gone; what is committed stays
            return
        data = data[written:]
