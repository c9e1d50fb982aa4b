"""``chat-server history export|prune`` on files built with plain SQL, no server.

The files are made the way the writer makes them (schema.open_database, then INSERTs
into messages, message_search and conversations), so these tests depend on the file's
schema only, not on the store that writes it.
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat_protocol.servertime import format_ms
from chat_server.history.admin import (
    conversation_key,
    count_prunable,
    export,
    main,
    parse_since,
    prune,
)
from chat_server.history.schema import open_database

REPO = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000
NOW_MS = 1_796_126_400_000  # 2026-12-01T12:00:00.000Z


def add(
    conn: sqlite3.Connection,
    seq: int,
    conversation: str,
    time_ms: int,
    text: str,
    *,
    sender: str = "alice!a@host",
    target: str | None = None,
    tags: str = "{}",
) -> None:
    """One message as the writer stores it: row, search words, conversation's row."""
    conn.execute(
        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, 'PRIVMSG', ?, ?, ?)",
        (seq, conversation, time_ms, f"srv-{seq:x}", sender, target or conversation, text, tags),
    )
    conn.execute("INSERT INTO message_search (rowid, text) VALUES (?, ?)", (seq, text))
    parties = conversation[3:].split() if conversation.startswith("dm:") else [None, None]
    conn.execute(
        "INSERT INTO conversations VALUES (?, ?, ?, ?) ON CONFLICT (name)"
        " DO UPDATE SET last_ms = max(last_ms, excluded.last_ms)",
        (conversation, parties[0], parties[-1], time_ms),
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_database(tmp_path / "history.db")
    yield conn
    conn.close()


def seqs(conn: sqlite3.Connection, conversation: str | None = None) -> list[int]:
    if conversation is None:
        return [r[0] for r in conn.execute("SELECT seq FROM messages ORDER BY seq")]
    return [
        r[0]
        for r in conn.execute(
            "SELECT seq FROM messages WHERE conversation = ? ORDER BY time_ms, seq",
            (conversation,),
        )
    ]


def conversations(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM conversations")}


# -- prune -----------------------------------------------------------------------------


def test_prune_by_age_drops_old_messages_and_emptied_conversations(
    db: sqlite3.Connection,
) -> None:
    add(db, 1, "#old", NOW_MS - 30 * DAY_MS, "ancient")
    add(db, 2, "#general", NOW_MS - 10 * DAY_MS, "ten days")
    add(db, 3, "#general", NOW_MS - 7 * DAY_MS, "exactly seven days: kept")
    add(db, 4, "dm:alice bob", NOW_MS - 8 * DAY_MS, "old dm")
    add(db, 5, "dm:alice bob", NOW_MS - DAY_MS, "new dm")

    deleted = prune(db, max_age_days=7, max_per_conversation=None, now_ms=NOW_MS)

    assert deleted == 3
    assert seqs(db) == [3, 5]
    assert conversations(db) == {"#general", "dm:alice bob"}
    last = dict(db.execute("SELECT name, last_ms FROM conversations").fetchall())
    assert last == {"#general": NOW_MS - 7 * DAY_MS, "dm:alice bob": NOW_MS - DAY_MS}


def test_prune_per_room_keeps_the_newest_by_time_then_seq(db: sqlite3.Connection) -> None:
    # Written out of order: seq 6 is older than seq 5; 3 and 4 share a millisecond.
    for seq, ms in [(1, 100), (2, 200), (3, 300), (4, 300), (5, 500), (6, 400)]:
        add(db, seq, "#busy", ms, f"m{seq}")
    add(db, 7, "#quiet", 50, "alone")
    add(db, 8, "dm:alice bob", 10, "dm one")
    add(db, 9, "dm:alice bob", 20, "dm two")
    add(db, 10, "dm:alice bob", 30, "dm three")

    deleted = prune(db, max_age_days=None, max_per_conversation=2, now_ms=NOW_MS)

    assert deleted == 4 + 1
    assert seqs(db, "#busy") == [6, 5]
    assert seqs(db, "#quiet") == [7]
    assert seqs(db, "dm:alice bob") == [9, 10]  # direct conversations count too
    assert conversations(db) == {"#busy", "#quiet", "dm:alice bob"}


def test_prune_per_room_tie_at_the_edge(db: sqlite3.Connection) -> None:
    for seq in range(1, 6):
        add(db, seq, "#same", 1000, f"m{seq}")  # one millisecond: seq decides
    assert prune(db, max_age_days=None, max_per_conversation=3, now_ms=NOW_MS) == 2
    assert seqs(db) == [3, 4, 5]


def test_prune_both_limits_and_dry_run_count_agree(tmp_path: Path) -> None:
    cases = [(None, 3), (5.0, None), (5.0, 3), (0.5, 8), (100.0, 1)]
    for i, (age, per_room) in enumerate(cases):
        conn = open_database(tmp_path / f"h{i}.db")
        seq = 0
        for room, n in [("#a", 10), ("#b", 4), ("dm:x y", 6)]:
            for k in range(n):
                seq += 1
                add(conn, seq, room, NOW_MS - (n - k) * DAY_MS, f"{room} {k}")
        due = count_prunable(conn, max_age_days=age, max_per_conversation=per_room, now_ms=NOW_MS)
        assert seqs(conn) == list(range(1, seq + 1)), "counting deleted something"
        gone = prune(conn, max_age_days=age, max_per_conversation=per_room, now_ms=NOW_MS)
        assert gone == due, (age, per_room)
        assert len(seqs(conn)) == seq - gone
        conn.close()


def test_prune_in_chunks_with_a_limit_per_call(db: sqlite3.Connection) -> None:
    for seq in range(1, 26):
        add(db, seq, "#a", NOW_MS - 100 * DAY_MS + seq, f"m{seq}")
    add(db, 26, "#a", NOW_MS, "fresh")

    def one_call(limit: int | None) -> int:
        return prune(
            db, max_age_days=1, max_per_conversation=None, now_ms=NOW_MS, chunk=4, limit=limit
        )

    assert one_call(10) == 10
    assert seqs(db)[0] == 11, "the oldest go first"
    assert one_call(10) == 10
    assert one_call(10) == 5
    assert one_call(None) == 0
    assert seqs(db) == [26]
    assert not db.in_transaction


def test_prune_keeps_the_search_index_consistent(db: sqlite3.Connection) -> None:
    add(db, 1, "#a", NOW_MS - 9 * DAY_MS, "the zebra crossed")
    add(db, 2, "#a", NOW_MS - 8 * DAY_MS, "a zebra again")
    add(db, 3, "#a", NOW_MS, "zebra today")
    add(db, 4, "#b", NOW_MS - 9 * DAY_MS, "lonely giraffe")

    def matching(word: str) -> list[int]:
        rows = db.execute(
            "SELECT rowid FROM message_search WHERE message_search MATCH ? ORDER BY rowid",
            (word,),
        )
        return [r[0] for r in rows]

    assert matching("zebra") == [1, 2, 3]
    assert prune(db, max_age_days=7, max_per_conversation=None, now_ms=NOW_MS) == 3
    assert matching("zebra") == [3]
    assert matching("giraffe") == []
    # With rank 1, FTS5 compares its index with the external content table and raises
    # ("database disk image is malformed") on any difference.
    db.execute("INSERT INTO message_search (message_search, rank) VALUES ('integrity-check', 1)")


@pytest.mark.parametrize(("age", "per_room"), [(0, None), (-1.0, None), (None, 0), (None, -5)])
def test_prune_refuses_limits_that_would_delete_everything(
    db: sqlite3.Connection, age: float | None, per_room: int | None
) -> None:
    add(db, 1, "#a", NOW_MS, "keep me")
    with pytest.raises(ValueError):
        prune(db, max_age_days=age, max_per_conversation=per_room, now_ms=NOW_MS)
    assert seqs(db) == [1]


# -- export ----------------------------------------------------------------------------


def exported(conn: sqlite3.Connection, room: str, since_ms: int | None = None) -> list[dict]:
    out = io.StringIO()
    count = export(conn, conversation=room, since_ms=since_ms, out=out)
    lines = out.getvalue().splitlines()
    assert count == len(lines)
    return [json.loads(line) for line in lines]


def test_export_order_and_fields(db: sqlite3.Connection) -> None:
    add(db, 3, "#general", NOW_MS + 5, "third", tags='{"+draft/reply": "srv-1"}')
    add(db, 1, "#general", NOW_MS, "first", sender="bob!b@h", target="#General")
    add(db, 2, "#general", NOW_MS, "second: same ms, later seq")
    add(db, 4, "#other", NOW_MS, "not this room")

    records = exported(db, "#GENERAL")  # rooms are matched casefolded

    assert [r["text"] for r in records] == ["first", "second: same ms, later seq", "third"]
    assert records[0] == {
        "time": "2026-12-01T12:00:00.000Z",
        "msgid": "srv-1",
        "conversation": "#general",
        "sender": "bob!b@h",
        "command": "PRIVMSG",
        "target": "#General",
        "text": "first",
        "tags": {},
    }
    assert list(records[0]) == [
        "time", "msgid", "conversation", "sender", "command", "target", "text", "tags",
    ]  # fmt: skip
    assert records[2]["time"] == "2026-12-01T12:00:00.005Z"
    assert records[2]["tags"] == {"+draft/reply": "srv-1"}


def test_export_direct_messages_by_either_order_of_nicks(db: sqlite3.Connection) -> None:
    add(db, 1, "dm:alice bob", NOW_MS, "hi bob", target="Bob")
    add(db, 2, "dm:alice carol", NOW_MS, "hi carol")
    assert [r["text"] for r in exported(db, "dm:Bob alice")] == ["hi bob"]
    assert [r["text"] for r in exported(db, "dm:alice bob")] == ["hi bob"]
    assert exported(db, "dm:alice") == []


def test_export_since_is_inclusive(db: sqlite3.Connection) -> None:
    for seq in range(1, 6):
        add(db, seq, "#a", NOW_MS - (5 - seq) * DAY_MS, f"day {seq}")
    assert [r["text"] for r in exported(db, "#a", NOW_MS - 2 * DAY_MS)] == [
        "day 3",
        "day 4",
        "day 5",
    ]
    assert len(exported(db, "#a", None)) == 5
    assert exported(db, "#a", NOW_MS + 1) == []


def test_export_writes_a_bad_row_without_stopping(db: sqlite3.Connection) -> None:
    add(db, 1, "#a", NOW_MS, "bad tags", tags="{not json")
    add(db, 2, "#a", NOW_MS + 1, "list tags", tags="[1, 2]")
    add(db, 3, "#a", 10**18, "far future")
    add(db, 4, "#a", 10**18 + 1, "fine after them")
    records = exported(db, "#a")
    assert [r["tags"] for r in records] == [{}, {}, {}, {}]
    assert records[2]["time"] is None
    assert records[3]["text"] == "fine after them"


def test_export_streams_rows(db: sqlite3.Connection) -> None:
    for seq in range(1, 2001):
        add(db, seq, "#big", NOW_MS + seq, f"m{seq}")
    steps = [0]

    def count_step() -> int:
        steps[0] += 1
        return 0  # go on

    class Recorder(io.StringIO):
        """Notes how much SQLite work was done when each line was written."""

        at_write: list[int] = []

        def write(self, text: str) -> int:
            self.at_write.append(steps[0])
            return super().write(text)

    db.set_progress_handler(count_step, 100)  # called every 100 VM instructions
    out = Recorder()
    assert export(db, conversation="#big", since_ms=None, out=out) == 2000
    db.set_progress_handler(None, 0)
    # Streaming: the first line is written before the query has read most rows.
    assert out.at_write[0] < steps[0] / 10, (out.at_write[0], steps[0])


@pytest.mark.parametrize(
    ("name", "key"),
    [("#General", "#general"), ("&Ops", "&ops"), ("dm:Zed Amy", "dm:amy zed")],
)
def test_conversation_key(name: str, key: str) -> None:
    assert conversation_key(name) == key


@pytest.mark.parametrize("name", ["alice", "", "dm:", "dm:a b c"])
def test_conversation_key_refuses(name: str) -> None:
    with pytest.raises(ValueError):
        conversation_key(name)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-12-01T12:00:00Z", NOW_MS),
        ("2026-12-01T12:00:00.250Z", NOW_MS + 250),
        ("2026-12-01T14:00:00+02:00", NOW_MS),
        ("2026-12-01T12:00", NOW_MS),  # no zone: UTC
        ("2026-12-01", NOW_MS - 12 * 3_600_000),
        ("7d", NOW_MS - 7 * DAY_MS),
        ("12h", NOW_MS - 12 * 3_600_000),
        ("1.5d", NOW_MS - 36 * 3_600_000),
        ("30m", NOW_MS - 30 * 60_000),
    ],
)
def test_parse_since(text: str, ms: int) -> None:
    assert parse_since(text, NOW_MS) == ms


