"""Message history: a per-conversation cache in memory in front of SQLite.

The server's event loop calls :meth:`HistoryStore.append` for every PRIVMSG/NOTICE
(:meth:`HistoryStore.append_run` for a read's run of them) and must never wait on the
disk, so appends only touch memory and a queue; a writer thread hands the queue in
batches to a writer process that commits to SQLite (WAL, ``synchronous=NORMAL``; see
history_writer.py). Queries are answered by a :class:`HistoryReader`
(history_queries.py) from the newest ``cache_per_target`` messages of each
conversation, kept by a :class:`HistoryCache` under a byte budget (history_cache.py),
when they can, and from SQLite (a separate read connection) for older history, merged
with whatever is still waiting to be written, so a message is visible from the moment
it is appended. The store owns the lock, opens the database, appends and runs the
writer thread; it holds the cache and the reader and delegates queries to the reader.

Order: messages of one conversation are ordered by (time in whole milliseconds,
insertion sequence). Milliseconds because that is what clients see in ``server-time``
and send back in ``timestamp=`` references; the sequence makes equal times
deterministic, as the chathistory spec asks.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from chat_server.history_cache import HistoryCache
from chat_server.history_model import (
    HistoryStoreError,
    Ref,
    StoredMessage,
    dm_key,
    format_time,
    parse_time,
    to_ms,
)
from chat_server.history_queries import HistoryReader, last_stored_seq
from chat_server.history_writer import (
    Run,
    WriterProcess,
    connect_for_writing,
    dm_pairs,
    run_last_seq,
    run_size,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "HistoryStore",
    "HistoryStoreError",
    "Ref",
    "StoredMessage",
    "dm_key",
    "format_time",
    "parse_time",
]

# v2: no index on msgid. The server's msgids end in "-<seq in hex>" and are found by
# primary key (see HistoryReader._find_msgid); any other msgid is not one of ours and
# names nothing (rows of a v1 file keep their old msgids, found by time only).
# v3: a row is a run (history_writer.Run): ``count`` messages with sequences seq,
# seq + 1, ..., sharing time, source and tags, their msgids and texts joined by "\n"
# (neither can hold one). A busy room's reads of several lines cost SQLite one row
# each instead of one per line: 4 lines in a row cut the writer's CPU by ~3.5x.
# v4: a row may instead be a block (history_writer.pack_blocks): a batch's runs of one
# conversation, pickled in ``runs``, with ``seq``/``time_ms`` those of its first run,
# ``count`` its messages and ``msgids`` theirs joined by "\n"; ``runs`` is NULL in any
# other row. In a room where every read is one line this is one row per batch instead
# of one per message: the writer process goes from ~3.5 to ~0.5 µs per message.
# v5: a block's ``runs`` is JSON text (an array of runs, each an array of seq, time_ms,
# target, source, command, recipient, tags as [key, value] pairs, msgids, texts), so
# every row is readable with any SQLite tool; v4's pickled blocks are rewritten on open.
_SCHEMA_VERSION = 5
_V2_COLUMNS = ("seq", "msgid", "time_ms", "target", "source", "command", "recipient", "text",
               "tags")  # fmt: skip
_V3_COLUMNS = ("seq", "msgids", "time_ms", "target", "source", "command", "recipient",
               "texts", "tags", "count")  # fmt: skip
_COLUMNS = (*_V3_COLUMNS, "runs")


# How long a batch that could not be written waits before it is tried again (sooner
# when a flush() or close() asks).
RETRY_DELAY = 1.0

# The default bound on the estimated size of all conversations' caches together (the
# server setting history_cache_bytes): 64 MiB holds ~120 rooms of 1,000 long lines.
DEFAULT_CACHE_BYTES = 64 << 20


class HistoryStore:
    """Chat history for CHATHISTORY and join replay; see the module docstring.

    ``path=None`` keeps only the in-memory cache (tests, throwaway servers; cluster
    nodes, whose history of record is Redis): it has nowhere else to answer from, so
    ``cache_bytes`` does not apply to it and each conversation keeps its newest
    ``cache_per_target`` messages. Appends may come from any thread; queries are meant
    for the event-loop thread and briefly hold the same lock as appends.
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        cache_per_target: int = 1000,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
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
        self.cache = HistoryCache(cache_per_target, persistent=path is not None, budget=cache_bytes)
        self._closed = False
        # Appended, not yet handed to the writer; the writer thread swaps the list out.
        self._pending: list[Run] = []
        self._pending_count = 0  # messages in those runs
        self._flush_waiters: list[threading.Event] = []
        self._wake = threading.Event()  # something is pending
        self._hurry = threading.Event()  # write now: a full batch, a flush() or close()
        self._writer: threading.Thread | None = None
        self._process: WriterProcess | None = None
        self.reader = HistoryReader(
            self.cache, None if self.path is None else self._open(self.path), self._lock
        )
        if self.path is not None:
            self._process = WriterProcess(self.path)
            self._writer = threading.Thread(
                target=self._writer_main, name="history-writer", daemon=True
            )
            self._writer.start()

    # -- opening ------------------------------------------------------------------------

    def _open(self, path: Path) -> sqlite3.Connection:
        """Check the schema and return the read connection; any failure is one clear
        error. Sets the cache's sequences from what is stored."""
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
                self.cache.committed_seq = last_stored_seq(conn)
                self.cache.next_seq = self.cache.committed_seq + 1
                conn.execute("PRAGMA query_only = ON")
            except BaseException:
                conn.close()
                raise
            return conn
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
                " count INTEGER NOT NULL DEFAULT 1, runs TEXT)"
            )
            columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
            if columns == _V2_COLUMNS and version <= 2:
                # Every v2 row is a run of one: renaming is the whole migration.
                conn.execute("ALTER TABLE messages RENAME COLUMN msgid TO msgids")
                conn.execute("ALTER TABLE messages RENAME COLUMN text TO texts")
                conn.execute("ALTER TABLE messages ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
                columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
            if columns == _V3_COLUMNS and version <= 3:
                conn.execute("ALTER TABLE messages ADD COLUMN runs TEXT")
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
            if version == 4:
                _blocks_to_json(conn)
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
        return self.cache.next_seq

    def append(self, msg: StoredMessage, seq: int | None = None) -> None:
        """Record a message: memory only, the writer persists it shortly after.

        ``seq`` (at least :attr:`next_seq`) lets the caller number the message itself:
        the server does, and mints the msgid ``<prefix>-<seq in hex>``, which is how
        CHATHISTORY finds it again (history_model.msgid_seq). A persistent store finds
        no other msgid; a memory-only one (a cluster node, fed Redis ids) keeps an
        index of those.
        """
        ms = to_ms(msg.time)
        with self._lock:
            if self._closed:
                raise RuntimeError("history store is closed")
            if seq is None:
                seq = self.cache.next_seq
            run = (seq, ms, msg.target, msg.source, msg.command, msg.recipient, msg.tags,
                   [msg.msgid], [msg.text])  # fmt: skip
            self.cache.add(msg.target, run, ((ms, seq), msg))
            self.stats["appended"] += 1
            if self._writer is not None:
                self._queue(run, 1)

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
        size = len(texts)
        with self._lock:
            if self._closed:
                raise RuntimeError("history store is closed")
            self.cache.add(target, run)
            self.stats["appended"] += size
            if self._writer is not None:
                self._queue(run, size)

    def _queue(self, run: Run, size: int) -> None:
        """Hand ``run`` (``size`` messages) to the writer thread's next batch."""
        pending = self._pending
        if not pending:
            self._wake.set()
        pending.append(run)
        before = self._pending_count
        self._pending_count = after = before + size
        if after >= self.max_batch > before:
            self._hurry.set()

    # -- queries (the reader answers; see history_queries.py) ---------------------------

    def latest(self, target: str, limit: int, after: Ref | None = None) -> list[StoredMessage]:
        """The newest ``limit`` messages, only those after ``after`` when it is given."""
        return self.reader.latest(target, limit, after)

    def before(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just before ``ref`` (excluded)."""
        return self.reader.before(target, ref, limit)

    def after(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just after ``ref`` (excluded)."""
        return self.reader.after(target, ref, limit)

    def around(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages centred on ``ref`` (a msgid's message included)."""
        return self.reader.around(target, ref, limit)

    def between(self, target: str, start: Ref, end: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages strictly between two refs, counted from ``start``."""
        return self.reader.between(target, start, end, limit)

    def dm_peers(self, nick: str) -> set[str]:
        """Casefolded nicks ``nick`` has direct-message history with, online or not."""
        return self.reader.dm_peers(nick)

    def targets(
        self, keys: Iterable[str], start: Ref, end: Ref, limit: int
    ) -> list[tuple[str, float]]:
        """For CHATHISTORY TARGETS: ``(key, time of its latest message)`` per conversation."""
        return self.reader.targets(keys, start, end, limit)

    # -- the writer thread ----------------------------------------------------------------

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
        self.cache.committed_seq = run_last_seq(runs[-1])
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
        self.cache.committed_seq = run_last_seq(runs[-1])

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
        self.reader.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _blocks_to_json(conn: sqlite3.Connection) -> None:
    """Rewrite v4's pickled blocks as JSON text. A blob that cannot be read stays as it
    is: queries that reach it answer MESSAGE_ERROR, as they did before."""
    from chat_server.history_legacy import load_v4_block  # only old files need it

    converted = []
    for seq, blob in conn.execute("SELECT seq, runs FROM messages WHERE typeof(runs) = 'blob'"):
        try:
            runs = load_v4_block(blob)
        except ValueError as exc:
            log.warning("history row %d left as it was: %s", seq, exc)
            continue
        converted.append((json.dumps(runs, separators=(",", ":"), ensure_ascii=False), seq))
    conn.executemany("UPDATE messages SET runs = ? WHERE seq = ?", converted)
    if converted:
        log.info("history: %d blocks rewritten from pickle to JSON (schema v5)", len(converted))
