"""Message history: a per-conversation cache in memory in front of SQLite.

The server's event loop calls :meth:`HistoryStore.append` for every PRIVMSG/NOTICE
(:meth:`HistoryStore.append_run` for a read's run of them) and must never wait on the
disk, so appends only touch memory and a queue; a writer thread hands the queue in
batches to a writer process that commits to SQLite (WAL, ``synchronous=NORMAL``; see
history_writer.py). Queries (history_queries.py) answer from the newest
``cache_per_target`` messages of each conversation (history_cache.py) when they can
and fall back to SQLite (a separate read connection) for older history, merged with
whatever is still waiting to be written, so a message is visible from the moment it
is appended. This module is the write side: opening, appending, the writer thread.

Order: messages of one conversation are ordered by (time in whole milliseconds,
insertion sequence). Milliseconds because that is what clients see in ``server-time``
and send back in ``timestamp=`` references; the sequence makes equal times
deterministic, as the chathistory spec asks.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from chat_server.history_cache import TargetCache, run_entries
from chat_server.history_model import (
    Entry,
    HistoryStoreError,
    Ref,
    StoredMessage,
    dm_key,
    format_time,
    parse_time,
    to_ms,
)
from chat_server.history_queries import HistoryQueries, last_stored_seq
from chat_server.history_writer import (
    Run,
    WriterProcess,
    connect_for_writing,
    dm_pairs,
    run_size,
)

log = logging.getLogger(__name__)

__all__ = [
    "HistoryStore",
    "HistoryStoreError",
    "Ref",
    "StoredMessage",
    "dm_key",
    "format_time",
    "parse_time",
]

# v2: no index on msgid. The server's msgids end in "-<seq in hex>" and are found by
# primary key; any other msgid is found by scanning its target's rows (see
# HistoryQueries._find_msgid).
# v3: a row is a run (history_writer.Run): ``count`` messages with sequences seq,
# seq + 1, ..., sharing time, source and tags, their msgids and texts joined by "\n"
# (neither can hold one). A busy room's reads of several lines cost SQLite one row
# each instead of one per line: 4 lines in a row cut the writer's CPU by ~3.5x.
# v4: a row may instead be a block (history_writer.pack_blocks): a batch's runs of one
# conversation, pickled in ``runs``, with ``seq``/``time_ms`` those of its first run,
# ``count`` its messages and ``msgids`` theirs joined by "\n"; ``runs`` is NULL in any
# other row. In a room where every read is one line this is one row per batch instead
# of one per message: the writer process goes from ~3.5 to ~0.5 µs per message.
_SCHEMA_VERSION = 4
_V2_COLUMNS = ("seq", "msgid", "time_ms", "target", "source", "command", "recipient", "text",
               "tags")  # fmt: skip
_V3_COLUMNS = ("seq", "msgids", "time_ms", "target", "source", "command", "recipient",
               "texts", "tags", "count")  # fmt: skip
_COLUMNS = (*_V3_COLUMNS, "runs")


# How long a batch that could not be written waits before it is tried again (sooner
# when a flush() or close() asks).
RETRY_DELAY = 1.0


class HistoryStore(HistoryQueries):
    """Chat history for CHATHISTORY and join replay; see the module docstring.

    ``path=None`` keeps only the in-memory cache (tests, throwaway servers). Appends may
    come from any thread; queries are meant for the event-loop thread and briefly hold
    the same lock as appends.
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        cache_per_target: int = 1000,
        flush_interval: float = 0.05,
        max_batch: int = 2000,
        retry_max: int = 200_000,
    ) -> None:
        if cache_per_target < 1:
            raise ValueError("cache_per_target must be at least 1")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.path = Path(path) if path is not None else None
        self.cache_per_target = cache_per_target
        self.flush_interval = max(0.0, flush_interval)
        self.max_batch = max_batch
        self.retry_max = retry_max  # messages held for another try when SQLite fails
        self.stats: dict[str, int] = {"appended": 0, "written": 0, "batches": 0, "failed": 0}
        self._lock = threading.Lock()
        self._caches: dict[str, TargetCache] = {}
        # Entries that left the cache before the writer committed them, per target:
        # queries merge them in so nothing appended is ever invisible.
        self._spill: dict[str, list[Entry]] = {}
        self._spill_count = 0
        self._spill_sweep_at = 1024
        self._closed = False
        # Appended, not yet handed to the writer; the writer thread swaps the list out.
        self._pending: list[Run] = []
        self._pending_count = 0  # messages in those runs
        self._flush_waiters: list[threading.Event] = []
        self._wake = threading.Event()  # something is pending
        self._hurry = threading.Event()  # write now: a full batch, a flush() or close()
        self._writer: threading.Thread | None = None
        self._process: WriterProcess | None = None
        self._rconn: sqlite3.Connection | None = None
        self._next_seq = 1
        # Every seq <= this is in SQLite or given up for good (set by the writer): what
        # is above it must stay visible from memory.
        self._committed_seq = 0
        if self.path is not None:
            self._open(self.path)
            self._process = WriterProcess(self.path)
            self._writer = threading.Thread(
                target=self._writer_main, name="history-writer", daemon=True
            )
            self._writer.start()

    # -- opening ------------------------------------------------------------------------

    def _open(self, path: Path) -> None:
        """Open both connections and check the schema; any failure is one clear error."""
        if str(path) == ":memory:":
            raise HistoryStoreError("use path=None for a memory-only history store")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Set up with a writer's connection; it then serves reads (the writer
            # process opens its own).
            conn = connect_for_writing(path)
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("history %s: WAL not available, journal mode %s", path, mode)
                self._migrate(conn)
                self._committed_seq = last_stored_seq(conn)
                self._next_seq = self._committed_seq + 1
                conn.execute("PRAGMA query_only = ON")
            except BaseException:
                conn.close()
                raise
            self._rconn = conn
        except HistoryStoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise HistoryStoreError(f"cannot open history database {path}: {exc}") from exc

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise HistoryStoreError(
                f"history database schema v{version} is newer than this server (v{_SCHEMA_VERSION})"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS messages ("
                " seq INTEGER PRIMARY KEY, msgids TEXT NOT NULL, time_ms INTEGER NOT NULL,"
                " target TEXT NOT NULL, source TEXT NOT NULL, command TEXT NOT NULL,"
                " recipient TEXT NOT NULL, texts TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '',"
                " count INTEGER NOT NULL DEFAULT 1, runs BLOB)"
            )
            columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
            if columns == _V2_COLUMNS and version <= 2:
                # Every v2 row is a run of one: renaming is the whole migration.
                conn.execute("ALTER TABLE messages RENAME COLUMN msgid TO msgids")
                conn.execute("ALTER TABLE messages RENAME COLUMN text TO texts")
                conn.execute("ALTER TABLE messages ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
                columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
            if columns == _V3_COLUMNS and version <= 3:
                conn.execute("ALTER TABLE messages ADD COLUMN runs BLOB")
                columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
            # Someone else's table of the same name: refuse before touching it further.
            if columns != _COLUMNS:
                raise HistoryStoreError(f"table 'messages' has unexpected columns {columns}")
            conn.execute(
                "CREATE INDEX IF NOT EXISTS messages_by_target ON messages (target, time_ms, seq)"
            )
            # One index fewer to update per insert (about 1 µs of the writer's ~7).
            conn.execute("DROP INDEX IF EXISTS messages_by_msgid")
            # Who has direct-message history with whom, both ways round, so TARGETS can
            # list partners who are offline (the writer keeps it up to date).
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dm_peers (nick TEXT NOT NULL, peer TEXT NOT NULL,"
                " PRIMARY KEY (nick, peer)) WITHOUT ROWID"
            )
            if version < 2:
                keys = conn.execute(
                    "SELECT DISTINCT target FROM messages WHERE target >= 'dm:' AND target < 'dm;'"
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO dm_peers VALUES (?, ?)",
                    [pair for (key,) in keys for pair in dm_pairs(key)],
                )
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- writing ------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The sequence number the next append gets unless it brings its own."""
        return self._next_seq

    def append(self, msg: StoredMessage, seq: int | None = None) -> None:
        """Record a message: memory only, the writer persists it shortly after.

        ``seq`` (at least :attr:`next_seq`) lets the caller number the message itself:
        the server does, so that a msgid ending in ``-<seq in hex>`` is found by
        primary key.
        """
        ms = to_ms(msg.time)
        with self._lock:
            if seq is None:
                seq = self._next_seq
            run = (seq, ms, msg.target, msg.source, msg.command, msg.recipient, msg.tags,
                   [msg.msgid], [msg.text])  # fmt: skip
            self._add(msg.target, run, ((ms, seq), msg))

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
        """Record PRIVMSGs from one source to one conversation, numbered by the caller.

        The lines of one read: sequences ``first_seq``, ``first_seq + 1``, ... (from at
        least :attr:`next_seq`), all at ``time_ms``. Kept as one run, for the cache and
        the writer alike: no per-message object is made until a query needs one.
        """
        run = (first_seq, time_ms, target, source, "PRIVMSG", recipient, tags, msgids, texts)
        with self._lock:
            self._add(target, run)

    def _add(self, target: str, run: Run, entry: Entry | None = None) -> None:
        """Cache and queue ``run`` (``entry``, when given, is its one message as is)."""
        if self._closed:
            raise RuntimeError("history store is closed")
        first = run[0]
        if first < self._next_seq:
            raise ValueError(f"history seq {first} is below next_seq {self._next_seq}")
        size = len(run[8])  # run_size(run)
        self._next_seq = first + size
        cache = self._caches.get(target)
        if cache is None:
            # Nothing to load when memory-only; otherwise older history may be on
            # disk and the first query loads it.
            memory = self.path is None
            cache = TargetCache(self.cache_per_target, loaded=memory, complete=memory)
            self._caches[target] = cache
        evicted = cache.add_run(run) if entry is None else cache.extend([entry])
        self.stats["appended"] += size
        if self._writer is None:
            return
        pending = self._pending
        if not pending:
            self._wake.set()
        pending.append(run)
        before = self._pending_count
        self._pending_count = after = before + size
        if after >= self.max_batch > before:
            self._hurry.set()
        if evicted is not None:
            left, gone = evicted
            if (left or gone) and cache.top_seq(left, gone) > self._committed_seq:
                for old in gone:
                    left += run_entries(old)
                self._spill_add(target, left)

    def _spill_add(self, target: str, left: list[Entry]) -> None:
        done = self._committed_seq
        kept = [e for e in left if e[0][1] > done]
        self._spill.setdefault(target, []).extend(kept)
        self._spill_count += len(kept)
        if self._spill_count >= self._spill_sweep_at:
            self._spill_sweep()

    def _spill_sweep(self) -> None:
        """Forget spilled entries the writer has committed; amortised O(1) per append."""
        done = self._committed_seq
        total = 0
        for target in list(self._spill):
            kept = [e for e in self._spill[target] if e[0][1] > done]
            if kept:
                self._spill[target] = kept
                total += len(kept)
            else:
                del self._spill[target]
        self._spill_count = total
        self._spill_sweep_at = max(1024, 2 * total)

    def _writer_main(self) -> None:
        """Group commit: take what is pending once it is flush_interval old, or sooner
        when a batch is full or someone waits, and have the writer process commit it.

        A batch that cannot be written (the child gave up after its retries, or cannot
        run) is tried again, ahead of newer ones, every RETRY_DELAY: until then it stays
        visible to queries (the committed sequence does not pass it, so it is kept in
        the cache or its spill). Past ``retry_max`` messages held, the oldest are given
        up for good, so a disk that stays broken costs bounded memory."""
        retry: list[Run] = []
        try:
            while True:
                if retry:
                    self._hurry.wait(RETRY_DELAY)
                else:
                    self._wake.wait()
                    self._hurry.wait(self.flush_interval)
                with self._lock:
                    self._wake.clear()
                    self._hurry.clear()
                    batch, self._pending = self._pending, []
                    self._pending_count = 0
                    waiters, self._flush_waiters = self._flush_waiters, []
                    closing = self._closed
                retry = self._write_in_order(retry + batch)
                if retry and closing:
                    self._give_up(retry, "the server is stopping")
                    retry = []
                elif sum(map(run_size, retry)) > self.retry_max:
                    retry = self._give_up_oldest(retry)
                for waiter in waiters:
                    waiter.set()
                if closing:
                    return
        except Exception:  # a bug here must not pass silently: flush() will time out
            log.exception("history writer stopped")

    def _write_in_order(self, runs: list[Run]) -> list[Run]:
        """Commit ``runs`` in transactions of about max_batch messages, oldest first;
        returns the runs from the first transaction that failed on (none when all went
        in), so nothing newer is committed past a hole."""
        start = size = 0
        for i, run in enumerate(runs):
            size += run_size(run)
            if size >= self.max_batch or i == len(runs) - 1:
                if not self._commit(runs[start : i + 1]):
                    return runs[start:]
                start, size = i + 1, 0
        return []

    def _commit(self, runs: list[Run]) -> bool:
        """Have the writer process commit ``runs`` in one transaction; True if it did."""
        assert self._process is not None
        written, failed = self._process.write(runs)
        self.stats["batches"] += 1
        if failed:
            return False
        self.stats["written"] += written
        last = runs[-1]
        self._committed_seq = last[0] + run_size(last) - 1
        return True

    def _give_up_oldest(self, retry: list[Run]) -> list[Run]:
        """Drop the oldest held runs until at most retry_max messages are left."""
        excess = sum(map(run_size, retry)) - self.retry_max
        cut = 0
        while excess > 0:
            excess -= run_size(retry[cut])
            cut += 1
        self._give_up(retry[:cut], f"more than {self.retry_max} are waiting")
        return retry[cut:]

    def _give_up(self, runs: list[Run], why: str) -> None:
        """Count ``runs`` as lost and let the committed sequence pass them."""
        lost = sum(map(run_size, runs))
        self.stats["failed"] += lost
        log.error("history: gave up writing %d messages (%s)", lost, why)
        last = runs[-1]
        self._committed_seq = last[0] + run_size(last) - 1

    def flush(self, timeout: float = 5.0) -> None:
        """Block until every message appended so far is committed to SQLite."""
        if self._writer is None or not self._writer.is_alive():
            if self._writer is not None and not self._closed:
                raise HistoryStoreError("history writer thread is not running")
            return
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._wake.set()
        self._hurry.set()
        if not done.wait(timeout):
            raise TimeoutError(f"history not flushed within {timeout} s")

    def close(self) -> None:
        """Write everything, stop the writer thread and process, close the database."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._writer is not None:
            self._wake.set()
            self._hurry.set()
            self._writer.join()
        if self._process is not None:
            self._process.close()
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
