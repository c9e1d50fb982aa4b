"""A cluster's shared history in PostgreSQL: the single server's schema, another engine.

Every node of a cluster (``--history-postgres URL``) runs its history worker on the
same database, so CHATHISTORY, SEARCH, TARGETS and read markers give the same answer
on every node, and nothing is capped but by retention. The tables and the queries are
those of the SQLite file (schema.py, queries.py): one row per message keyed by
``seq`` (the Redis stream id as a number, so ``seq`` orders the cluster's messages as
the stream did), ``tags`` and room ``settings`` as ``jsonb``, a GIN index over the
words of the text instead of FTS5, and ``irc_fold`` as an SQL function::

    psql "$URL" -c "SELECT time, sender, text FROM message_log
                    WHERE conversation = '#general' ORDER BY time_ms, seq"

Who writes: every node writes each message it reads from the cluster's event stream,
and a message already stored is skipped (``ON CONFLICT DO NOTHING``). That costs one
insert per node per message, and buys that a message is stored once any node has
read it: no node's death, nor any one worker's failure, loses it. Rows of the same
message from two nodes meet on the primary key: the second waits for the first's
commit and then skips. Every node inserts in stream order, so those waits never form
a cycle. Conversations' ``last_ms`` are updated only at commit, in name order; a
conversation's row is made when its first message is inserted (queries right after
need its parties). Two nodes making the same new conversation at once can, rarely,
deadlock: PostgreSQL aborts one of the two transactions and the worker inserts its
messages again a second later (as after any failed commit), so nothing is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from chat_server.history.model import HistoryStoreError, Run
from chat_server.history.sqlite_writer import conversation_row, message_rows

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CONNECT_TIMEOUT = 5  # seconds: a worker that cannot reach the database says so soon
CHUNK = 1_000  # rows deleted per retention statement
RECONNECT_EVERY = 1.0  # seconds between attempts to reach a database that went away

# The server's casefold (chat_protocol.casemap: CASEMAPPING=ascii): only A-Z fold.
_FOLD = (
    "CREATE OR REPLACE FUNCTION irc_fold(name text) RETURNS text LANGUAGE sql IMMUTABLE"
    " STRICT PARALLEL SAFE AS $$ SELECT translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',"
    " 'abcdefghijklmnopqrstuvwxyz') $$"
)

DDL = (
    """CREATE TABLE IF NOT EXISTS messages (
        seq          bigint PRIMARY KEY,  -- the Redis stream id <ms>-<n> as (ms << 20) + n
        conversation text   NOT NULL,     -- '#room' casefolded, or 'dm:<nick> <nick>'
        time_ms      bigint NOT NULL,     -- Unix time in milliseconds
        msgid        text   NOT NULL,
        sender       text   NOT NULL,     -- nick!user@host
        command      text   NOT NULL,     -- PRIVMSG or NOTICE
        target       text   NOT NULL,     -- the room or nick as the sender wrote it
        text         text   NOT NULL,
        tags         jsonb  NOT NULL DEFAULT '{}'  -- client tags
    )""",
    "CREATE INDEX IF NOT EXISTS messages_by_conversation"
    " ON messages (conversation, time_ms, seq)",
    "CREATE INDEX IF NOT EXISTS messages_words ON messages"
    " USING gin (to_tsvector('simple', text))",
    """CREATE TABLE IF NOT EXISTS conversations (
        name     text PRIMARY KEY,
        party_a  text,                    -- the two nicks of a direct conversation
        party_b  text,
        last_ms  bigint NOT NULL          -- time of its newest message
    )""",
    "CREATE INDEX IF NOT EXISTS conversations_by_party_a ON conversations (party_a)",
    "CREATE INDEX IF NOT EXISTS conversations_by_party_b ON conversations (party_b)",
    """CREATE TABLE IF NOT EXISTS rooms (
        name       text PRIMARY KEY,      -- casefolded
        settings   jsonb  NOT NULL,       -- name, modes, key, limit, topic, bans
        updated_ms bigint NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS read_markers (
        owner   text   NOT NULL,
        target  text   NOT NULL,
        time_ms bigint NOT NULL,
        PRIMARY KEY (owner, target)
    )""",
    """CREATE OR REPLACE VIEW message_log AS
        SELECT seq, conversation,
               to_char(to_timestamp(time_ms / 1000.0) AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time,
               time_ms, msgid, sender, command, target, text, tags
        FROM messages""",
    _FOLD,
    """CREATE TABLE IF NOT EXISTS distchat_schema (
        version integer NOT NULL
    )""",
)

_INSERT = (
    "INSERT INTO messages VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
    " ON CONFLICT (seq) DO NOTHING"
)
_CONVERSATIONS = (
    "INSERT INTO conversations VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE"
    " SET last_ms = greatest(conversations.last_ms, excluded.last_ms)"
)
_NEW_CONVERSATION = (
    "INSERT INTO conversations VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING"
)
_SAVE_MARKER = (
    "INSERT INTO read_markers VALUES (%s, %s, %s) ON CONFLICT (owner, target)"
    " DO UPDATE SET time_ms = greatest(read_markers.time_ms, excluded.time_ms)"
)
_TRIM_MARKERS = (
    "DELETE FROM read_markers WHERE owner = %s AND target IN (SELECT target FROM"
    " read_markers WHERE owner = %s AND target != %s ORDER BY time_ms LIMIT %s)"
)


class PgConnection:
    """A psycopg connection that takes queries.py's SQL (``?`` placeholders)."""

    dialect = "postgres"  # queries.search words its two engine-specific clauses by it

    def __init__(self, conn: psycopg.Connection[Any] | None) -> None:
        self.raw = conn  # None until the writer first reaches the database

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if self.raw is None:
            raise psycopg.OperationalError("the history database is unreachable")
        return self.raw.execute(sql.replace("?", "%s"), params)


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection in autocommit mode (the worker opens its transactions itself)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                           application_name="distchat history")  # fmt: skip


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Create the tables on a new database; refuse one of a newer schema. Several nodes
    may start at once: an advisory lock lets one create while the others wait."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('distchat schema'))")
        for statement in DDL:
            conn.execute(statement)
        row = conn.execute("SELECT max(version) FROM distchat_schema").fetchone()
        version = row[0] if row else None
        if version is None:
            conn.execute("INSERT INTO distchat_schema VALUES (%s)", (SCHEMA_VERSION,))
        elif version > SCHEMA_VERSION:
            raise HistoryStoreError(
                f"history database schema v{version} is newer than this server"
                f" (v{SCHEMA_VERSION})"
            )


