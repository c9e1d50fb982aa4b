"""The read side of the history store: CHATHISTORY queries over cache, spill and SQLite.

Mixed into ``HistoryStore`` (history.py), which owns the state these methods read: the
per-conversation caches (history_cache.py), the spill of entries that left a cache
before the writer committed them, and the read-only SQLite connection. Every public
method takes the store's lock; the internals expect it held.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chat_protocol.casemap import casefold
from chat_server.history_cache import SEQ_SUFFIX, TargetCache, run_entries
from chat_server.history_model import (
    SEQ_ABOVE,
    SEQ_BELOW,
    Entry,
    HistoryStoreError,
    Key,
    Ref,
    StoredMessage,
    to_ms,
)
from chat_server.history_writer import BLOCK_SEQS, BLOCK_SPAN_MS, dm_pairs, load_block

if TYPE_CHECKING:
    from chat_server.history import HistoryStore


class HistoryQueries:
    """Mixed into HistoryStore: latest/before/after/around/between/targets."""

    # -- queries ------------------------------------------------------------------------

    def latest(
        self: HistoryStore, target: str, limit: int, after: Ref | None = None
    ) -> list[StoredMessage]:
        """The newest ``limit`` messages, only those after ``after`` when it is given."""
        with self._lock:
            lo = None
            if after is not None:
                lo = self._lower(target, after)
                if lo is None:
                    return []
            return self._range(target, lo, None, limit, newest=True)

    def before(self: HistoryStore, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just before ``ref`` (excluded)."""
        with self._lock:
            hi = self._upper(target, ref)
            return [] if hi is None else self._range(target, None, hi, limit, newest=True)

    def after(self: HistoryStore, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` messages just after ``ref`` (excluded)."""
        with self._lock:
            lo = self._lower(target, ref)
            return [] if lo is None else self._range(target, lo, None, limit, newest=False)

    def around(self: HistoryStore, target: str, ref: Ref, limit: int) -> list[StoredMessage]:
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

    def between(
        self: HistoryStore, target: str, start: Ref, end: Ref, limit: int
    ) -> list[StoredMessage]:
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

    def dm_peers(self: HistoryStore, nick: str) -> set[str]:
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

    def _lower(self: HistoryStore, target: str, ref: Ref) -> Key | None:
        """Key to use when ``ref`` is an exclusive lower bound; None if msgid unknown."""
        if ref.time is not None:
            return (to_ms(ref.time), SEQ_ABOVE)
        return self._find_msgid(target, ref.msgid or "")

    def _upper(self: HistoryStore, target: str, ref: Ref) -> Key | None:
        """Key to use when ``ref`` is an exclusive upper bound; None if msgid unknown."""
        if ref.time is not None:
            return (to_ms(ref.time), SEQ_BELOW)
        return self._find_msgid(target, ref.msgid or "")

    def _find_msgid(self: HistoryStore, target: str, msgid: str) -> Key | None:
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
            seq = int(suffix.group(1), 16)
            # A run holding that seq is the last row to start at or before it (a run's
            # seqs are consecutive); a block is the target's last row to start there,
            # less than BLOCK_SEQS back, found by a short walk down the primary key.
            for sql, params in (
                (
                    "SELECT * FROM messages WHERE seq = (SELECT MAX(seq) FROM messages"
                    " WHERE seq <= ?) AND target = ?",
                    (seq, target),
                ),
                (
                    "SELECT * FROM messages NOT INDEXED WHERE seq <= ? AND seq > ?"
                    " AND target = ? ORDER BY seq DESC LIMIT 1",
                    (seq, seq - BLOCK_SEQS, target),
                ),
            ):
                for key, msg in _row_entries(self._read(sql, params)):
                    if key[1] == seq and msg.msgid == msgid:
                        return key
        if not msgid:
            return None
        # Anything else: scan the target's rows for it as a whole line of msgids (an
        # exact match, so a short msgid does not pull in every row that contains it).
        rows = self._read(
            "SELECT * FROM messages WHERE target = ?"
            " AND instr(char(10) || msgids || char(10), char(10) || ? || char(10)) > 0",
            (target, msgid),
        )
        for key, msg in _row_entries(rows):
            if msg.msgid == msgid:
                return key
        return None

    def _ref_point(self: HistoryStore, keys: list[str], ref: Ref) -> int | None:
        """The ms a TARGETS bound stands for; a msgid is looked up in any of ``keys``."""
        if ref.time is not None:
            return to_ms(ref.time)
        for key in keys:
            found = self._find_msgid(key, ref.msgid or "")
            if found is not None:
                return found[0]
        return None

    def _loaded(self: HistoryStore, target: str) -> TargetCache | None:
        """The target's cache, loading its newest messages from SQLite on first use."""
        cache = self._caches.get(target)
        if cache is not None and cache.loaded:
            return cache
        if self._rconn is None:
            return None
        cap = self.cache_per_target
        done = self._committed_seq  # before the read: see _spill_of
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
        merged: dict[int, Entry] = {e[0][1]: e for e in stored}
        if cache is not None:
            merged.update((e[0][1], e) for e in cache.entries())
        spilled = self._spill_of(target, done)
        merged.update((e[0][1], e) for e in spilled)
        if not merged:
            return None  # unknown target: don't let queries grow the cache dict
        fresh = TargetCache(cap, loaded=True, complete=exhausted and len(merged) < cap)
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
        done = self._committed_seq
        stored, _ = self._scan(sql, params, lo, hi, limit, newest=newest)
        merged: dict[int, Entry] = {e[0][1]: e for e in stored}
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

    def _spill_of(self: HistoryStore, target: str, done: int) -> list[Entry]:
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

    def _latest_ms(self: HistoryStore, target: str, lo: Key, hi: Key) -> int | None:
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
            stored, _ = self._scan(
                "SELECT * FROM messages WHERE target = ? AND time_ms >= ? AND time_ms < ?"
                " ORDER BY time_ms DESC, seq DESC",
                (target, lo[0] - BLOCK_SPAN_MS, hi[0]),
                lo,
                hi,
                1,
                newest=True,
            )
            if stored and (best is None or stored[0][0][0] > best):
                best = stored[0][0][0]
        return best

    def _scan(
        self: HistoryStore,
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
        assert self._rconn is not None
        found: list[Entry] = []
        bound: Key | None = None  # the limit-th message found, once there are limit
        exhausted = True
        try:
            cursor = self._rconn.execute(sql, tuple(params))
            try:
                for row in cursor:
                    first = (row[2], row[0])
                    if bound is not None and (
                        (row[2] + BLOCK_SPAN_MS, SEQ_ABOVE) < bound if newest else first > bound
                    ):
                        exhausted = False
                        break
                    if row[10] is None:
                        # A run: its keys are (time, seq .. seq + count - 1).
                        last = (row[2], row[0] + row[9] - 1)
                        if (lo is not None and last <= lo) or (hi is not None and first >= hi):
                            continue
                        if bound is not None and (last < bound if newest else first > bound):
                            continue
                    found += [
                        e
                        for e in _row_entries((row,))
                        if (lo is None or e[0] > lo) and (hi is None or e[0] < hi)
                    ]
                    if len(found) >= limit:
                        found.sort()
                        found = found[-limit:] if newest else found[:limit]
                        bound = found[0][0] if newest else found[-1][0]
            finally:
                cursor.close()  # ends the read at once: an open one holds back checkpoints
        except sqlite3.Error as exc:
            raise HistoryStoreError(f"history query failed: {exc}") from exc
        found.sort()
        return found, exhausted

    def _read(self: HistoryStore, sql: str, params: Iterable[object]) -> list[tuple[Any, ...]]:
        assert self._rconn is not None
        try:
            return self._rconn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistoryStoreError(f"history query failed: {exc}") from exc


def _row_entries(rows: Iterable[tuple[Any, ...]]) -> list[Entry]:
    """The messages of stored rows (runs or blocks, see history.py), in key order within
    a row."""
    out: list[Entry] = []
    for seq, msgids, time_ms, target, source, command, recipient, texts, tags, n, runs in rows:
        if runs is not None:
            try:
                for run in load_block(runs):
                    out += run_entries(run)
            except (ValueError, TypeError) as exc:
                raise HistoryStoreError(f"history row {seq} of {target}: {exc}") from exc
            continue
        parsed = tuple((str(k), str(v)) for k, v in json.loads(tags)) if tags else ()
        ids, lines = (msgids.split("\n"), texts.split("\n")) if n > 1 else ([msgids], [texts])
        when = time_ms / 1000
        out += (
            ((time_ms, seq + i), StoredMessage(
                msgid, when, target, source, command, recipient, text, parsed))
            for i, (msgid, text) in enumerate(zip(ids, lines, strict=True))
        )  # fmt: skip
    return out


def last_stored_seq(conn: sqlite3.Connection) -> int:
    """The highest seq in the database (0 when empty): in the row that starts last, or in
    a block that starts less than BLOCK_SEQS before it. A block that cannot be read
    counts as reaching as far as a block may, so no seq is ever handed out twice."""
    rows = conn.execute(
        "SELECT * FROM messages WHERE seq > (SELECT MAX(seq) FROM messages) - ?", (BLOCK_SEQS,)
    ).fetchall()
    last = 0
    for row in rows:
        try:
            entries = _row_entries((row,))
        except HistoryStoreError:
            last = max(last, row[0] + BLOCK_SEQS - 1)
        else:
            last = max(last, entries[-1][0][1])
    return last
