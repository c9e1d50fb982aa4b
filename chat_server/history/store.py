"""Message history, as the event loop sees it: appends, answers by callback, replay.

The loop never touches the disk. ``append``/``append_run`` put runs on a list; after
each loop round (before the server sends anything to clients) they go to the worker
process in one frame (worker.py, over pipe.py), which inserts them and commits them
in groups. So an echoed message is already in the worker's pipe: if the server is
killed, the worker still commits it. Queries go through the same pipe and come back
as callbacks (questions.py), in order after every append sent before them, so they see
everything appended before they were asked. JOIN replays come from memory
(recent.py); a room that is not loaded ("cold") is loaded through the worker before
its JOIN is handled (the JOIN waits).

Without a file (``path=None``: tests, throwaway servers) the worker keeps an in-memory
SQLite database: the same code answers, nothing is written. A cluster node's worker
uses the cluster's PostgreSQL (``postgres=URL``), or that in-memory database.

Invariants:
- Sequences grow: the server numbers messages (Delivery) from :attr:`next_seq` on,
  and no other server numbers messages in the same file (pipe.lock_file).
- Every run handed to a worker stays in ``_unsaved`` until the worker says it is
  committed; a worker that dies is restarted and given them again (writes are
  idempotent).
- Memory is bounded: the replay cache in bytes, frames not yet in the pipe and runs
  not yet committed in counts; past a bound the oldest are given up and logged.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chat_server.history.model import (
    HistoryStoreError,
    Run,
    StoredMessage,
    dm_parties,
    run_last_seq,
    run_target,
    run_texts,
    to_ms,
)
from chat_server.history.pipe import Answer, WorkerPipe, lock_file
from chat_server.history.questions import Questions
from chat_server.history.recent import FailedLoads, Recent
from chat_server.history.schema import last_seq, open_database

if TYPE_CHECKING:
    from chat_server.loop import EventLoop

log = logging.getLogger(__name__)

# The default bound on the replay cache (the setting history_cache_bytes).
DEFAULT_CACHE_BYTES = 64 << 20
RESTART_DELAY = 1.0
RELOAD_AFTER = 5.0  # seconds a room whose load failed is joined without a replay
# Frames not yet written to the worker's pipe: past this, new appends are dropped.
MAX_UNSENT_BYTES = 64 << 20


@dataclass
class Durability:
    """How and when messages reach the disk; see worker.py."""

    sync: bool = False  # commit (and fsync) every batch; the echo waits for it
    flush_interval: float = 0.05  # group commit: at most this old
    max_unsaved: int = 200_000  # messages held for a worker that cannot commit
    max_age_days: float | None = None  # retention, applied by the worker
    max_per_room: int | None = None


class HistoryStore:
    """Chat history for the server; see the module docstring."""

    def __init__(
        self,
        path: str | Path | None,
        *,
        replay: int = 50,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        durability: Durability | None = None,
        stream_ids: bool = False,
        postgres: str | None = None,
    ) -> None:
        if cache_bytes < 0:
            raise ValueError("cache_bytes must not be negative")
        self.path = Path(path) if path is not None else None
        if self.path is not None and str(self.path) == ":memory:":
            raise HistoryStoreError("use path=None for a memory-only history store")
        self.durability = durability or Durability()
        self.stream_ids = stream_ids  # cluster msgids are Redis stream ids
        # A cluster's PostgreSQL: the other nodes write there too, so any room this
        # process has not loaded may have history it never saw (every room is cold
        # until loaded).
        self.shared = postgres is not None
        self.stats: dict[str, int] = {"appended": 0, "written": 0, "failed": 0}
        self.recent = Recent(replay, cache_bytes)
        self.next_seq = 1
        self.committed_seq = 0
        self._stored: set[str] = set()  # rooms the file has messages of
        self._lock_fd: int | None = None
        if self.path is not None:
            self._lock_fd = lock_file(self.path)
            try:
                self._read_file(self.path)
            except BaseException:
                os.close(self._lock_fd)
                raise
        self._pending: list[Run] = []  # appended this round
        self._unsaved: deque[Run] = deque()  # sent, not yet committed
        self._unsaved_count = 0
        self._appended_seq = self.committed_seq
        self.questions = Questions()
        self._loading: dict[str, list[Run]] = {}  # cold rooms being loaded: runs meanwhile
        self._settings: dict[str, dict[str, Any]] = {}  # loaded room settings, until used
        self._unloadable = FailedLoads(RELOAD_AFTER)
        self._on_commit: deque[tuple[int, Callable[[], None]]] = deque()
        self._loop: EventLoop | None = None
        self._closed = False
        d = self.durability
        settings = {
            "path": str(self.path) if self.path is not None else ":memory:",
            "sync": d.sync,
            "flush_interval": d.flush_interval,
            "max_held": d.max_unsaved,
            "max_age_days": d.max_age_days,
            "max_per_conversation": d.max_per_room,
            "stream_ids": self.stream_ids,
            "postgres": postgres,
        }
        self._pipe = WorkerPipe(settings, self._handle, self._worker_gone, self._lock_fd)
        self._failing_logged = 0.0

    def _read_file(self, path: Path) -> None:
        """Open (create, convert) the file and read where its sequences stand."""
        db = open_database(path)
        try:
            self.next_seq = last_seq(db) + 1
            self.committed_seq = self.next_seq - 1
            self._stored = {
                name
                for (name,) in db.execute(
                    "SELECT name FROM conversations WHERE party_a IS NULL UNION "
                    "SELECT name FROM rooms"
                )
            }
        finally:
            db.close()

    # -- the worker -----------------------------------------------------------------------

    def attach(self, loop: EventLoop) -> None:
        """Start the worker and serve it from ``loop`` (call before the server's own
        after-I/O hook, so each round's messages reach the pipe before any echo leaves)."""
        self._loop = self._pipe.loop = loop
        loop.after_io(self.send_pending)
        loop.call_every(1.0, self.questions.give_up_late)
        self._start()

    def start(self) -> None:
        """Start the worker without an event loop (tools, benchmarks): serve its pipes
        with :meth:`poll`, or with the blocking calls."""
        if not self._pipe.running and not self._closed:
            self._start()

    def poll(self) -> None:
        """Serve the worker's pipes once, without blocking (no event loop)."""
        self._pipe.poll()

    def _start(self) -> None:
        # Whatever an earlier worker did not confirm goes to this one first.
        self._pipe.start(("append", list(self._unsaved)) if self._unsaved else None)

    def _worker_gone(self, why: str, code: int) -> None:
        if self._closed:
            return
        log.error("history worker stopped (%s, exit status %s); restarting it in %.0f s",
                  why, code, RESTART_DELAY)  # fmt: skip
        self.questions.fail_all("the history worker restarted")
        if self._loop is not None:
            self._loop.call_later(RESTART_DELAY, self._restart)

    def _restart(self) -> None:
        if not self._pipe.running and not self._closed:
            self._start()

    # -- appending ------------------------------------------------------------------------

    def append(self, msg: StoredMessage, seq: int) -> None:
        """Record one message, numbered ``seq`` by the caller."""
        tags = msg.tags
        self._add((seq, to_ms(msg.time), msg.target, msg.source, msg.command, msg.recipient,
                   tags, [msg.msgid], [msg.text]))  # fmt: skip

    def append_run(
        self,
        target: str,
        first_seq: int,
        time_ms: int,
        source: str,
        recipient: str,
        msgids: list[str],
        texts: list[str],
        tags: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Record the PRIVMSGs of one read: sequences ``first_seq``, ``first_seq + 1``,
        ..., all at ``time_ms``; kept as one run until the worker makes rows of it."""
        self._add((first_seq, time_ms, target, source, "PRIVMSG", recipient, tags, msgids, texts))

    def _add(self, run: Run) -> None:
        if self._closed:
            raise RuntimeError("history store is closed")
        self._pending.append(run)
        self.stats["appended"] += len(run_texts(run))
        target = run_target(run)
        loading = self._loading.get(target)
        if loading is not None:
            loading.append(run)
        else:
            self.recent.add(target, run)
        if target[:3] != "dm:":
            self._stored.add(target)

    def send_pending(self) -> None:
        """Hand this round's runs to the worker (the after-I/O hook)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._pipe.unsent_bytes > MAX_UNSENT_BYTES:
            self._lost(sum(len(run_texts(run)) for run in pending),
                       "the history worker is not keeping up")  # fmt: skip
            return
        self._appended_seq = max(self._appended_seq, max(map(run_last_seq, pending)))
        self._unsaved.extend(pending)
        self._unsaved_count += sum(len(run_texts(run)) for run in pending)
        while self._unsaved_count > self.durability.max_unsaved and len(self._unsaved) > 1:
            old = self._unsaved.popleft()
            self._unsaved_count -= len(run_texts(old))
        self._queue(("append", pending))

    def _queue(self, value: Any) -> None:
        self._pipe.send(value)

    def _lost(self, count: int, why: str) -> None:
        self.stats["failed"] += count
        now = time.monotonic()
        if now - self._failing_logged > 10:
            self._failing_logged = now
            log.error("history: %d messages not saved: %s", count, why)

    # -- answers from the worker -------------------------------------------------------------

    def _handle(self, value: Any) -> None:
        kind = value[0]
        if kind == "committed":
            self._committed(value[1], value[2])
        elif kind == "answer":
            self.questions.answered(value[1], value[2], value[3])
        elif kind == "failing":
            now = time.monotonic()
            if now - self._failing_logged > 10:
                self._failing_logged = now
                log.error("history: %s (retrying)", value[1])

    def _committed(self, seq: int, count: int) -> None:
        self.committed_seq = max(self.committed_seq, seq)
        self.stats["written"] += count
        unsaved = self._unsaved
        while unsaved and run_last_seq(unsaved[0]) <= seq:
            self._unsaved_count -= len(run_texts(unsaved.popleft()))
        waiting = self._on_commit
        while waiting and waiting[0][0] <= seq:
            waiting.popleft()[1]()

    def when_committed(self, seq: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once message ``seq`` is committed (sync durability)."""
        if seq <= self.committed_seq:
            callback()
        else:
            self._on_commit.append((seq, callback))

    # -- asking -----------------------------------------------------------------------------

    def ask(self, kind: str, args: Any, answer: Answer) -> None:
        """Send a query (see worker.py) after everything appended so far."""
        if self._loop is None:  # no event loop (tests, tools): wait for the answer here
            answer(*self.call(kind, args))
            return
        if not self._pipe.running:
            answer(False, "the history worker is restarting")
            return
        qid = self.questions.new(kind, answer)
        self.send_pending()
        self._queue(("ask", qid, kind, args))

    def call(self, kind: str, args: Any, timeout: float = 10.0) -> tuple[bool, Any]:
        """Ask and wait for the answer (tests, the command line; never the loop)."""
        result: list[tuple[bool, Any]] = []
        if not self._pipe.running:
            self._start()
        qid = self.questions.new(kind, lambda ok, value: result.append((ok, value)), timed=False)
        self.send_pending()
        self._queue(("ask", qid, kind, args))
        self._wait(lambda: bool(result), timeout)
        return result[0]

    def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        """Serve the worker's pipes, blocking, until ``done()``; a worker that died is
        replaced (the new one gets every unconfirmed run, and confirms them)."""
        self._pipe.wait(done, timeout, revive=self._start)

    # -- rooms ----------------------------------------------------------------------------

    def ready(self, room: str) -> bool:
        """Whether a JOIN of ``room`` can be answered now (it is loaded, or has no history)."""
        if room in self.recent or (room not in self._stored and not self.shared):
            return True
        return room in self._unloadable  # a load just failed: go ahead without a replay

    def room_opened(self, room: str) -> None:
        """A room was created: with no history yet, it is loaded (and empty) at once."""
        if room not in self._stored and room not in self.recent and not self.shared:
            self.recent.load(room, [])

    def load(self, rooms: list[str], done: Callable[[], None]) -> None:
        """Load cold rooms' newest messages and saved settings, then call ``done``."""
        wanted = [room for room in rooms if not self.ready(room) and room not in self._loading]
        for room in wanted:
            self._loading[room] = []

        def loaded(ok: bool, value: Any) -> None:
            if ok:
                for room, rows, settings in value:
                    runs = [(seq, ms, conv, sender, command, target, tags, [msgid], [text])
                            for seq, ms, conv, msgid, sender, command, target, text, tags
                            in rows]  # fmt: skip
                    self.recent.load(room, runs + self._loading.pop(room, []))
                    if settings:
                        self._settings[room] = json.loads(settings)
            else:
                log.error("history: rooms %s not loaded: %s", ", ".join(wanted), value)
                self._unloadable.add(wanted)
            for room in wanted:
                self._loading.pop(room, None)
            done()

        if not wanted:
            done()
            return
        self.ask("latest", (wanted, self.recent.per_room), loaded)

    def room_settings(self, room: str) -> dict[str, Any] | None:
        """The saved settings of a loaded room that is not open (kept until it empties
        again: a JOIN refused by its key must not make the next JOIN find none)."""
        return self._settings.get(room)

    def save_room(self, room: str, settings: dict[str, Any] | None) -> None:
        """Keep a room's settings (None: forget them)."""
        if settings is not None:
            self._stored.add(room)
        self.send_pending()
        self._queue(("room", room, None if settings is None else json.dumps(settings)))

    def save_marker(self, owner: str, target: str, time_ms: int) -> None:
        """Move a read marker forward; the worker keeps the later time (worker.py)."""
        self.send_pending()
        self._queue(("marker", owner, target, time_ms))

    def forget(self, room: str) -> None:
        """A room emptied: its replay cache and settings go (it is cold from now on,
        and its next JOIN loads both again, as they are now)."""
        self.recent.forget(room)
        self._settings.pop(room, None)

    def replay(self, room: str, limit: int) -> list[StoredMessage]:
        """The newest messages of a loaded room (none when cold)."""
        return self.recent.newest(room, limit) or []

    # -- stopping ---------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything appended so far is committed (tests, shutdown)."""
        self.send_pending()
        if not self._pipe.running:
            if self._closed or not self._unsaved:
                return
            self._start()
        target = self._appended_seq
        self._queue(("flush",))
        self._wait(lambda: self.committed_seq >= target or not self._unsaved, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write everything, stop the worker, wait for its last commit."""
        if self._closed:
            return
        # From here on the pipes are served here, blocking (the loop may be closed).
        if self._pipe.proc is not None:
            self._pipe.detach(self._pipe.proc)
        self._loop = self._pipe.loop = None
        try:
            if self._pending or self._unsaved:
                self.flush(timeout)
        except (HistoryStoreError, TimeoutError) as exc:
            log.error("history: %d messages may not be saved: %s", self._unsaved_count, exc)
        self._closed = True
        self._pipe.stop(timeout)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_room(conversation: str) -> bool:
    """Whether a conversation key names a room (not a direct conversation)."""
    return dm_parties(conversation) is None
