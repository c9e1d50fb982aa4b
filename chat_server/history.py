"""Message history: a per-conversation cache in memory in front of SQLite.

The server's event loop calls :meth:`HistoryStore.append` for every PRIVMSG/NOTICE
(:meth:`HistoryStore.append_run` for a read's run of them) and must never wait on the
disk, so appends only touch memory and a queue; a writer thread hands the queue in
batches to a writer process that commits to SQLite (WAL, ``synchronous=NORMAL``; see
history_writer.py). Queries answer from the newest ``cache_per_target`` messages of
each conversation (history_cache.py) when they can and fall back to SQLite (a separate
read connection) for older history, merged with whatever is still waiting to be
written, so a message is visible from the moment it is appended.

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
from typing import Any

from chat_protocol.casemap import casefold
from chat_server.history_cache import SEQ_SUFFIX, TargetCache, run_entries
from chat_server.history_model import (
    SEQ_ABOVE,
    SEQ_BELOW,
    Entry,
    Key,
    Ref,
    StoredMessage,
    dm_key,
    format_time,
    parse_time,
    to_ms,
)
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
# primary key; any other msgid is found by scanning its target's rows (see _find_msgid).
_SCHEMA_VERSION = 2
_COLUMNS = ("seq", "msgid", "time_ms", "target", "source", "command", "recipient", "text", "tags")


class HistoryStoreError(Exception):
    """The history database cannot be opened or used (bad path, corrupt file, ...)."""


class HistoryStore:
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
    ) -> None:
        if cache_per_target < 1:
            raise ValueError("cache_per_target must be at least 1")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.path = Path(path) if path is not None else None
        self.cache_per_target = cache_per_target
        self.flush_interval = max(0.0, flush_interval)
        self.max_batch = max_batch
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
        self._committed_seq = 0  # every seq <= this is in SQLite (set by the writer)
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
                row = conn.execute("SELECT MAX(seq) FROM messages").fetchone()
                self._committed_seq = row[0] or 0
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
                " seq INTEGER PRIMARY KEY, msgid TEXT NOT NULL, time_ms INTEGER NOT NULL,"
                " target TEXT NOT NULL, source TEXT NOT NULL, command TEXT NOT NULL,"
                " recipient TEXT NOT NULL, text TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '')"
            )
            # Someone else's table of the same name: refuse before touching it further.
            columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
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
        size = run_size(run)
        self._next_seq = first + size
        cache = self._caches.get(target)
        if cache is None:
            # Nothing to load when memory-only; otherwise older history may be on
            # disk and the first query loads it.
            memory = self.path is None
            cache = TargetCache(self.cache_per_target, loaded=memory, complete=memory)
            self._caches[target] = cache
        left, gone = cache.add_run(run) if entry is None else cache.extend([entry])
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
        when a batch is full or someone waits, and have the writer process commit it."""
        try:
            while True:
                self._wake.wait()
                self._hurry.wait(self.flush_interval)
                with self._lock:
                    self._wake.clear()
                    self._hurry.clear()
                    batch, self._pending = self._pending, []
                    self._pending_count = 0
                    waiters, self._flush_waiters = self._flush_waiters, []
                    closing = self._closed
                chunk: list[Run] = []
                size = 0
                for run in batch:  # transactions of about max_batch messages
                    chunk.append(run)
                    size += run_size(run)
                    if size >= self.max_batch:
                        self._commit(chunk)
                        chunk, size = [], 0
                if chunk:
                    self._commit(chunk)
                for waiter in waiters:
                    waiter.set()
                if closing:
                    return
        except Exception:  # a bug here must not pass silently: flush() will time out
            log.exception("history writer stopped")

    def _commit(self, runs: list[Run]) -> None:
        assert self._process is not None
        written, failed = self._process.write(runs)
        self.stats["written"] += written
        self.stats["failed"] += failed
        self.stats["batches"] += 1
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

    # -- queries ------------------------------------------------------------------------

    def latest(self, target: str, limit: int, after: Ref | None = None) -> list[StoredMessage]:
        """The newest ``limit`` messages, only those after ``after`` when it is given."""
        with self._lock:
            lo = None
            if after is not None:
                lo = self._lower(target, after)
                if lo is None:
                    return []
            return self._range(target, lo, None, limit, newest=True)

    def before(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just before ``ref`` (excluded)."""
        with self._lock:
            hi = self._upper(target, ref)
            return [] if hi is None else self._range(target, None, hi, limit, newest=True)

    def after(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just after ``ref`` (excluded)."""
        with self._lock:
            lo = self._lower(target, ref)
            return [] if lo is None else self._range(target, lo, None, limit, newest=False)

    def around(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages centred on ``ref``.

        A msgid reference includes that message itself (the point of AROUND is context
        for a message); a timestamp puts messages of exactly that ms on the later side.
        When one side runs short the other side fills the rest of ``limit``.
        """
        with self._lock:
            centre = self._upper(target, ref)
            if centre is None or limit <= 0:
                return []
            older = self._range(target, None, centre, limit, newest=True)
            newer = self._range(target, (centre[0], centre[1] - 1), None, limit, newest=False)
            n_old = min(len(older), limit // 2)
            n_new = min(len(newer), limit - n_old)
            n_old = min(len(older), limit - n_new)
            return older[len(older) - n_old :] + newer[:n_new]

    def between(self, target: str, start: Ref, end: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages strictly between two refs, counted from ``start``.

        ``start`` may be later than ``end``; then the messages nearest ``start`` are
        returned (still oldest first), as the spec's backwards BETWEEN asks.
        """
        with self._lock:
            start_lo, start_hi = self._lower(target, start), self._upper(target, start)
            end_lo, end_hi = self._lower(target, end), self._upper(target, end)
            if start_lo is None or start_hi is None or end_lo is None or end_hi is None:
                return []
            if start_lo < end_hi:
                return self._range(target, start_lo, end_hi, limit, newest=False)
            return self._range(target, end_lo, start_hi, limit, newest=True)

    def dm_peers(self, nick: str) -> set[str]:
        """Casefolded nicks ``nick`` has direct-message history with, online or not."""
        folded = casefold(nick)
        with self._lock:
            peers = {peer for key in self._caches for me, peer in dm_pairs(key) if me == folded}
            if self._rconn is not None:
                rows = self._read("SELECT peer FROM dm_peers WHERE nick = ?", (folded,))
                peers.update(peer for (peer,) in rows)
        return peers

    def targets(
        self, keys: Iterable[str], start: Ref, end: Ref, limit: int
    ) -> list[tuple[str, float]]:
        """For CHATHISTORY TARGETS: ``(key, time of its latest message)`` per conversation.

        Only messages strictly between ``start`` and ``end`` count; conversations with
        none are left out. Sorted by that time, oldest first; with more than ``limit``,
        the ones nearest ``start`` are kept (``start`` may be the later bound).
        """
        with self._lock:
            unique = list(dict.fromkeys(keys))
            points = [self._ref_point(unique, r) for r in (start, end)]
            if points[0] is None or points[1] is None or limit <= 0:
                return []
            forward = points[0] <= points[1]
            lo, hi = (points[0], points[1]) if forward else (points[1], points[0])
            lo_key, hi_key = (lo, SEQ_ABOVE), (hi, SEQ_BELOW)
            found: list[tuple[int, str]] = []
            for key in unique:
                newest = self._latest_ms(key, lo_key, hi_key)
                if newest is not None:
                    found.append((newest, key))
            found.sort()
            chosen = found[:limit] if forward else found[-limit:]
            return [(key, ms / 1000) for ms, key in chosen]

    # -- query internals (caller holds self._lock) ---------------------------------------

    def _lower(self, target: str, ref: Ref) -> Key | None:
        """Key to use when ``ref`` is an exclusive lower bound; None if msgid unknown."""
        if ref.time is not None:
            return (to_ms(ref.time), SEQ_ABOVE)
        return self._find_msgid(target, ref.msgid or "")

    def _upper(self, target: str, ref: Ref) -> Key | None:
        """Key to use when ``ref`` is an exclusive upper bound; None if msgid unknown."""
        if ref.time is not None:
            return (to_ms(ref.time), SEQ_BELOW)
        return self._find_msgid(target, ref.msgid or "")

    def _find_msgid(self, target: str, msgid: str) -> Key | None:
        cache = self._caches.get(target)
        if cache is not None:
            found = cache.find(msgid)
            if found is not None:
                return found
        for key, msg in self._spill_of(target, self._committed_seq):
            if msg.msgid == msgid:
                return key
        if self._rconn is None:
            return None
        suffix = SEQ_SUFFIX.search(msgid)
        if suffix is not None and suffix.end() == len(msgid):
            row = self._read(
                "SELECT time_ms, seq FROM messages WHERE seq = ? AND msgid = ? AND target = ?",
                (int(suffix.group(1), 16), msgid, target),
            )
            if row:
                return (row[0][0], row[0][1])
        row = self._read(
            "SELECT time_ms, seq FROM messages WHERE target = ? AND msgid = ? LIMIT 1",
            (target, msgid),
        )
        return (row[0][0], row[0][1]) if row else None

    def _ref_point(self, keys: list[str], ref: Ref) -> int | None:
        """The ms a TARGETS bound stands for; a msgid is looked up in any of ``keys``."""
        if ref.time is not None:
            return to_ms(ref.time)
        for key in keys:
            found = self._find_msgid(key, ref.msgid or "")
            if found is not None:
                return found[0]
        return None

    def _loaded(self, target: str) -> TargetCache | None:
        """The target's cache, loading its newest messages from SQLite on first use."""
        cache = self._caches.get(target)
        if cache is not None and cache.loaded:
            return cache
        if self._rconn is None:
            return None
        cap = self.cache_per_target
        done = self._committed_seq  # before the read: see _spill_of
        rows = self._read(
            "SELECT * FROM messages WHERE target = ? ORDER BY time_ms DESC, seq DESC LIMIT ?",
            (target, cap),
        )
        # Top `cap` of (committed rows + everything still in memory) is the true newest
        # slice: any of the newest that is on disk is among the newest on disk.
        merged: dict[int, Entry] = {r[0]: _row_entry(r) for r in rows}
        if cache is not None:
            merged.update((e[0][1], e) for e in cache.entries())
        spilled = self._spill_of(target, done)
        merged.update((e[0][1], e) for e in spilled)
        if not merged:
            return None  # unknown target: don't let queries grow the cache dict
        fresh = TargetCache(cap, loaded=True, complete=len(rows) < cap and len(merged) < cap)
        ordered = sorted(merged.values())
        fresh.fill(ordered[-cap:])
        # The old cache may have held more than cap (slack, whole runs): what is left
        # out and not yet written must stay visible, like anything evicted.
        known = {e[0][1] for e in spilled}
        unwritten = [e for e in ordered[:-cap] if e[0][1] > done and e[0][1] not in known]
        if unwritten:
            self._spill_add(target, unwritten)
        self._caches[target] = fresh
        return fresh

    def _range(
        self, target: str, lo: Key | None, hi: Key | None, limit: int, *, newest: bool
    ) -> list[StoredMessage]:
        """Messages with lo < key < hi, oldest first: the first ``limit`` of them, or the
        last ``limit`` when ``newest``. Cache when it provably has the answer, else SQL."""
        if limit <= 0:
            return []
        cache = self._loaded(target)
        if cache is None:
            return []
        i, j = cache.bounds(lo, hi)
        # Only the `limit` entries at the wanted end can be in any answer.
        i, j = (max(i, j - limit), j) if newest else (i, min(j, i + limit))
        window = cache.slice(i, j)
        if self._rconn is None or cache.covers_above(lo) or (newest and len(window) >= limit):
            return [m for _, m in window]
        order = "DESC" if newest else "ASC"
        sql = "SELECT * FROM messages WHERE target = ?"
        params: list[object] = [target]
        if lo is not None:
            sql += " AND (time_ms, seq) > (?, ?)"
            params += lo
        if hi is not None:
            sql += " AND (time_ms, seq) < (?, ?)"
            params += hi
        sql += f" ORDER BY time_ms {order}, seq {order} LIMIT ?"
        params.append(limit)
        # Read before the query: anything committed by then is in its result.
        done = self._committed_seq
        merged: dict[int, Entry] = {r[0]: _row_entry(r) for r in self._read(sql, params)}
        # Not yet committed: the cache slice and anything spilled out of the cache.
        for entry in window:
            if entry[0][1] > done:
                merged[entry[0][1]] = entry
        for entry in self._spill_of(target, done):
            if (lo is None or entry[0] > lo) and (hi is None or entry[0] < hi):
                merged[entry[0][1]] = entry
        ordered = sorted(merged.values())
        picked = ordered[-limit:] if newest else ordered[:limit]
        return [m for _, m in picked]

    def _spill_of(self, target: str, done: int) -> list[Entry]:
        """The target's spilled entries not committed as of ``done``, dropping the rest.

        ``done`` must be the committed sequence read *before* the SQL query whose result
        this completes: the writer may commit more in between, and those rows are in
        neither that result nor (if filtered by a newer value) this list.
        """
        spilled = self._spill.get(target)
        if not spilled:
            return []
        kept = [e for e in spilled if e[0][1] > done]
        if len(kept) < len(spilled):
            self._spill_count -= len(spilled) - len(kept)
            if kept:
                self._spill[target] = kept
            else:
                del self._spill[target]
        return kept

    def _latest_ms(self, target: str, lo: Key, hi: Key) -> int | None:
        """Time (ms) of the target's newest message with lo < key < hi, if any.

        Does not load the cache: TARGETS may name many conversations and one indexed
        MAX() each is cheaper than pulling their recent history into memory.
        """
        best: int | None = None
        cache = self._caches.get(target)
        if cache is not None:
            i, j = cache.bounds(lo, hi)
            if i < j:
                best = cache.entries()[j - 1][0][0]
                if cache.loaded:
                    return best  # the cache is the newest slice, nothing newer elsewhere
            elif cache.loaded and cache.covers_above(lo):
                return None
        for key, _ in self._spill_of(target, self._committed_seq):
            if lo < key < hi and (best is None or key[0] > best):
                best = key[0]
        if self._rconn is not None:
            row = self._read(
                "SELECT MAX(time_ms) FROM messages WHERE target = ? AND time_ms > ?"
                " AND time_ms < ?",
                (target, lo[0], hi[0]),
            )
            if row and row[0][0] is not None and (best is None or row[0][0] > best):
                best = row[0][0]
        return best

    def _read(self, sql: str, params: Iterable[object]) -> list[tuple[Any, ...]]:
        assert self._rconn is not None
        try:
            return self._rconn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistoryStoreError(f"history query failed: {exc}") from exc


def _row_entry(row: tuple[Any, ...]) -> Entry:
    seq, msgid, time_ms, target, source, command, recipient, text, tags = row
    parsed = tuple((str(k), str(v)) for k, v in json.loads(tags)) if tags else ()
    msg = StoredMessage(msgid, time_ms / 1000, target, source, command, recipient, text, parsed)
    return ((time_ms, seq), msg)
