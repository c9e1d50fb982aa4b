"""History export: a conversation's messages as JSON Lines that any tool reads.

Used by ``chat-server history export`` (admin.py); reads only the file's plain schema
(schema.py), so it works on a stopped server's file and beside a running one.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from chat_protocol.casemap import casefold, is_channel
from chat_protocol.servertime import format_ms
from chat_server.history.model import dm_key
from chat_server.history.retention import DAY_MS

# The logger's name from before export had a module of its own: log filters keep working.
log = logging.getLogger("chat_server.history.admin")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])", re.ASCII)
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}


def conversation_key(name: str) -> str:
    """The stored conversation of a room name (any case) or of ``dm:NICK NICK``."""
    if name[:3].lower() == "dm:":
        nicks = name[3:].split()
        if len(nicks) in (1, 2):  # one nick: the notes someone sent to themself
            return dm_key(nicks[0], nicks[-1])
        raise ValueError(f"{name!r}: a direct conversation is dm:NICK NICK")
    if is_channel(name):
        return casefold(name)
    raise ValueError(f"{name!r} is neither a room (#name) nor a direct conversation (dm:NICK NICK)")


def export(
    conn: sqlite3.Connection, *, conversation: str, since_ms: int | None, out: TextIO
) -> int:
    """Write a conversation's messages (from ``since_ms`` on) to ``out`` as JSON Lines.

    One object per message in (time, seq) order, keys time, msgid, conversation,
    sender, command, target, text, tags. Rows are streamed, never all in memory.
    Returns the number written. A row with unreadable tags or time is still written,
    with ``{}`` or ``null`` there, so that one bad row costs only itself.
    """
    sql = (
        "SELECT time_ms, msgid, conversation, sender, command, target, text, tags"
        " FROM messages WHERE conversation = ?"
    )
    params: tuple[Any, ...] = (conversation_key(conversation),)
    if since_ms is not None:
        sql += " AND time_ms >= ?"
        params += (since_ms,)
    written = 0
    for time_ms, msgid, key, sender, command, target, text, tags in conn.execute(
        sql + " ORDER BY time_ms, seq", params
    ):
        record = {
            "time": _time_text(time_ms, msgid),
            "msgid": msgid,
            "conversation": key,
            "sender": sender,
            "command": command,
            "target": target,
            "text": text,
            "tags": _tags(tags, msgid),
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    return written


def _time_text(time_ms: object, msgid: str) -> str | None:
    try:
        return format_ms(time_ms) if isinstance(time_ms, int) else None
    except ValueError:
        log.warning("history export: message %s has an impossible time %r", msgid, time_ms)
        return None


def _tags(text: object, msgid: str) -> dict[str, Any]:
    try:
        tags = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        tags = None
    if not isinstance(tags, dict):
        log.warning("history export: message %s has unreadable tags %r", msgid, text)
        return {}
    return tags


def parse_since(text: str, now_ms: int) -> int:
    """``--since`` as Unix ms: ISO 8601 (``2026-12-01T10:00:00Z``; no zone = UTC), a date
    (``2026-12-01``, midnight UTC) or an age before ``now_ms`` (``7d``, ``12h``, ``30m``)."""
    age = _AGE.fullmatch(text.strip())
    if age:
        return now_ms - round(float(age[1]) * _UNIT_MS[age[2]])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"bad time {text!r}: expected 2026-12-01T10:00:00Z, 2026-12-01, or an age"
            " such as 7d, 12h, 30m"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _ONE_MS
