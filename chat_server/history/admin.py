"""``chat-server history export|prune``: the history file belongs to the people who run it.

The command line only: export writes a conversation as JSON Lines (export.py), prune
applies the retention limits, an age and a count per conversation (retention.py). Both
work on a stopped server's file and beside a running one.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from chat_server.history.export import conversation_key, export, parse_since
from chat_server.history.model import HistoryStoreError
from chat_server.history.retention import count_prunable, prune
from chat_server.history.schema import SCHEMA_VERSION, open_database

if TYPE_CHECKING:
    from chat_server.config import ServerConfig

# export and prune are also imported from here (tests/server/test_history_admin.py).
__all__ = [
    "build_parser",
    "conversation_key",
    "count_prunable",
    "export",
    "main",
    "open_history",
    "parse_admin_args",
    "parse_since",
    "prune",
]


# -- opening the file ------------------------------------------------------------------


def open_history(path: Path, *, write: bool) -> sqlite3.Connection:
    """An existing history file, read-only unless ``write``; never creates one.

    A file of ours in an older schema is converted (open_database); anything else
    (missing, a directory, not SQLite, SQLite without our tables) is a
    HistoryStoreError, and the file is left untouched.
    """
    if not path.exists():
        raise HistoryStoreError(f"no history database at {path}")
    if path.is_dir():
        raise HistoryStoreError(f"{path} is a directory, not a history database")
    try:
        # mode=ro: looking must not change a file that turns out not to be ours.
        peek = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise HistoryStoreError(f"cannot open history database {path}: {exc}") from exc
    try:
        version = peek.execute("PRAGMA user_version").fetchone()[0]
        ours = peek.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'"
        ).fetchone()
    except sqlite3.Error as exc:
        peek.close()
        raise HistoryStoreError(f"{path} is not a history database ({exc})") from exc
    if ours is None:
        peek.close()
        raise HistoryStoreError(f"{path} is not a history database (it has no messages table)")
    if version == SCHEMA_VERSION and not write:
        return peek
    peek.close()
    return open_database(path)


# -- command line ----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line, exit 2, as cli.py
        self.exit(2, f"chat-server: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """``chat-server history export|prune`` and their flags."""
    from chat_server.config import ServerConfig

    default_db = ServerConfig().history_path()
    common = _Parser(add_help=False)
    common.add_argument(
        "--db",
        metavar="PATH",
        help=f"history file (default: the --config file's history_db, else {default_db})",
    )
    common.add_argument(
        "--config",
        metavar="FILE.toml",
        help="the server's settings file, read for history_db and the retention settings",
    )
    p = _Parser(
        prog="chat-server history",
        description="Export or prune the server's message history.",
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="{export,prune}")
    ex = commands.add_parser(
        "export",
        parents=[common],
        help="write a conversation as JSON Lines",
        description="Write one JSON object per message (time, msgid, conversation, sender,"
        " command, target, text, tags), oldest first. Reads only; never creates the file.",
    )
    ex.add_argument(
        "--room",
        required=True,
        metavar="NAME",
        help="the room (#name, any case) or direct conversation ('dm:NICK NICK')",
    )
    ex.add_argument(
        "--since",
        metavar="T",
        help="only messages from T on: 2026-12-01T10:00:00Z, 2026-12-01 (UTC), or an age"
        " such as 7d, 12h, 30m (default: all)",
    )
    ex.add_argument(
        "--format", choices=["jsonl"], default="jsonl", help="output format (default: jsonl)"
    )
    ex.add_argument("--output", metavar="FILE", help="write here (default: standard output)")
    pr = commands.add_parser(
        "prune",
        parents=[common],
        help="delete old messages",
        description="Delete messages older than --max-age-days and all but the newest"
        " --max-per-room of each room and direct conversation. Flags win over the --config"
        " file; works beside a running server, 1,000 messages per transaction.",
    )
    pr.add_argument(
        "--max-age-days",
        type=_at_least(0.0, float),
        metavar="X",
        help="delete messages older than X days (0 = no limit; default: the --config"
        " file's history_max_age_days, else no limit)",
    )
    pr.add_argument(
        "--max-per-room",
        type=_at_least(0, int),
        metavar="N",
        help="keep the newest N messages of each conversation (0 = no limit; default: the"
        " --config file's history_max_per_room, else no limit)",
    )
    pr.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )
    return p


def _at_least(low: float, kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"wants a number, got {text!r}") from None
        if not (value >= low and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {text!r}")
        return value

    return parse


def parse_admin_args(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[argparse.Namespace, ServerConfig] | int:
    """An admin command's flags and the server settings its ``--config`` names (the
    defaults without one); an exit status instead when either is wrong (or --help)."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    from chat_server.config import ConfigError, ServerConfig, build_config, load_config_file

    try:
        config = build_config(load_config_file(args.config)) if args.config else ServerConfig()
    except ConfigError as exc:
        return _fail(str(exc), 2)
    return args, config


def main(argv: Sequence[str]) -> int:
    """Run ``chat-server history ...``; the exit status (0 ok, 1 failed, 2 bad usage)."""
    setup = parse_admin_args(build_parser(), argv)
    if isinstance(setup, int):
        return setup
    args, config = setup
    path = Path(args.db).expanduser() if args.db else config.history_path()
    try:
        if args.command == "export":
            return _export(args, path)
        # Flags win over the file; 0 means no limit, as in the server's settings.
        max_age = args.max_age_days
        if max_age is None:
            max_age = config.history_max_age_days
        max_per_room = args.max_per_room
        if max_per_room is None:
            max_per_room = config.history_max_per_room
        return _prune(path, max_age or None, max_per_room or None, dry_run=args.dry_run)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (HistoryStoreError, sqlite3.Error, OSError, ValueError) as exc:
        return _fail(str(exc) or type(exc).__name__, 1)


def _export(args: argparse.Namespace, path: Path) -> int:
    now_ms = time.time_ns() // 1_000_000
    since = None if args.since is None else parse_since(args.since, now_ms)
    conversation_key(args.room)  # a bad name is an error before any file is opened
    conn = open_history(path, write=False)
    try:
        if args.output:
            # backslashreplace: a stray surrogate becomes a JSON \u escape, not a crash.
            with open(args.output, "w", encoding="utf-8", errors="backslashreplace") as out:
                count = export(conn, conversation=args.room, since_ms=since, out=out)
        else:
            if isinstance(sys.stdout, io.TextIOWrapper):
                sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
            count = export(conn, conversation=args.room, since_ms=since, out=sys.stdout)
            sys.stdout.flush()
    finally:
        conn.close()
    print(f"chat-server: exported {count} messages of {args.room}", file=sys.stderr)
    return 0


def _prune(path: Path, max_age: float | None, max_per_room: int | None, *, dry_run: bool) -> int:
    if max_age is None and max_per_room is None:
        return _fail(
            "nothing to prune by: give --max-age-days or --max-per-room (or set"
            " history_max_age_days or history_max_per_room in the --config file)",
            2,
        )
    conn = open_history(path, write=not dry_run)
    try:
        now_ms = time.time_ns() // 1_000_000
        if dry_run:
            due = count_prunable(
                conn, max_age_days=max_age, max_per_conversation=max_per_room, now_ms=now_ms
            )
            print(f"would delete {due} messages from {path}")
        else:
            gone = prune(
                conn, max_age_days=max_age, max_per_conversation=max_per_room, now_ms=now_ms
            )
            print(f"deleted {gone} messages from {path}")
    finally:
        conn.close()
    return 0


def _fail(message: str, status: int) -> int:
    print(f"chat-server: error: {message}", file=sys.stderr)
    return status
