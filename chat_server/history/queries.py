"""Reading history: one SQL primitive, and everything CHATHISTORY and SEARCH ask of it
(and the read markers MARKREAD and JOIN ask for).

Runs in the writer process (worker.py), on the connection that writes, so a query
sees every message appended before it was asked, committed or not.

The primitive is :func:`window`: a conversation's messages strictly between two order
keys (either may be open), newest or oldest first, at most ``limit``, only those with
``seq >= min_seq``. LATEST, BEFORE, AFTER, AROUND and BETWEEN are a reference or two
turned into keys and one or two windows (:func:`chathistory`). Results are always in
chronological order. A row that is not what the writer writes (hostile text, broken
tags) is left out and logged: it affects only itself.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from chat_server.history.model import SEQ_ABOVE, SEQ_BELOW, Key, StoredMessage, to_ms

if TYPE_CHECKING:
    import sqlite3

    from chat_server.history.postgres import PgConnection

    Db = sqlite3.Connection | PgConnection  # both take SQL with ? placeholders

log = logging.getLogger(__name__)

_LOWEST: Key = (-(1 << 62), SEQ_BELOW)
_HIGHEST: Key = (1 << 62, SEQ_ABOVE)

# A row as the worker sends it (the store turns the pipe's JSON arrays back into tuples):
# seq, time_ms, conversation, msgid, sender, command, target, text, tags as (key, value)
# pairs.
Row = tuple[int, int, str, str, str, str, str, str, tuple[tuple[str, str], ...]]

# A stored text longer than any IRC line can carry was not written by us.
MAX_TEXT = 8192

_SELECT = (
    "SELECT seq, time_ms, conversation, msgid, sender, command, target, text, tags FROM messages"
)


def row_message(row: Row) -> StoredMessage:
    """A row as the message the server replays."""
    _seq, ms, conv, msgid, sender, command, target, text, tags = row
    return StoredMessage(msgid, ms / 1000, conv, sender, command, target, text, tags)


class Window(NamedTuple):
    """One conversation's messages strictly between two keys (None: open)."""

    conversation: str
    after: Key | None
    before: Key | None
    newest_first: bool
    limit: int
    min_seq: int = 0


def window(db: Db, w: Window) -> list[Row]:
    """The messages of ``w``, in chronological order."""
    if w.limit <= 0:
        return []
    lo = w.after or _LOWEST
    hi = w.before or _HIGHEST
    order = "DESC" if w.newest_first else "ASC"
    rows = db.execute(
        f"{_SELECT} WHERE conversation = ? AND (time_ms, seq) > (?, ?) AND (time_ms, seq) < (?, ?)"
        f" AND seq >= ? ORDER BY time_ms {order}, seq {order} LIMIT ?",
        (w.conversation, *lo, *hi, w.min_seq, w.limit),
    ).fetchall()
    if w.newest_first:
        rows.reverse()
    return _checked(rows)


def _checked(rows: list[Any]) -> list[Row]:
    good: list[Row] = []
    for seq, ms, conv, msgid, sender, command, target, text, tags in rows:
        try:
            if not isinstance(text, str) or len(text) > MAX_TEXT or "\n" in text or "\r" in text:
                raise ValueError("text is not one IRC line")
            found = tags if isinstance(tags, dict) else json.loads(tags or "{}")  # jsonb: a dict
            pairs = tuple((str(k), str(v)) for k, v in found.items())
            good.append((seq, ms, conv, str(msgid), str(sender), str(command), str(target),
                         text, pairs))  # fmt: skip
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("history row %s of %s left out: %s", seq, conv, exc)
    return good


# -- references -------------------------------------------------------------------------

# A reference as sent over the pipe: ("msgid", text) or ("time", unix seconds).
RefSpec = tuple[str, Any]


class Resolver:
    """Turns references into order keys for one conversation."""

    def __init__(self, db: Db, msgid_seq: Callable[[str], int | None]) -> None:
        self.db = db
        self.msgid_seq = msgid_seq

    def key(self, conversation: str, ref: RefSpec, side: str) -> Key | None:
        """``ref`` as an exclusive bound on ``side`` ("lo" or "hi"); None when a msgid
        names no message of this conversation. A timestamp excludes its whole ms."""
        kind, value = ref
        if kind == "time":
            ms = to_ms(value)
            return (ms, SEQ_ABOVE) if side == "lo" else (ms, SEQ_BELOW)
        seq = self.msgid_seq(str(value))
        if seq is None:
            return None
        row = self.db.execute(
            "SELECT time_ms, msgid FROM messages WHERE seq = ? AND conversation = ?",
            (seq, conversation),
        ).fetchone()
        if row is None or row[1] != value:
            return None
        return (row[0], seq)


