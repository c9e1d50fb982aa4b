"""The history worker: a child process that owns the database connection (the SQLite
file, sqlite_writer.py; or a cluster's PostgreSQL, postgres.py).

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
import struct
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from chat_server.history import queries
from chat_server.history.model import Run, msgid_seq, run_last_seq, run_seq, run_texts
from chat_server.history.sqlite_writer import SqliteWriter

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


class Writer(Protocol):
    """What the worker needs of a database (sqlite_writer.py, postgres.py)."""

    errors: tuple[type[Exception], ...]  # what a failing database raises
    conn: Any  # what queries.py reads through (execute(sql with ?, params))

    @property
    def in_transaction(self) -> bool: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    def insert(self, runs: list[Run]) -> None: ...
    def save_room(self, name: str, settings: str | None) -> None: ...
    def room_settings(self, name: str) -> str | None: ...
    def save_marker(self, owner: str, target: str, time_ms: int, most: int) -> None: ...
    def prune(self, max_age_days: float | None, max_per_conversation: int | None) -> int: ...
    def stored_rooms(self) -> list[str]: ...
    def budget(self, seconds: float) -> AbstractContextManager[None]: ...
    def timed_out(self, exc: Exception) -> bool: ...
    def account(self, kind: str, args: Any, commit_first: Callable[[], bool]) -> Any: ...


def open_writer(settings: dict[str, Any]) -> Writer:
    """The database the settings name: a cluster's PostgreSQL, else a SQLite file."""
    url = settings.get("postgres")
    if url:
        from chat_server.history.postgres import PostgresWriter  # only clusters need it

        return PostgresWriter(str(url), sync=bool(settings.get("sync")))
    return SqliteWriter(settings["path"], sync=bool(settings.get("sync")))