class PostgresWriter:
    """The worker's side of a cluster's PostgreSQL history (see the module docstring)."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, url: str, *, sync: bool) -> None:
        """Connect now if the database is there; if it is not, the first write or query
        connects (the node serves chat meanwhile, its messages held for the retry).
        ``sync`` changes nothing here: PostgreSQL's default ``synchronous_commit = on``
        already makes every commit durable, and "committed" is what lets the server
        forget a message, so it is never traded for speed."""
        del sync
        self.url = url
        self.newest: dict[str, int] = {}  # conversations' newest times, set at commit
        self.next_attempt = 0.0  # no reconnection before this (monotonic)
        self.open = False  # a transaction was begun (BEGIN sent, no COMMIT/ROLLBACK yet)
        self.raw: psycopg.Connection[Any] | None = None
        self.conn = PgConnection(None)
        try:
            self._usable()
        except psycopg.OperationalError as exc:
            log.error("history database unreachable (%s); retrying", str(exc).strip())

    def _usable(self) -> psycopg.Connection[Any]:
        """The connection, made again after it was lost (PostgreSQL restarted, a
        failover) at most once per RECONNECT_EVERY: while the database is away, writes
        and queries fail at once instead of each waiting out a connection timeout. The
        tables are made (or checked) at each new connection."""
        raw = self.raw
        if raw is not None and not (raw.closed or raw.broken):
            return raw
        now = time.monotonic()
        if now < self.next_attempt:
            raise psycopg.OperationalError("the history database is unreachable")
        self.next_attempt = now + RECONNECT_EVERY
        raw = connect(self.url)
        try:
            prepare(raw)
        except HistoryStoreError as exc:  # a newer schema: say so at every retry
            raw.close()
            raise psycopg.OperationalError(str(exc)) from exc
        if self.raw is not None:
            log.info("reconnected to the history database")
        self.raw = self.conn.raw = raw
        return raw

    def _current(self) -> psycopg.Connection[Any]:
        """The connection of the open transaction (never a new one: what the transaction
        did is gone with the old one, and its COMMIT must fail)."""
        if self.raw is None:
            raise psycopg.OperationalError("the history database is unreachable")
        return self.raw

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction was begun and not yet ended: still true when the
        connection broke meanwhile, so that its COMMIT fails instead of passing."""
        return self.open

    def begin(self) -> None:
        if not self.open:
            self._usable().execute("BEGIN")
            self.open = True

    def commit(self) -> None:
        if not self.open:
            return
        if self.newest:
            conv = sorted(self.newest.items())  # one lock order for every node
            with self._current().cursor() as cur:
                cur.executemany(_CONVERSATIONS, [conversation_row(name, ms) for name, ms in conv])
        self._current().execute("COMMIT")
        self.open = False
        self.newest = {}

    def rollback(self) -> None:
        self.newest = {}
        was_open, self.open = self.open, False
        raw = self.raw
        if was_open and raw is not None and not (raw.closed or raw.broken):
            raw.execute("ROLLBACK")

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()

    def insert(self, runs: list[Run]) -> None:
        self.begin()
        rows, newest = message_rows(runs)
        if rows:
            with self._current().cursor() as cur:
                cur.executemany(_INSERT, rows)
                # A conversation new to this transaction is registered now (a query that
                # follows, SEARCH or TARGETS, finds its parties at once); its last_ms is
                # brought up to date at commit.
                fresh = sorted(conv for conv in newest if conv not in self.newest)
                cur.executemany(_NEW_CONVERSATION, [conversation_row(name, newest[name])
                                                    for name in fresh])  # fmt: skip
        for conv, ms in newest.items():
            if self.newest.get(conv, -1) < ms:
                self.newest[conv] = ms

    def save_room(self, name: str, settings: str | None) -> None:
        self.begin()
        raw = self._current()
        if settings is None:
            raw.execute("DELETE FROM rooms WHERE name = %s", (name,))
            return
        raw.execute(
            "INSERT INTO rooms VALUES (%s, %s::jsonb, %s) ON CONFLICT (name) DO UPDATE"
            " SET settings = excluded.settings, updated_ms = excluded.updated_ms",
            (name, settings, int(time.time() * 1000)),
        )

    def room_settings(self, name: str) -> str | None:
        row = self._current().execute(
            "SELECT settings::text FROM rooms WHERE name = %s", (name,)
        ).fetchone()
        return None if row is None else str(row[0])

    def save_marker(self, owner: str, target: str, time_ms: int, most: int) -> None:
        """As in SQLite, inside a savepoint: a failure must not take the messages of the
        open transaction with it (PostgreSQL aborts a transaction at its first error)."""
        self.begin()
        raw = self._current()
        with self._savepoint():
            raw.execute(_SAVE_MARKER, (owner, target, time_ms))
            row = raw.execute(
                "SELECT count(*) FROM read_markers WHERE owner = %s", (owner,)
            ).fetchone()
            count = row[0] if row else 0
            if count > most:
                raw.execute(_TRIM_MARKERS, (owner, owner, target, count - most))

    def prune(self, max_age_days: float | None, max_per_conversation: int | None) -> int:
        """Retention: at most CHUNK messages per limit each call (every minute), in one
        transaction. Every node's worker calls it, but only the one that gets the
        retention lock works: the others' calls cost one statement, and two nodes never
        scan the table for the same rows at once."""
        raw = self._usable()
        deleted = 0
        with raw.transaction():
            row = raw.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext('distchat retention'))"
            ).fetchone()
            if not row or not row[0]:
                return 0
            if max_age_days:
                cutoff = int(time.time() * 1000) - round(max_age_days * 86_400_000)
                deleted += raw.execute(
                    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
                    " WHERE time_ms < %s ORDER BY time_ms LIMIT %s)",
                    (cutoff, CHUNK),
                ).rowcount
            if max_per_conversation:
                deleted += raw.execute(
                    "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq,"
                    " row_number() OVER (PARTITION BY conversation ORDER BY time_ms DESC,"
                    " seq DESC) AS newer FROM messages) AS ranked WHERE newer > %s LIMIT %s)",
                    (max_per_conversation, CHUNK),
                ).rowcount
        return deleted

    def stored_rooms(self) -> list[str]:
        rows = self._current().execute("SELECT name FROM conversations WHERE party_a IS NULL")
        return [name for (name,) in rows]

    @contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """A query stopped past ``seconds`` by PostgreSQL itself (statement_timeout),
        inside a savepoint when a write transaction is open, so that its failure rolls
        back only the query."""
        ms = max(1, int(seconds * 1000))
        if self.in_transaction:
            raw = self._current()
            with self._savepoint():
                raw.execute(f"SET LOCAL statement_timeout = {ms}")
                yield
                raw.execute("SET LOCAL statement_timeout = 0")
            return
        raw = self._usable()
        raw.execute(f"SET statement_timeout = {ms}")
        try:
            yield
        finally:
            if not (raw.closed or raw.broken):
                raw.execute("SET statement_timeout = 0")

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        raw = self._current()
        raw.execute("SAVEPOINT distchat")
        try:
            yield
        except BaseException:
            if not (raw.closed or raw.broken):
                raw.execute("ROLLBACK TO SAVEPOINT distchat")
            raise
        raw.execute("RELEASE SAVEPOINT distchat")

    def timed_out(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.errors.QueryCanceled)

    def account(self, kind: str, args: Any, commit_first: Callable[[], bool]) -> Any:
        raise ValueError("a cluster keeps its accounts in Redis, not in the history database")
