"""The history worker's SQLite side: the single server's file (schema.py).

The worker (worker.py) decides when to write, commit, retry and answer; this module
holds what is particular to SQLite: the statements, the search index kept by hand,
the query budget as a progress handler, and the accounts table. postgres.py is the
same for a cluster's shared history.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chat_protocol.casemap import casefold
from chat_server.accounts.storage import SqliteAccounts
from chat_server.history.model import Run, dm_parties
from chat_server.history.schema import open_database

log = logging.getLogger(__name__)

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


def message_rows(runs: list[Run]) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """The rows of ``runs`` (seq, conversation, time_ms, msgid, sender, command, target,
    text, tags as JSON text) and each conversation's newest time among them."""
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
    return rows, newest


def conversation_row(name: str, last_ms: int) -> tuple[str, str | None, str | None, int]:
    """A ``conversations`` row: its two parties when it is a direct one."""
    parties = dm_parties(name)
    return (name, *parties, last_ms) if parties else (name, None, None, last_ms)


class SqliteWriter:
    """One open history file, written and read by the worker."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: str, *, sync: bool) -> None:
        self.conn = open_database(path, sync=sync)
        self.conn.create_function("irc_fold", 1, casefold, deterministic=True)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def begin(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def insert(self, runs: list[Run]) -> None:
        """Store the runs' messages in the open transaction; those stored already (a
        batch given again after a worker restart) are skipped."""
        db = self.conn
        self.begin()
        rows, newest = message_rows(runs)
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
            [conversation_row(conv, ms) for conv, ms in newest.items()],
        )

    def save_room(self, name: str, settings: str | None) -> None:
        self.begin()
        if settings is None:
            self.conn.execute("DELETE FROM rooms WHERE name = ?", (name,))
        else:
            self.conn.execute(
                "INSERT OR REPLACE INTO rooms VALUES (?, ?, ?)",
                (name, settings, int(time.time() * 1000)),
            )

    def room_settings(self, name: str) -> str | None:
        row = self.conn.execute("SELECT settings FROM rooms WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def save_marker(self, owner: str, target: str, time_ms: int, most: int) -> None:
        """Keep the later of ``time_ms`` and the stored marker; past ``most`` markers of
        one owner, drop the oldest (never the one just set)."""
        db = self.conn
        self.begin()
        db.execute(_SAVE_MARKER, (owner, target, time_ms))
        (count,) = db.execute(
            "SELECT count(*) FROM read_markers WHERE owner = ?", (owner,)
        ).fetchone()
        if count > most:
            db.execute(_TRIM_MARKERS, (owner, owner, target, count - most))

    def prune(self, max_age_days: float | None, max_per_conversation: int | None) -> int:
        from chat_server.history.retention import prune  # retention is rare; load it late

        return prune(
            self.conn,
            max_age_days=max_age_days,
            max_per_conversation=max_per_conversation,
            now_ms=int(time.time() * 1000),
        )

    def stored_rooms(self) -> list[str]:
        return [name for (name,) in self.conn.execute(
            "SELECT name FROM conversations WHERE party_a IS NULL")]  # fmt: skip

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Stop a statement that runs past ``seconds`` (it raises OperationalError)."""
        started = time.monotonic()

        def too_long() -> int:
            return 1 if time.monotonic() - started > seconds else 0

        self.conn.set_progress_handler(too_long, 10_000)
        try:
            yield
        finally:
            self.conn.set_progress_handler(None, 0)

    def timed_out(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "interrupt" in str(exc)

    def account(self, kind: str, args: Any, commit_first: Callable[[], bool]) -> Any:
        """Account lookups and changes (accounts/storage.py). A change is committed
        before it is answered: REGISTER SUCCESS means the account is on disk.
        ``commit_first`` commits the messages before it and says whether that worked."""
        accounts = SqliteAccounts(self.conn)
        if kind == "account":  # folded name -> the row, or None
            row = accounts.get(args)
            return None if row is None else list(row)
        if kind == "account_names":
            return accounts.names()
        if kind not in ("account_create", "account_password", "account_delete"):
            raise ValueError(f"unknown query {kind!r}")
        if not commit_first():  # messages first: the change below is its own transaction
            raise sqlite3.OperationalError("the history database is failing; try again later")
        if kind == "account_create":
            return accounts.create(*args)
        if kind == "account_password":
            return accounts.set_password(*args)
        return accounts.delete(args)
