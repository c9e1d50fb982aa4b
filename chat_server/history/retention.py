"""History retention: :func:`prune` deletes what the limits (an age, a count per
conversation) no longer keep; :func:`count_prunable` counts it without deleting.

Used by ``chat-server history prune`` (admin.py) and by the writer process
(worker.py). Only the file's plain schema (schema.py) is used, so it works on a stopped
server's file, beside a running one (SQLite WAL: readers never block the writer), and
from the writer process itself.

Invariants kept by :func:`prune`:

- Messages go oldest first, in chunks of at most ``chunk`` rows, one short write
  transaction per chunk, so the live writer waits at most one chunk for the lock,
  never the whole prune. Measured with the search index: 10-15 us a row, so a chunk
  of 1,000 holds the lock 10-15 ms, one of 10,000 100-150 ms.
- ``conversations`` has a row only for conversations that still have messages.
- The search index follows by itself: the schema's ``messages_forget_words`` trigger
  removes each deleted message's words.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHUNK = 1_000  # rows deleted per transaction: ~10-15 ms of lock (module docstring)
DAY_MS = 86_400_000


def prune(
    conn: sqlite3.Connection,
    *,
    max_age_days: float | None,
    max_per_conversation: int | None,
    now_ms: int,
    chunk: int = CHUNK,
    limit: int | None = None,
) -> int:
    """Delete messages older than ``max_age_days`` and, in each conversation (rooms and
    direct messages alike), all but the newest ``max_per_conversation``; None = no limit.

    Returns the number of messages deleted. ``conn`` must be in autocommit mode (as
    ``schema.connect`` makes it) and outside a transaction: every chunk of ``chunk`` rows
    is its own transaction. ``limit`` bounds the work of one call: a periodic caller
    (the writer process) passes e.g. ``limit=CHUNK`` and calls again later while the
    answer equals ``limit``; None deletes everything due. Finding the conversations over
    ``max_per_conversation`` reads the conversation index once, a read that does not
    hold up the writer.
    """
    _check_limits(max_age_days, max_per_conversation)
    if chunk < 1 or (limit is not None and limit < 0):
        raise ValueError("chunk must be at least 1 and limit at least 0")
    deleted = 0

    def budget() -> int | None:
        return None if limit is None else limit - deleted

    if max_age_days is not None:
        cutoff = now_ms - round(max_age_days * DAY_MS)
        # seq grows with time, so the table's own order meets the oldest rows first.
        deleted += _delete_chunks(conn, "time_ms < ?", (cutoff,), "seq", chunk, budget())
    if max_per_conversation is not None:
        crowded = conn.execute(
            "SELECT conversation FROM messages GROUP BY conversation HAVING count(*) > ?",
            (max_per_conversation,),
        ).fetchall()
        for (name,) in crowded:
            if budget() == 0:
                break
            oldest_kept = conn.execute(
                "SELECT time_ms, seq FROM messages WHERE conversation = ?"
                " ORDER BY time_ms DESC, seq DESC LIMIT 1 OFFSET ?",
                (name, max_per_conversation - 1),
            ).fetchone()
            if oldest_kept is None:  # another prune got there first
                continue
            when, seq = oldest_kept
            deleted += _delete_chunks(
                conn,
                "conversation = ? AND (time_ms < ? OR (time_ms = ? AND seq < ?))",
                (name, when, when, seq),
                "time_ms, seq",  # the index's order: no sort
                chunk,
                budget(),
            )
    return deleted


def count_prunable(
    conn: sqlite3.Connection,
    *,
    max_age_days: float | None,
    max_per_conversation: int | None,
    now_ms: int,
) -> int:
    """How many messages :func:`prune` would delete with these limits (reads only).

    In a conversation both limits cut a prefix of its (time, seq) order, so together
    they cut the longer of the two prefixes.
    """
    _check_limits(max_age_days, max_per_conversation)
    cutoff = None if max_age_days is None else now_ms - round(max_age_days * DAY_MS)
    rows = conn.execute(
        "SELECT count(*), sum(CASE WHEN time_ms < ? THEN 1 ELSE 0 END)"
        " FROM messages GROUP BY conversation",
        (cutoff,),
    )
    total = 0
    for count, old in rows:
        over = 0 if max_per_conversation is None else max(0, count - max_per_conversation)
        total += max(over, old or 0)
    return total


def _check_limits(max_age_days: float | None, max_per_conversation: int | None) -> None:
    """Refuse limits that would delete everything: that is never what a setting meant."""
    if max_age_days is not None and not max_age_days > 0:
        raise ValueError(f"max_age_days must be greater than 0, got {max_age_days}")
    if max_per_conversation is not None and max_per_conversation < 1:
        raise ValueError(f"max_per_conversation must be at least 1, got {max_per_conversation}")


def _delete_chunks(
    conn: sqlite3.Connection,
    where: str,
    params: tuple[Any, ...],
    order: str,
    chunk: int,
    budget: int | None,
) -> int:
    """Delete the rows matching ``where``, oldest first, one transaction per chunk."""
    deleted = 0
    while budget is None or deleted < budget:
        size = chunk if budget is None else min(chunk, budget - deleted)
        this_chunk = f"SELECT seq FROM messages WHERE {where} ORDER BY {order} LIMIT ?"
        chunk_params = (*params, size)
        with _write_transaction(conn):
            touched = conn.execute(
                f"SELECT DISTINCT conversation FROM messages WHERE seq IN ({this_chunk})",
                chunk_params,
            ).fetchall()
            # One statement for the whole chunk: a statement per row made FTS5 flush its
            # index at each one (measured ~400 us a row against ~3 us in one statement).
            gone = conn.execute(
                f"DELETE FROM messages WHERE seq IN ({this_chunk})", chunk_params
            ).rowcount
            # Only the oldest messages go, so a conversation's newest one (its last_ms)
            # stays unless all of them went: then its row goes too.
            conn.executemany(
                "DELETE FROM conversations WHERE name = ?"
                " AND NOT EXISTS (SELECT 1 FROM messages WHERE conversation = ?)",
                [(name, name) for (name,) in touched],
            )
        deleted += gone
        if gone < size:
            break
    return deleted


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock at BEGIN: a deferred one that reads first could
    # fail with "database is locked" at its first DELETE instead of waiting its turn.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