@pytest.mark.parametrize("text", ["", "yesterday", "7", "7y", "-3d", "2026-13-01", "12:00"])
def test_parse_since_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="bad time"):
        parse_since(text, NOW_MS)


# -- command line ----------------------------------------------------------------------


@pytest.fixture
def history_file(tmp_path: Path) -> Path:
    """Three messages in #general (a month old, two of today) and one in #other.

    Dated from the real clock: the command line measures ages (7d) from it.
    """
    path = tmp_path / "history.db"
    conn = open_database(path)
    now = time.time_ns() // 1_000_000
    add(conn, 1, "#general", now - 30 * DAY_MS, "a month ago")
    add(conn, 2, "#general", now - 1000, "today", sender="bob!b@h", target="#General")
    add(conn, 3, "#general", now - 999, "naïve ünïcode ✓")
    add(conn, 4, "#other", now - 1000, "elsewhere")
    conn.close()
    return path


def one_error_line(err: str) -> str:
    assert err.startswith("chat-server: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_cli_export_to_stdout(history_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    week_ago = format_ms(time.time_ns() // 1_000_000 - 7 * DAY_MS)
    code = main(["export", "--db", str(history_file), "--room", "#GENERAL", "--since", week_ago])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [json.loads(line)["msgid"] for line in out.splitlines()] == ["srv-2", "srv-3"]
    assert "exported 2 messages" in err


def test_cli_export_to_a_file(history_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    code = main(
        ["export", "--db", str(history_file), "--room", "#general", "--output", str(target)]
    )
    assert code == 0
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines][-1] == "naïve ünïcode ✓"
    assert len(lines) == 3


def test_cli_export_missing_database_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such.db"
    assert main(["export", "--db", str(missing), "--room", "#a"]) == 1
    assert "no history database at" in one_error_line(capsys.readouterr().err)
    assert not missing.exists() and not missing.parent.exists()
    assert main(["prune", "--db", str(missing), "--max-per-room", "5"]) == 1
    assert not missing.exists()


def test_cli_refuses_files_that_are_not_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    other_bytes = other.read_bytes()
    for path in (text, other, tmp_path):
        for args in (["export", "--room", "#a"], ["prune", "--max-age-days", "1"]):
            assert main([*args, "--db", str(path)]) == 1
            assert "history database" in one_error_line(capsys.readouterr().err)
    assert other.read_bytes() == other_bytes, "a foreign database was changed"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "the following arguments are required"),
        (["export"], "--room"),
        (["export", "--room", "#a", "--format", "csv"], "invalid choice: 'csv'"),
        (["prune", "--max-age-days", "soon"], "wants a number"),
        (["prune", "--max-per-room", "-1"], "must be at least 0"),
        (["prune", "--max-age-days", "inf"], "must be at least 0"),
        (["vacuum"], "invalid choice: 'vacuum'"),
        (["export", "--room", "#a", "--colour", "red"], "unrecognized arguments"),
    ],
)
def test_cli_wrong_flags(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert needle in one_error_line(capsys.readouterr().err)


def test_cli_bad_since_and_room(history_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", str(history_file)]
    assert main(["export", *db, "--room", "#general", "--since", "last tuesday"]) == 1
    assert "bad time 'last tuesday'" in one_error_line(capsys.readouterr().err)
    assert main(["export", *db, "--room", "alice"]) == 1
    assert "dm:NICK NICK" in one_error_line(capsys.readouterr().err)


def test_cli_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--help"]) == 0
    out = capsys.readouterr().out
    assert "default: jsonl" in out and "history.db" in out and "default: standard output" in out
    assert main(["prune", "--help"]) == 0
    assert "0 = no limit" in capsys.readouterr().out


def test_cli_prune_dry_run_then_for_real(
    history_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(history_file)]
    assert main(["prune", *db, "--max-age-days", "7", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would delete 1 messages")
    assert main(["prune", *db, "--max-age-days", "7", "--max-per-room", "1"]) == 0
    assert capsys.readouterr().out.startswith("deleted 2 messages")
    conn = sqlite3.connect(history_file)
    assert [r[0] for r in conn.execute("SELECT seq FROM messages ORDER BY seq")] == [3, 4]
    conn.close()


def test_cli_prune_reads_the_config_file(
    history_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f"[server]\nhistory_db = '{history_file}'\nhistory_max_per_room = 1\n")
    assert main(["prune", "--config", str(config), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would delete 2 messages")
    # a flag wins over the file; 0 turns the limit off
    assert main(["prune", "--config", str(config), "--max-per-room", "0", "--dry-run"]) == 2
    assert "nothing to prune by" in one_error_line(capsys.readouterr().err)
    assert main(["prune", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config file not found" in one_error_line(capsys.readouterr().err)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat_server", "history", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=REPO,
    )


def test_real_command_line_export(history_file: Path) -> None:
    res = run_cli("export", "--db", str(history_file), "--room", "#General", "--since", "7d")
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["text"] for r in records] == ["today", "naïve ünïcode ✓"]
    assert records[0]["target"] == "#General" and records[0]["sender"] == "bob!b@h"


def test_real_command_line_errors(tmp_path: Path) -> None:
    res = run_cli("export", "--db", str(tmp_path / "missing.db"), "--room", "#a")
    assert res.returncode == 1
    one_error_line(res.stderr)
    assert not (tmp_path / "missing.db").exists()
    res = run_cli("prune", "--max-age-days")
    assert res.returncode == 2
    assert "expected one argument" in one_error_line(res.stderr)


def test_prune_beside_an_open_reader(tmp_path: Path) -> None:
    """As beside the running server: a reader's snapshot (WAL) neither stops a prune nor
    sees it until the reader's transaction ends."""
    path = tmp_path / "history.db"
    conn = open_database(path)
    for seq in range(1, 11):
        add(conn, seq, "#a", NOW_MS - 10 * DAY_MS + seq, f"m{seq}")
    reader = open_database(path)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] == 10
    assert prune(conn, max_age_days=None, max_per_conversation=3, now_ms=NOW_MS, chunk=2) == 7
    assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] == 10  # its snapshot
    reader.execute("COMMIT")
    assert seqs(reader) == [8, 9, 10]
    reader.close()
    conn.close()
