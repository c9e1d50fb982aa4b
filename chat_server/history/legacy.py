"""Converting history files of schema v1 to v5, once, to one row per message (v6).

Those files were ours alone: v1/v2 stored one message per row; v3 a run of messages
per row (msgids and texts joined by newlines); v4 and v5 also blocks of runs in a
``runs`` column (pickled in v4, JSON in v5). On open, schema.py renames the old table
and this module copies every message it can read into the new one, in one transaction
with the rest of the upgrade. A row it cannot read is skipped with a warning (it was
unreadable before too); a row that would expand beyond MAX_ROW_MESSAGES or
MAX_ROW_BYTES is skipped, so a crafted file cannot balloon at open. v4's pickled blocks
are read opcode by opcode, without any pickle module (``_load_pickled``): only plain
values are built, nothing is imported or called.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import struct
from collections.abc import Iterator
from typing import Any

from chat_server.history.sqlite_writer import conversation_row

log = logging.getLogger(__name__)

_OLD = "messages_before_v6"
MAX_ROW_MESSAGES = 4096
MAX_ROW_BYTES = 4 << 20

# The column sets our schemas v1-v5 had; a ``messages`` table with any other layout is
# someone else's, and is refused without being touched.
_ONE_PER_ROW = frozenset({"seq", "msgid", "time_ms", "target", "source", "command",
                          "recipient", "text"})  # fmt: skip
_RUNS = frozenset({"seq", "msgids", "time_ms", "target", "source", "command",
                   "recipient", "texts", "tags", "count"})  # fmt: skip
_KNOWN = (_ONE_PER_ROW, _ONE_PER_ROW | {"tags"}, _RUNS, _RUNS | {"runs"})


def convert(conn: sqlite3.Connection, columns: tuple[str, ...]) -> None:
    """Move the old table aside (copy_rows reads it once the new one exists)."""
    if frozenset(columns) not in _KNOWN:
        raise sqlite3.DatabaseError(f"table 'messages' has unexpected columns {columns}")
    conn.execute(f"ALTER TABLE messages RENAME TO {_OLD}")
    for index in ("messages_by_target", "messages_by_msgid"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    conn.execute("DROP TABLE IF EXISTS dm_peers")


def copy_rows(conn: sqlite3.Connection) -> None:
    """Copy every readable old message into ``messages`` and drop the old table."""
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({_OLD})")]
    rows = conn.execute(f"SELECT * FROM {_OLD} ORDER BY seq")
    copied = skipped = 0
    last: dict[str, int] = {}
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        try:
            messages = list(_messages(record))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("history: old row %s skipped: %s", record.get("seq"), exc)
            skipped += 1
            continue
        for message in messages:
            conn.execute(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", message
            )
            conn.execute(
                "INSERT INTO message_search (rowid, text) VALUES (?, ?)", (message[0], message[7])
            )
            last[message[1]] = max(last.get(message[1], 0), message[2])
        copied += len(messages)
    for name, ms in last.items():
        conn.execute(
            "INSERT OR REPLACE INTO conversations VALUES (?, ?, ?, ?)", conversation_row(name, ms)
        )
    conn.execute(f"DROP TABLE {_OLD}")
    log.info("history: converted to schema v6, %d messages copied, %d rows skipped",
             copied, skipped)  # fmt: skip


def _messages(record: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """The new rows for one old row."""
    runs = record.get("runs")
    if runs is None:
        msgids = record.get("msgids", record.get("msgid"))
        texts = record.get("texts", record.get("text"))
        tags = record.get("tags") or ""
        run = [record["seq"], record["time_ms"], record["target"], record["source"],
               record["command"], record["recipient"], json.loads(tags) if tags else [],
               str(msgids).split("\n"), str(texts).split("\n")]  # fmt: skip
        if "count" not in record:  # v1/v2: one message, its text may not be split
            run[7], run[8] = [str(msgids)], [str(texts)]
        yield from _run_rows(run)
        return
    if len(runs) > MAX_ROW_BYTES:
        raise ValueError("block too large")
    decoded = _load_pickled(runs) if isinstance(runs, bytes) else json.loads(runs)
    if not isinstance(decoded, list) or len(decoded) > MAX_ROW_MESSAGES:
        raise ValueError("block does not hold runs")
    total = 0
    for run in decoded:
        rows = list(_run_rows(list(run)))
        total += sum(len(row[7]) for row in rows)
        if total > MAX_ROW_BYTES:  # pickle can share one long string among many runs
            raise ValueError("block too large")
        yield from rows


def _run_rows(run: list[Any]) -> Iterator[tuple[Any, ...]]:
    seq, time_ms, target, source, command, recipient, tags, msgids, texts = run
    if len(msgids) != len(texts) or len(texts) > MAX_ROW_MESSAGES:
        raise ValueError("msgids and texts do not pair up")
    if sum(map(len, texts)) > MAX_ROW_BYTES:
        raise ValueError("run too large")
    tag_text = json.dumps({str(k): str(v) for k, v in tags}, ensure_ascii=False)
    for i, (msgid, text) in enumerate(zip(msgids, texts, strict=True)):
        yield (int(seq) + i, str(target), int(time_ms), str(msgid), str(source), str(command),
               str(recipient), str(text), tag_text)  # fmt: skip


# The pickle opcodes a v4 block may hold: runs are lists and tuples of strings and
# integers. Anything else (a global, a call, a persistent id) makes the block unreadable.
_PLAIN = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "SHORT_BINUNICODE",
                    "BINUNICODE", "BINUNICODE8"})  # fmt: skip
_TUPLES = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


# The opcodes above by their byte, with how their argument is read: a fixed-size
# little-endian integer ("<i", "<B", ...), or a length of that size followed by so
# many bytes (("<B", "long"), ("<I", "text")). From the pickle format's documentation.
_ARGS: dict[int, tuple[str, str | None, str]] = {
    0x80: ("PROTO", "<B", "int"),
    0x95: ("FRAME", "<Q", "int"),
    0x4A: ("BININT", "<i", "int"),
    0x4B: ("BININT1", "<B", "int"),
    0x4D: ("BININT2", "<H", "int"),
    0x8A: ("LONG1", "<B", "long"),
    0x8B: ("LONG4", "<i", "long"),
    0x8C: ("SHORT_BINUNICODE", "<B", "text"),
    0x58: ("BINUNICODE", "<I", "text"),
    0x8D: ("BINUNICODE8", "<Q", "text"),
    0x29: ("EMPTY_TUPLE", None, ""),
    0x85: ("TUPLE1", None, ""),
    0x86: ("TUPLE2", None, ""),
    0x87: ("TUPLE3", None, ""),
    0x74: ("TUPLE", None, ""),
    0x28: ("MARK", None, ""),
    0x5D: ("EMPTY_LIST", None, ""),
    0x65: ("APPENDS", None, ""),
    0x61: ("APPEND", None, ""),
    0x94: ("MEMOIZE", None, ""),
    0x71: ("BINPUT", "<B", "int"),
    0x72: ("LONG_BINPUT", "<I", "int"),
    0x68: ("BINGET", "<B", "int"),
    0x6A: ("BINGET", "<I", "int"),
    0x2E: ("STOP", None, ""),
}


def _opcodes(blob: bytes) -> Iterator[tuple[str, Any]]:
    """The (name, argument) of each opcode of ``blob``, for the opcodes of ``_ARGS``
    only; any other byte is an error. No pickle module is involved."""
    at = 0
    while at < len(blob):
        code = blob[at]
        at += 1
        known = _ARGS.get(code)
        if known is None:
            raise ValueError(f"it holds pickle opcode 0x{code:02x}, not plain runs")
        name, size_format, kind = known
        arg: Any = None
        if size_format is not None:
            (number,) = struct.unpack_from(size_format, blob, at)
            at += struct.calcsize(size_format)
            if kind == "int":
                arg = number
            else:
                if number < 0 or at + number > len(blob):
                    raise ValueError(f"{name} runs past the end of the block")
                data = blob[at : at + number]
                at += number
                arg = (
                    int.from_bytes(data, "little", signed=True)
                    if kind == "long"
                    else data.decode("utf-8", "surrogatepass")
                )
        yield name, arg


def _load_pickled(blob: bytes) -> Any:
    """A v4 block (pickle protocol 4 or 5), rebuilt opcode by opcode (``_opcodes``):
    only lists, tuples, strings and integers are made, nothing is imported or called,
    so a crafted block can do no more than fail."""
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[Any, Any] = {}

    def since_mark() -> list[Any]:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    try:
        for name, arg in _opcodes(blob):
            if name in _PLAIN:
                stack.append(arg)
            elif name in _TUPLES:
                size = _TUPLES[name]
                last = stack[len(stack) - size :]
                del stack[len(stack) - size :]
                stack.append(tuple(last))
            elif name == "MARK":
                marks.append(len(stack))
            elif name == "TUPLE":
                stack.append(tuple(since_mark()))
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "APPENDS":
                items = since_mark()
                stack[-1].extend(items)
            elif name == "APPEND":
                item = stack.pop()
                stack[-1].append(item)
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "BINGET":
                stack.append(memo[arg])
            elif name == "STOP":
                break
            elif name not in ("PROTO", "FRAME"):
                raise ValueError(f"it holds pickle opcode {name}, not plain runs")
    except (ValueError, IndexError, KeyError, AttributeError, TypeError, struct.error) as exc:
        raise ValueError(f"unreadable v4 history block: {exc}") from exc
    if len(stack) != 1:
        raise ValueError("unreadable v4 history block: no single value")
    return stack[0]
