"""The read side of the history: CHATHISTORY queries over memory and SQLite.

:class:`HistoryReader` answers from the in-memory :class:`HistoryCache` (the newest
messages of each conversation, and the spill of those that left a cache before the
writer committed them) when it provably can, and from its own read-only SQLite
connection otherwise, merged with what is not written yet. The store (history.py) makes
one, hands it the cache, the connection and its lock, and delegates every query to it.

A msgid reference is found through the sequence it names (history_model.msgid_seq): in
memory by bisection, on disk by primary key. A msgid we did not mint, or one naming a
sequence we never handed out, is unknown at once, and one naming another conversation's
message costs at most one short walk down the primary key; no query reads a whole
conversation to look for a msgid.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from functools import partial
from typing import Any, NamedTuple

from chat_protocol.casemap import casefold
from chat_server.history_cache import HistoryCache, TargetCache, run_entries
from chat_server.history_model import (
    SEQ_ABOVE,
    SEQ_BELOW,
    Entry,
    HistoryStoreError,
    Key,
    Ref,
    StoredMessage,
    entry_key,
    entry_seq,
    msgid_seq,
    to_ms,
)
from chat_server.history_writer import (
    BLOCK_SEQS,
    BLOCK_SPAN_MS,
    dm_pairs,
    load_block,
    run_last_seq,
    run_seq,
)


class StoredRow(NamedTuple):
    """A row of the ``messages`` table (schema v4, see history.py): a run of ``size``
    messages (the column ``count``, a name a tuple field cannot have), or a block when
    ``runs`` holds its runs as JSON text."""

    seq: int
    msgids: str
    time_ms: int
    target: str
    source: str
    command: str
    recipient: str
    texts: str
    tags: str
    size: int
    runs: bytes | None


_stored_row = partial(tuple.__new__, StoredRow)  # C speed; StoredRow(*row) is ~2x slower


class HistoryReader:
    """latest/before/after/around/between/targets/dm_peers; see the module docstring.

    Every public method takes the lock it was given (the store's, which appends also
    hold); the internals expect it held. ``rows_read`` counts SQLite rows fetched, so
    tests can see how much of the database a query touched.
    """

    def __init__(
        self, memory: HistoryCache, conn: sqlite3.Connection | None, lock: threading.Lock
    ) -> None:
        self._memory = memory
        self._conn = conn
        self._lock = lock
        self.rows_read = 0

    def close(self) -> None:
        """Close the read connection; later queries answer from memory only."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- queries ------------------------------------------------------------------------

    def latest(self, target: str, limit: int, after: Ref | None = None) -> list[StoredMessage]:
        """The newest ``limit`` messages, only those after ``after`` when it is given."""
        with self._lock:
            lo = None
            if after is not None:
                bounds = self._bounds(target, after)
                if bounds is None:
                    return []
                lo = bounds[0]
            return self._range(target, lo, None, limit, newest=True)

    def before(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just before ``ref`` (excluded)."""
        with self._lock:
            bounds = self._bounds(target, ref)
            if bounds is None:
                return []
            return self._range(target, None, bounds[1], limit, newest=True)

    def after(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just after ``ref`` (excluded)."""
        with self._lock:
            bounds = self._bounds(target, ref)
            if bounds is None:
                return []
            return self._range(target, bounds[0], None, limit, newest=False)

    def around(self, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages centred on ``ref``.

        A msgid reference includes that message itself (the point of AROUND is context
        for a message); a timestamp puts messages of exactly that ms on the later side.
        When one side runs short the other side fills the rest of ``limit``.
        """
        with self._lock:
            bounds = self._bounds(target, ref) if limit > 0 else None
            if bounds is None:
                return []
            centre = bounds[1]
            ms, seq = centre
            older = self._range(target, None, centre, limit, newest=True)
            newer = self._range(target, (ms, seq - 1), None, limit, newest=False)
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
            first = self._bounds(target, start)
            last = self._bounds(target, end) if first is not None else None
            if first is None or last is None:
                return []
            (start_lo, start_hi), (end_lo, end_hi) = first, last
            if start_lo < end_hi:
                return self._range(target, start_lo, end_hi, limit, newest=False)
            return self._range(target, end_lo, start_hi, limit, newest=True)

    def dm_peers(self, nick: str) -> set[str]:
        """Casefolded nicks ``nick`` has direct-message history with, online or not."""
        folded = casefold(nick)
        with self._lock:
            keys = self._memory.keys()
            peers = {peer for key in keys for me, peer in dm_pairs(key) if me == folded}
            if self._conn is not None:
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

    # -- references (caller holds the lock) ----------------------------------------------

    def _bounds(self, target: str, ref: Ref) -> tuple[Key, Key] | None:
        """``ref`` as keys: (exclusive lower bound, exclusive upper bound). A timestamp
        excludes all of its ms; a msgid is that message's key either way. None when the
        msgid names no message of ``target``."""
        if ref.time is not None:
            ms = to_ms(ref.time)
            return (ms, SEQ_ABOVE), (ms, SEQ_BELOW)
        key = self._find_msgid(target, ref.msgid or "")
        return None if key is None else (key, key)

    def _find_msgid(self, target: str, msgid: str) -> Key | None:
        """The key of ``target``'s message with this msgid, in O(log n) at most."""
        memory = self._memory
        cache = memory.get(target)
        if cache is not None and cache.aliases:
            aliased = cache.aliases.get(msgid)
            if aliased is not None:
                return cache.find(aliased, msgid)
        seq = msgid_seq(msgid)
        # Not "<prefix>-<hex>", or a number we never handed out: not a msgid of ours.
        if seq is None or not 0 < seq < memory.next_seq:
            return None
        if cache is not None:
            found = cache.find(seq, msgid)
            if found is not None:
                return found
        done = memory.committed_seq
        if seq > done:
            # Not written yet: if it is anywhere but the cache, it is in the spill.
            for entry in memory.spill_of(target, done):
                if entry_seq(entry) == seq:
                    key, msg = entry
                    return key if msg.msgid == msgid else None
            return None
        return None if self._conn is None else self._stored_key(target, seq, msgid)

    def _stored_key(self, target: str, seq: int, msgid: str) -> Key | None:
        """The key of the stored message ``seq`` if it is ``target``'s and has ``msgid``.

        One conversation's rows hold disjoint, ordered ranges of sequences, so only its
        last row starting at or before ``seq`` can hold it. That is the row found by
        primary key when it is ``target``'s; otherwise, unless that row is a run holding
        ``seq`` (then ``seq`` is another conversation's), the walk down the primary key
        to ``target``'s last row less than BLOCK_SEQS back (a block's sequences are not
        consecutive: other conversations' interleave). At most BLOCK_SEQS rows are
        stepped over, however long the history.
        """
        rows = self._rows(
            "SELECT * FROM messages WHERE seq = (SELECT MAX(seq) FROM messages WHERE seq <= ?)",
            (seq,),
        )
        if not rows:
            return None
        row = rows[0]
        if row.target != target:
            if row.runs is None and row.seq + row.size > seq:
                return None
            rows = self._rows(
                "SELECT * FROM messages NOT INDEXED WHERE seq < ? AND seq > ? AND target = ?"
                " ORDER BY seq DESC LIMIT 1",
                (row.seq, seq - BLOCK_SEQS, target),
            )
            if not rows:
                return None
            row = rows[0]
        found = _row_message(row, seq)
        if found is None:
            return None
        key, msg = found
        return key if msg.msgid == msgid else None

    def _ref_point(self, keys: list[str], ref: Ref) -> int | None:
        """The ms a TARGETS bound stands for; a msgid is looked up in any of ``keys``."""
        if ref.time is not None:
            return to_ms(ref.time)
        for key in keys:
            found = self._find_msgid(key, ref.msgid or "")
            if found is not None:
                ms, _ = found
                return ms
        return None

    # -- ranges (caller holds the lock) ---------------------------------------------------

    def _loaded(self, target: str) -> TargetCache | None:
        """The target's cache, loading its newest messages from SQLite on first use."""
        memory = self._memory
        cache = memory.get(target)
        if cache is not None and cache.loaded:
            memory.touch(target)
            return cache
        if self._conn is None:
            return None
        cap = memory.cap
        done = memory.committed_seq  # before the read: see HistoryCache.spill_of
        stored, exhausted = self._scan(
            "SELECT * FROM messages WHERE target = ? ORDER BY time_ms DESC, seq DESC",
            (target,),
            None,
            None,
            cap,
            newest=True,
        )
        # Top `cap` of (committed rows + everything still in memory) is the true newest
        # slice: any of the newest that is on disk is among the newest on disk.
        merged = _by_seq(stored)
        if cache is not None:
            merged.update(_by_seq(cache.entries()))
        spilled = memory.spill_of(target, done)
        merged.update(_by_seq(spilled))
        if not merged:
            return None  # unknown target: don't let queries grow the cache dict
        fresh = TargetCache(cap, loaded=True, complete=exhausted and len(merged) < cap)
        ordered = sorted(merged.values())
        fresh.fill(ordered[-cap:])
        # The old cache may have held more than cap (slack, whole runs): what is left
        # out and not yet written must stay visible, like anything evicted.
        known = set(map(entry_seq, spilled))
        unwritten = [e for e in ordered[:-cap] if entry_seq(e) > done and entry_seq(e) not in known]
        if unwritten:
            memory.spill_add(target, unwritten)
        memory.replace(target, fresh)
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
        if self._conn is None or cache.covers_above(lo) or (newest and len(window) >= limit):
            return [m for _, m in window]
        order = "DESC" if newest else "ASC"
        # A row's messages lie within BLOCK_SPAN_MS after its first time (see _scan),
        # so rows starting that much before lo may still reach into the range.
        sql = "SELECT * FROM messages WHERE target = ?"
        params: list[object] = [target]
        if lo is not None:
            sql += " AND time_ms >= ?"
            params.append(lo[0] - BLOCK_SPAN_MS)
        if hi is not None:
            sql += " AND (time_ms, seq) < (?, ?)"
            params += hi
        sql += f" ORDER BY time_ms {order}, seq {order}"
        # Read before the query: anything committed by then is in its result.
        done = self._memory.committed_seq
        stored, _ = self._scan(sql, params, lo, hi, limit, newest=newest)
        merged = _by_seq(stored)
        # Not yet committed: the cache slice and anything spilled out of the cache.
        for entry in window:
            (_, seq), _ = entry
            if seq > done:
                merged[seq] = entry
        for entry in self._memory.spill_of(target, done):
            key, _ = entry
            if (lo is None or key > lo) and (hi is None or key < hi):
                merged[key[1]] = entry
        ordered = sorted(merged.values())
        picked = ordered[-limit:] if newest else ordered[:limit]
        return [m for _, m in picked]

    def _latest_ms(self, target: str, lo: Key, hi: Key) -> int | None:
        """Time (ms) of the target's newest message with lo < key < hi, if any.

        Does not load the cache: TARGETS may name many conversations and one indexed
        MAX() each is cheaper than pulling their recent history into memory.
        """
        best: int | None = None
        cache = self._memory.get(target)
        if cache is not None:
            i, j = cache.bounds(lo, hi)
            if i < j:
                (best, _), _ = cache.entries()[j - 1]
                if cache.loaded:
                    return best  # the cache is the newest slice, nothing newer elsewhere
            elif cache.loaded and cache.covers_above(lo):
                return None
        for key, _ in self._memory.spill_of(target, self._memory.committed_seq):
            if lo < key < hi and (best is None or key[0] > best):
                best = key[0]
        if self._conn is not None:
            stored, _ = self._scan(
                "SELECT * FROM messages WHERE target = ? AND time_ms >= ? AND time_ms < ?"
                " ORDER BY time_ms DESC, seq DESC",
                (target, lo[0] - BLOCK_SPAN_MS, hi[0]),
                lo,
                hi,
                1,
                newest=True,
            )
            if stored:
                (ms, _), _ = stored[-1]
                best = ms if best is None else max(best, ms)
        return best

    # -- SQLite (caller holds the lock) ---------------------------------------------------

    def _scan(
        self,
        sql: str,
        params: Iterable[object],
        lo: Key | None,
        hi: Key | None,
        limit: int,
        *,
        newest: bool,
    ) -> tuple[list[Entry], bool]:
        """The first (``newest``: last) ``limit`` stored messages with lo < key < hi,
        oldest first, from ``sql``'s rows in ascending (descending) order of their first
        key; and whether every row was read.

        Rows are runs or blocks and may overlap in key order (a block spans time; the
        clock may step back), so the walk stops only when no later row can hold a
        better message: ascending, once a row starts after the limit-th message found;
        descending, once a row starts more than BLOCK_SPAN_MS before it (no row's
        messages lie further from its first time). In the usual case that is one row
        past the answer, and rows are expanded only when they can contribute.
        """
        assert self._conn is not None
        found: list[Entry] = []
        bound: Key | None = None  # the limit-th message found, once there are limit
        exhausted = True
        shared: dict[str, str] = {}
        try:
            cursor = self._conn.execute(sql, tuple(params))
            try:
                for row in map(_stored_row, cursor):
                    self.rows_read += 1
                    first = (row.time_ms, row.seq)
                    if bound is not None and (
                        (row.time_ms + BLOCK_SPAN_MS, SEQ_ABOVE) < bound
                        if newest
                        else first > bound
                    ):
                        exhausted = False
                        break
                    if row.runs is None:
                        # A run: its keys are (time, seq .. seq + count - 1).
                        last = (row.time_ms, row.seq + row.size - 1)
                        if (lo is not None and last <= lo) or (hi is not None and first >= hi):
                            continue
                        if bound is not None and (last < bound if newest else first > bound):
                            continue
                    found += [
                        e
                        for e in _row_entries((row,), shared)
                        if (lo is None or entry_key(e) > lo) and (hi is None or entry_key(e) < hi)
                    ]
                    if len(found) >= limit:
                        found.sort()
                        found = found[-limit:] if newest else found[:limit]
                        bound = entry_key(found[0] if newest else found[-1])
            finally:
                cursor.close()  # ends the read at once: an open one holds back checkpoints
        except sqlite3.Error as exc:
            raise HistoryStoreError(f"history query failed: {exc}") from exc
        found.sort()
        return found, exhausted

    def _rows(self, sql: str, params: Iterable[object]) -> list[StoredRow]:
        """All rows of a ``SELECT * FROM messages``."""
        return list(map(_stored_row, self._read(sql, params)))

    def _read(self, sql: str, params: Iterable[object]) -> list[tuple[Any, ...]]:
        """All rows of any select."""
        assert self._conn is not None
        try:
            rows = self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistoryStoreError(f"history query failed: {exc}") from exc
        self.rows_read += len(rows)
        return rows


def _by_seq(entries: Iterable[Entry]) -> dict[int, Entry]:
    """Entries by sequence (merging what memory and SQLite both hold counts it once)."""
    entries = list(entries)
    return dict(zip(map(entry_seq, entries), entries, strict=True))


def _row_entries(rows: Iterable[StoredRow], shared: dict[str, str] | None = None) -> list[Entry]:
    """The messages of stored rows (runs or blocks, see history.py), in key order within
    a row.

    SQLite hands back new strings for every row: with ``shared`` (one dict for a whole
    read), the fields rows repeat (target, source, command, recipient) become one string
    each, as they are in runs appended in memory. A loaded cache of 1,000 messages is
    then ~240 KB smaller, and the size the cache budget estimates (history_cache.py)."""
    out: list[Entry] = []
    keep = (lambda text: text) if shared is None else (lambda text: shared.setdefault(text, text))
    for seq, msgids, time_ms, target, source, command, recipient, texts, tags, n, runs in rows:
        # A damaged row (unreadable block or tags, msgids and texts that do not pair up)
        # is one clear error for the query, never a traceback from deep inside it.
        try:
            if runs is not None:
                for run in load_block(runs):
                    out += run_entries(run)
                continue
            parsed = tuple((str(k), str(v)) for k, v in json.loads(tags)) if tags else ()
            ids, lines = (msgids.split("\n"), texts.split("\n")) if n > 1 else ([msgids], [texts])
            when = time_ms / 1000
            target, source, command, recipient = map(keep, (target, source, command, recipient))
            out += (
                ((time_ms, seq + i), StoredMessage(
                    msgid, when, target, source, command, recipient, text, parsed))
                for i, (msgid, text) in enumerate(zip(ids, lines, strict=True))
            )  # fmt: skip
        except (ValueError, TypeError, AttributeError) as exc:
            raise HistoryStoreError(f"history row {seq} of {target}: {exc}") from exc
    return out


def _row_message(row: StoredRow, seq: int) -> Entry | None:
    """Message ``seq`` of a stored row, if the row holds it; only its run becomes
    entries (a block may hold thousands of messages)."""
    if row.runs is None:
        index = seq - row.seq
        return _row_entries((row,))[index] if 0 <= index < row.size else None
    try:
        runs = load_block(row.runs)
    except ValueError as exc:
        raise HistoryStoreError(f"history row {row.seq} of {row.target}: {exc}") from exc
    for run in runs:
        first = run_seq(run)
        if first <= seq <= run_last_seq(run):
            return run_entries(run)[seq - first]
    return None


def last_stored_seq(conn: sqlite3.Connection) -> int:
    """The highest seq in the database (0 when empty): in the row that starts last, or in
    a block that starts less than BLOCK_SEQS before it. A block that cannot be read
    counts as reaching as far as a block may, so no seq is ever handed out twice."""
    rows = conn.execute(
        "SELECT * FROM messages WHERE seq > (SELECT MAX(seq) FROM messages) - ?", (BLOCK_SEQS,)
    ).fetchall()
    last = 0
    for row in map(_stored_row, rows):
        try:
            entries = _row_entries((row,))
        except HistoryStoreError:
            last = max(last, row.seq + BLOCK_SEQS - 1)
        else:
            last = max(last, entry_seq(entries[-1]))
    return last