class Worker:
    """The worker's state: the database, the open transaction and what it holds."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.sync = bool(settings.get("sync"))
        self.flush_interval = float(settings.get("flush_interval", 0.05))
        self.max_held = int(settings.get("max_held", 200_000))
        self.max_age_days = settings.get("max_age_days")
        self.max_per_conversation = settings.get("max_per_conversation")
        self.db: Writer = open_writer(settings)
        finder: Callable[[str], int | None] = (
            stream_msgid_seq if settings.get("stream_ids") else msgid_seq
        )
        self.resolver = queries.Resolver(self.db.conn, finder)
        self.held: list[Run] = []  # appended since the last commit (re-inserted on retry)
        self.top = 0  # the highest sequence appended since the last commit
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
        """Insert ``runs`` in the open transaction. Rows go into a transaction in
        sequence order, so two cluster nodes' workers on one PostgreSQL never wait for
        each other's rows in a cycle: older messages (a room's history fetched from
        Redis, a gap's) commit what is open first."""
        segment: list[Run] = []
        for run in runs:
            if run_seq(run) <= self.top and (segment or self.held):
                if segment:
                    self._append(segment)
                    segment = []
                self.commit()
            segment.append(run)
            self.top = max(self.top, run_last_seq(run))
        if segment:
            self._append(segment)

    def _append(self, runs: list[Run]) -> None:
        self.held += runs
        self.held_count += sum(map(len, map(run_texts, runs)))
        if self.retry_at is None:
            try:
                self.db.insert(runs)
            except self.db.errors as exc:
                self._failed(exc)
                return
        if self.deadline is None:
            self.deadline = time.monotonic() + (0 if self.sync else self.flush_interval)
        if self.held_count > self.max_held:
            self._give_up_oldest()

    def commit(self) -> None:
        """Commit the open transaction and tell the server how far it got."""
        if self.retry_at is not None:
            return
        try:
            self.db.commit()
        except self.db.errors as exc:
            self._failed(exc)
            return
        if self.held:
            self.out.append(("committed", run_last_seq(self.held[-1]), self.held_count))
        self.held = []
        self.top = 0
        self.held_count = 0
        self.deadline = None

    def _failed(self, exc: Exception) -> None:
        with contextlib.suppress(*self.db.errors):
            self.db.rollback()
        self.retry_at = time.monotonic() + RETRY_DELAY
        self.out.append(("failing", f"{type(exc).__name__}: {exc}"))

    def retry(self) -> None:
        """Insert everything held again and commit it (after a failure)."""
        self.retry_at = None
        try:
            self.db.insert(self.held)
        except self.db.errors as exc:
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
        """Keep (or forget) a room's settings with the next commit. While commits fail
        it is its own transaction; a failure costs only this change, and is logged."""
        self._change(lambda: self.db.save_room(name, settings), f"settings of {name}")

    def save_marker(self, owner: str, target: str, time_ms: int) -> None:
        """Keep the later of ``time_ms`` and the stored marker; past MAX_READ_MARKERS of
        one owner, drop the oldest (never the one just set). A failure costs only this
        marker (the asker's query behind it answers with what is stored)."""
        self._change(lambda: self.db.save_marker(owner, target, time_ms, MAX_READ_MARKERS),
                     f"read marker of {owner}")  # fmt: skip

    def _change(self, write: Callable[[], None], what: str) -> None:
        alone = self.retry_at is not None  # the open transaction is being retried
        try:
            write()
            if alone:
                self.db.commit()
        except self.db.errors as exc:
            log.error("%s not saved: %s", what, exc)
            if alone:
                with contextlib.suppress(*self.db.errors):
                    self.db.rollback()
            return
        if self.deadline is None and not alone:
            self.deadline = time.monotonic() + self.flush_interval

    def prune(self) -> None:
        self.next_prune = time.monotonic() + PRUNE_EVERY
        if self.db.in_transaction or self.retry_at is not None:
            return
        try:
            removed = self.db.prune(self.max_age_days, self.max_per_conversation)
        except self.db.errors as exc:
            with contextlib.suppress(*self.db.errors):
                self.db.rollback()
            self.out.append(("failing", f"retention: {exc}"))
            return
        if removed:
            log.info("history retention removed %d messages", removed)

    # -- reading ------------------------------------------------------------------------

    def answer(self, qid: int, kind: str, args: Any) -> None:
        try:
            with self.db.budget(QUERY_BUDGET):
                value = self._query(kind, args)
        except queries.UnknownMsgid as exc:
            self.out.append(("answer", qid, True, {"unknown_msgid": exc.msgid}))
            return
        except self.db.errors as exc:
            why = "query too expensive" if self.db.timed_out(exc) else str(exc)
            self.out.append(("answer", qid, False, why))
            return
        except (ValueError, TypeError) as exc:
            self.out.append(("answer", qid, False, f"{type(exc).__name__}: {exc}"))
            return
        self.out.append(("answer", qid, True, value))

    def _query(self, kind: str, args: Any) -> Any:
        conn = self.db.conn
        if kind == "chathistory":
            sub, conv, refs, limit, min_seq = args
            return queries.chathistory(conn, self.resolver, sub, conv, refs, limit, min_seq)
        if kind == "latest":  # several conversations' newest messages (join replay)
            names, limit = args
            return [
                (name, queries.window(conn, queries.Window(name, None, None, True, limit)),
                 self.db.room_settings(name))
                for name in names
            ]  # fmt: skip
        if kind == "targets":
            rooms, nick, min_seq, start, end, limit = args
            return queries.targets(conn, rooms, nick, min_seq, start, end, limit)
        if kind == "search":
            return queries.search(conn, queries.Search(*args))
        if kind == "markers":  # (owner, [target, ...]) -> [(target, time_ms), ...]
            owner, targets = args
            return queries.read_markers(conn, owner, targets)
        if kind.startswith("account"):
            return self.db.account(kind, args, self._commit_now)
        if kind == "stored":  # rooms with history (the server's list of cold rooms)
            return self.db.stored_rooms()
        raise ValueError(f"unknown query {kind!r}")

    def _commit_now(self) -> bool:
        """Commit what is open; whether the database took it."""
        if self.retry_at is None:
            self.commit()
        return self.retry_at is None

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
