"""The history file: plain SQLite that any tool can read, one row per message.

    sqlite3 history.db "SELECT time, sender, text FROM message_log
                        WHERE conversation = '#general' ORDER BY time_ms, seq"

``messages`` holds every PRIVMSG and NOTICE: its ``seq`` (the number at the end of its
msgid), the conversation (a casefolded room name, or ``dm:<nick> <nick>`` for direct
messages), the time in Unix milliseconds, sender, command, target as written, text,
and client tags as a JSON object. ``message_search`` is an FTS5 index over the text
(external content: the words are indexed, the text lives once, in ``messages``).
``conversations`` has one row per conversation (its two parties for direct messages,
so CHATHISTORY TARGETS finds a nick's partners without scanning messages).
``rooms`` keeps the settings of rooms that have history (modes, key, topic, bans, as
JSON), so a room that empties or outlives a restart comes back as it was, key and all.
``read_markers`` keeps where each reader got to in each room or direct conversation
(IRCv3 ``draft/read-marker``; see handlers/readmarker.py for who owns a marker).
``accounts`` holds who may log in (SASL) and the nick each account owns; only hashes
of passwords are kept (accounts/credentials.py). ``message_log`` is a view with
readable times.

Files of schema v1 to v5 (runs and blocks of several messages per row) are converted
once when opened; see legacy.py. v6 files only gain the ``accounts`` table.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from chat_server.history.model import HistoryStoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 7

DDL = """
CREATE TABLE IF NOT EXISTS messages (
    seq          INTEGER PRIMARY KEY,  -- the msgid's number; unique, grows with time
    conversation TEXT    NOT NULL,     -- '#room' casefolded, or 'dm:<nick> <nick>'
    time_ms      INTEGER NOT NULL,     -- Unix time in milliseconds
    msgid        TEXT    NOT NULL,
    sender       TEXT    NOT NULL,     -- nick!user@host
    command      TEXT    NOT NULL,     -- PRIVMSG or NOTICE
    target       TEXT    NOT NULL,     -- the room or nick as the sender wrote it
    text         TEXT    NOT NULL,
    tags         TEXT    NOT NULL DEFAULT '{}'  -- client tags, a JSON object
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation, time_ms, seq);
-- Only which messages hold a word (detail = none), no positions and no per-row sizes
-- (columnsize = 0): SEARCH matches all its words anywhere in a message, orders by time
-- and never ranks, so the rest was never read, and indexing it cost the worker about
-- a third more per message.
CREATE VIRTUAL TABLE IF NOT EXISTS message_search
    USING fts5(text, content = 'messages', content_rowid = 'seq', columnsize = 0,
               detail = none);
CREATE TRIGGER IF NOT EXISTS messages_forget_words AFTER DELETE ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TABLE IF NOT EXISTS conversations (
    name     TEXT PRIMARY KEY,         -- as messages.conversation
    party_a  TEXT,                     -- the two nicks of a direct conversation
    party_b  TEXT,
    last_ms  INTEGER NOT NULL          -- time of its newest message
);
CREATE INDEX IF NOT EXISTS conversations_by_party_a ON conversations (party_a);
CREATE INDEX IF NOT EXISTS conversations_by_party_b ON conversations (party_b);
CREATE TABLE IF NOT EXISTS rooms (
    name       TEXT PRIMARY KEY,       -- casefolded
    settings   TEXT NOT NULL,          -- JSON: name, modes, key, limit, topic, bans
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS read_markers (
    owner   TEXT    NOT NULL,          -- 'nick user@host', the nick casefolded
    target  TEXT    NOT NULL,          -- a casefolded room name or nick
    time_ms INTEGER NOT NULL,          -- time of the last message read, Unix ms
    PRIMARY KEY (owner, target)
);
CREATE TABLE IF NOT EXISTS accounts (
    name       TEXT PRIMARY KEY,       -- casefolded; the nick the account owns
    display    TEXT NOT NULL,          -- the name as registered
    password   TEXT NOT NULL,          -- 'scrypt$n$r$p$salt$hash' (base64), for PLAIN
    scram      TEXT NOT NULL,          -- JSON: SCRAM-SHA-256 salt, iterations and keys
    email      TEXT,
    history_from INTEGER NOT NULL,     -- its nick's direct messages from this seq are its
    created_ms INTEGER NOT NULL,
    changed_ms INTEGER NOT NULL        -- last password change
);
CREATE VIEW IF NOT EXISTS message_log AS
    SELECT seq, conversation,
           strftime('%Y-%m-%dT%H:%M:%fZ', time_ms / 1000.0, 'unixepoch') AS time,
           time_ms, msgid, sender, command, target, text, tags
    FROM messages;
"""

_COLUMNS = ("seq", "conversation", "time_ms", "msgid", "sender", "command", "target", "text",
            "tags")  # fmt: skip


def connect(path: str | Path, *, sync: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal.

    ``sync`` makes every commit an fsync (``synchronous=FULL``): a committed message
    survives a power loss. Without it (``NORMAL``) a commit survives a crash of any
    process, and a power loss may take the last commits back.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    if str(path) != ":memory:":
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("history %s: WAL not available, journal mode %s", path, mode)
    conn.execute(f"PRAGMA synchronous = {'FULL' if sync else 'NORMAL'}")
    return conn


def open_database(path: str | Path, *, sync: bool = False) -> sqlite3.Connection:
    """Open (creating or converting) the history file; any failure is one clear error."""
    if str(path) != ":memory:":
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryStoreError(f"cannot open history database {path}: {exc}") from exc
    try:
        conn = connect(path, sync=sync)
        try:
            _prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn
    except HistoryStoreError:
        raise
    except sqlite3.Error as exc:
        raise HistoryStoreError(f"cannot open history database {path}: {exc}") from exc


def _prepare(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryStoreError(
            f"history database schema v{version} is newer than this server (v{SCHEMA_VERSION})"
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
        if old and old != _COLUMNS:
            from chat_server.history.legacy import convert  # only old files need it

            convert(conn, old)  # renames the old table, leaves it to be copied below
        for statement in _statements(DDL):
            conn.execute(statement)
        columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(messages)"))
        if columns != _COLUMNS:  # someone else's table of that name
            raise HistoryStoreError(f"table 'messages' has unexpected columns {columns}")
        if old and old != _COLUMNS:
            from chat_server.history.legacy import copy_rows

            copy_rows(conn)
        elif version == 6:
            _reindex_words(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _reindex_words(conn: sqlite3.Connection) -> None:
    """v6 indexed word positions too; v7 keeps only which message holds which word.
    Build the smaller index once from the stored texts (a few seconds a million)."""
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'message_search'"
    ).fetchone()
    if "detail" in sql:
        return
    log.info("history: rebuilding the search index in its smaller v7 form")
    conn.execute("DROP TABLE message_search")
    for statement in _statements(DDL):
        if "CREATE VIRTUAL TABLE IF NOT EXISTS message_search" in statement:
            conn.execute(statement)
    conn.execute("INSERT INTO message_search (message_search) VALUES ('rebuild')")


def _statements(script: str) -> list[str]:
    """The statements of ``script`` one by one (executescript would COMMIT first)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


def last_seq(conn: sqlite3.Connection) -> int:
    """The highest stored sequence (0 for an empty file)."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0])