class UnknownMsgid(LookupError):
    """A reference names a msgid that is no message of the conversation (never was, or
    was deleted by retention): the asker gets an error, not an empty batch that reads
    as "nothing there"."""

    def __init__(self, msgid: str) -> None:
        super().__init__(f"unknown msgid {msgid}")
        self.msgid = msgid


def chathistory(
    db: Db,
    resolver: Resolver,
    sub: str,
    conversation: str,
    refs: list[RefSpec | None],
    limit: int,
    min_seq: int,
) -> list[Row]:
    """A CHATHISTORY subcommand's messages; UnknownMsgid when a msgid names nothing here."""

    def win(after: Key | None, before: Key | None, newest: bool, n: int) -> list[Row]:
        return window(db, Window(conversation, after, before, newest, n, min_seq))

    def key(ref: RefSpec, side: str) -> Key:
        found = resolver.key(conversation, ref, side)
        if found is None:
            raise UnknownMsgid(str(ref[1]))
        return found

    ref = refs[0] if refs else None
    if sub == "LATEST":
        return win(None if ref is None else key(ref, "lo"), None, True, limit)
    if ref is None:
        return []
    if sub == "BEFORE":
        return win(None, key(ref, "hi"), True, limit)
    if sub == "AFTER":
        return win(key(ref, "lo"), None, False, limit)
    if sub == "AROUND":
        # A msgid's own message is on the later side (AROUND is context for it); a
        # timestamp puts its own ms there. One side running short lets the other fill.
        centre = key(ref, "hi")
        ms, seq = centre
        older = win(None, centre, True, limit)
        newer = win((ms, seq - 1), None, False, limit)
        n_old = min(len(older), limit // 2)
        n_new = min(len(newer), limit - n_old)
        n_old = min(len(older), limit - n_new)
        return older[len(older) - n_old :] + newer[:n_new]
    if sub == "BETWEEN":
        end = refs[1] if len(refs) > 1 else None
        if end is None:
            return []
        start_lo = key(ref, "lo")
        end_hi = key(end, "hi")
        if start_lo <= end_hi:
            return win(start_lo, end_hi, False, limit)
        # Backwards: the messages nearest the start, still oldest first.
        return win(key(end, "lo"), key(ref, "hi"), True, limit)
    raise ValueError(f"unknown subcommand {sub}")


# -- targets and search -------------------------------------------------------------------


def targets(
    db: Db,
    rooms: list[str],
    nick: str,
    min_seq: int,
    start: float,
    end: float,
    limit: int,
) -> list[tuple[str, int]]:
    """CHATHISTORY TARGETS: (conversation, time_ms of its latest message) for ``rooms``
    and ``nick``'s direct conversations (only messages with ``seq >= min_seq`` count
    there), for messages strictly between two times. Oldest first; with more than
    ``limit``, the ones nearest ``start`` (which may be the later time)."""
    forward = start <= end
    lo, hi = (to_ms(start), to_ms(end)) if forward else (to_ms(end), to_ms(start))
    dms = direct_conversations(db, nick)
    found: list[tuple[int, str]] = []
    for name, floor in [*((room, 0) for room in rooms), *((dm, min_seq) for dm in dms)]:
        row = db.execute(
            "SELECT max(time_ms) FROM messages WHERE conversation = ? AND time_ms > ?"
            " AND time_ms < ? AND seq >= ?",
            (name, lo, hi, floor),
        ).fetchone()
        newest = row[0] if row else None  # an aggregate always gives a row
        if newest is not None:
            found.append((newest, name))
    found.sort()
    chosen = found[:limit] if forward else found[-limit:] if limit > 0 else []
    return [(name, ms) for ms, name in chosen]


def direct_conversations(db: Db, nick: str) -> list[str]:
    """The direct conversations ``nick`` (casefolded) has had, by the index on parties."""
    return [
        name
        for (name,) in db.execute(
            "SELECT name FROM conversations WHERE party_a = ? UNION "
            "SELECT name FROM conversations WHERE party_b = ?",
            (nick, nick),
        )
    ]


class Search(NamedTuple):
    """A ``soju.im/search`` query over the conversations the asker may read."""

    conversations: list[tuple[str, int]]  # (conversation, min_seq); "dm:*": all of nick's
    nick: str  # the asker, casefolded
    text: str | None
    sender: str | None  # a nick, casefolded
    after_ms: int | None
    before_ms: int | None
    limit: int


# What the FTS5 unicode61 tokenizer keeps as a word: letters and digits.
_WORD = re.compile(r"[^\W_]+")


def fts_phrase(text: str) -> str:
    """Words as an FTS5 query that matches messages holding all of them, anywhere.

    The words are cut where the index's tokenizer cuts them (at anything but letters
    and digits: "can't" is "can" and "t"), and each one is quoted, so no FTS5 syntax
    gets through and no query asks for word positions, which the index does not keep
    (schema.py)."""
    words = _WORD.findall(text)
    return " ".join('"' + word + '"' for word in words)


def search(db: Db, s: Search) -> list[Row]:
    """The newest ``limit`` matches, in chronological order."""
    scope: list[tuple[str, int]] = []
    for name, floor in s.conversations:
        if name == "dm:*":
            scope += [(dm, floor) for dm in direct_conversations(db, s.nick)]
        else:
            scope.append((name, floor))
    if not scope or s.limit <= 0:
        return []
    where: list[str] = []
    args: list[Any] = []
    allowed = " OR ".join("(m.conversation = ? AND m.seq >= ?)" for _ in scope)
    where.append(f"({allowed})")
    for name, floor in scope:
        args += [name, floor]
    postgres = getattr(db, "dialect", "sqlite") == "postgres"
    if s.sender:
        # The nick is the part of nick!user@host before '!'; irc_fold is the server's
        # casefold (the SQLite worker registers it, PostgreSQL has it as a function).
        nick = "split_part(m.sender, '!', 1)" if postgres else (
            "substr(m.sender, 1, instr(m.sender || '!', '!') - 1)")  # fmt: skip
        where.append(f"irc_fold({nick}) = ?")
        args.append(s.sender)
    if s.after_ms is not None:
        where.append("m.time_ms > ?")
        args.append(s.after_ms)
    if s.before_ms is not None:
        where.append("m.time_ms < ?")
        args.append(s.before_ms)
    phrase = fts_phrase(s.text or "")
    if s.text and s.text.strip() and not phrase:
        return []  # only punctuation: no word of it is in the index, nothing matches
    source = "messages AS m"
    if phrase and postgres:
        # The same words, all of them, anywhere: the GIN index on the 'simple' parser's
        # words (postgres.py) cuts and lowercases them as FTS5's unicode61 does.
        where.append("to_tsvector('simple', m.text) @@ plainto_tsquery('simple', ?)")
        args.append(" ".join(_WORD.findall(s.text or "")))
    elif phrase:
        source = "messages AS m JOIN message_search AS f ON f.rowid = m.seq"
        where.append("f.message_search MATCH ?")
        args.append(phrase)
    rows = db.execute(
        "SELECT m.seq, m.time_ms, m.conversation, m.msgid, m.sender, m.command, m.target,"
        f" m.text, m.tags FROM {source} WHERE {' AND '.join(where)}"
        " ORDER BY m.time_ms DESC, m.seq DESC LIMIT ?",
        (*args, s.limit),
    ).fetchall()
    rows.reverse()
    return _checked(rows)


# -- read markers -----------------------------------------------------------------------


def read_markers(db: Db, owner: str, targets: list[str]) -> list[tuple[str, int]]:
    """``owner``'s stored markers among ``targets`` (casefolded): (target, time_ms)."""
    found: list[tuple[str, int]] = []
    for target in dict.fromkeys(targets):
        row = db.execute(
            "SELECT time_ms FROM read_markers WHERE owner = ? AND target = ?", (owner, target)
        ).fetchone()
        if row is not None and isinstance(row[0], int):
            found.append((target, row[0]))
    return found
