"""The ``accounts`` table (history/schema.py): the SQL, in one place.

Used by the history worker (which owns the server's database while it runs) and by
``chat-server account`` (which opens the file itself, as ``chat-server history`` does).
"""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple


class AccountRow(NamedTuple):
    """One account as stored (see credentials.py for the two hash columns)."""

    name: str  # casefolded
    display: str
    password: str
    scram: str
    email: str | None
    history_from: int  # the nick's direct messages from this sequence on are the account's
    created_ms: int
    changed_ms: int


_COLUMNS = "name, display, password, scram, email, history_from, created_ms, changed_ms"


class SqliteAccounts:
    """The accounts of one open database file, shaped like redis_store.RedisAccounts
    (so ``chat-server account`` works the same on either). Each write is one
    statement, atomic on its own; transactions are the caller's."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def get(self, folded: str) -> AccountRow | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM accounts WHERE name = ?", (folded,)
        ).fetchone()
        return AccountRow(*row) if row else None

    def names(self) -> list[str]:
        """Every account's casefolded name (the nicks accounts own)."""
        return [name for (name,) in self.db.execute("SELECT name FROM accounts")]

    def listing(self) -> list[AccountRow]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY name")
        return [AccountRow(*row) for row in rows]

    def create(
        self,
        folded: str,
        display: str,
        password: str,
        scram: str,
        email: str | None,
        history_from: int,
    ) -> bool:
        """Insert a new account; False when the name is taken. ``history_from``: the
        first message sequence of the nick's direct messages the account may read
        (those before were whoever's held the nick before the account existed)."""
        now = int(time.time() * 1000)
        cursor = self.db.execute(
            f"INSERT OR IGNORE INTO accounts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (folded, display, password, scram, email, history_from, now, now),
        )
        return cursor.rowcount == 1

    def set_password(self, folded: str, password: str, scram: str) -> bool:
        """Replace an account's hashes; False when there is no such account."""
        cursor = self.db.execute(
            "UPDATE accounts SET password = ?, scram = ?, changed_ms = ? WHERE name = ?",
            (password, scram, int(time.time() * 1000), folded),
        )
        return cursor.rowcount == 1

    def delete(self, folded: str) -> bool:
        cursor = self.db.execute("DELETE FROM accounts WHERE name = ?", (folded,))
        return cursor.rowcount == 1

    def history_start(self) -> int:
        """Where a new account's direct messages begin: after the newest stored message
        (those before were whoever held the nick then)."""
        (seq,) = self.db.execute("SELECT coalesce(max(seq), 0) + 1 FROM messages").fetchone()
        return int(seq)

    def close(self) -> None:
        self.db.close()
