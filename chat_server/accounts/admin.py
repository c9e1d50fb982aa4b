"""``chat-server account add|del|passwd|list``: accounts by hand, on the server's file.

The commands work on the same SQLite file the server uses (``--db``, else the
``--config`` file's ``history_db``, else the default), or with ``--redis URL`` (or a
``--config`` with ``redis``) on a cluster's accounts; also while the server runs:
SQLite lets them write beside it. A running server sees new or deleted accounts (the
nicks they own) within ten seconds, or at once on SIGHUP; passwords are always
checked against the file, so a new password counts at the next login.

Passwords are never taken as arguments (they would show in the process list and the
shell's history): from a prompt that does not echo, asked twice, on a terminal; else
the first line of standard input (``printf '%s\\n' "$PW" | chat-server account add alice``).
"""

from __future__ import annotations

import argparse
import getpass
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from redis.exceptions import RedisError

from chat_protocol.casemap import casefold, valid_nick
from chat_server.accounts.credentials import make_credentials, password_problem
from chat_server.accounts.redis_store import RedisAccounts
from chat_server.accounts.storage import SqliteAccounts
from chat_server.cluster.redis_link import safe_url
from chat_server.history.admin import parse_admin_args
from chat_server.history.model import HistoryStoreError
from chat_server.history.schema import open_database

NICK_LEN = 30  # the server's default nick_len; account names are nicks


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line, exit 2, as cli.py
        self.exit(2, f"chat-server: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--db", metavar="PATH", help="the server's database (default: as the server finds it)"
    )
    common.add_argument(
        "--config",
        metavar="FILE.toml",
        help="the server's settings file, read for history_db and redis",
    )
    common.add_argument(
        "--redis", metavar="URL", help="a cluster's Redis (its accounts are shared by all nodes)"
    )
    p = _Parser(
        prog="chat-server account",
        description="Add, remove, re-password or list the accounts of a distchat server.",
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="{add,del,passwd,list}")
    add = commands.add_parser(
        "add", parents=[common], help="create an account (password from a prompt or stdin)"
    )
    add.add_argument("name", help="the account name, which is also the nick it owns")
    add.add_argument("--email", help="an address to keep with the account (nothing is sent)")
    remove = commands.add_parser("del", parents=[common], help="delete an account")
    remove.add_argument("name")
    passwd = commands.add_parser(
        "passwd", parents=[common], help="set a new password (from a prompt or stdin)"
    )
    passwd.add_argument("name")
    commands.add_parser("list", parents=[common], help="list the accounts")
    return p


def main(argv: Sequence[str]) -> int:
    """Run ``chat-server account ...``; the exit status (0 ok, 1 failed, 2 bad usage)."""
    setup = parse_admin_args(build_parser(), argv)
    if isinstance(setup, int):
        return setup
    args, config = setup
    path = Path(args.db).expanduser() if args.db else config.history_path()
    redis_url = args.redis or config.redis
    where = safe_url(redis_url) if redis_url else str(path)
    if args.command != "list" and not valid_nick(args.name, NICK_LEN):
        return _fail(f"{args.name!r} is not a valid account name (the rules of nicks)", 2)
    try:
        store = _open(path, redis_url, create=args.command == "add")
        try:
            if args.command == "add":
                return _add(store, where, args.name, args.email)
            if args.command == "passwd":
                return _passwd(store, args.name)
            if args.command == "del":
                return _delete(store, args.name)
            return _list(store, where)
        finally:
            store.close()
    except (HistoryStoreError, sqlite3.Error, RedisError, OSError) as exc:
        return _fail(str(exc) or type(exc).__name__, 1)
    except (KeyboardInterrupt, EOFError):
        return _fail("cancelled", 1)


Accounts = SqliteAccounts | RedisAccounts


def _open(path: Path, redis_url: str | None, *, create: bool) -> Accounts:
    """The accounts of a cluster (Redis) or of one server (its SQLite file)."""
    if redis_url:
        return RedisAccounts(redis_url)
    if not create and not path.exists():
        raise HistoryStoreError(f"no database at {path}")
    if path.is_dir():
        raise HistoryStoreError(f"{path} is a directory, not a database")
    return SqliteAccounts(open_database(path))  # creates or converts; refuses others' files


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise ValueError("no password on standard input")
    return line.rstrip("\r\n")


def _new_credentials() -> tuple[str, str] | str:
    """The stored forms of a password read now, or why it is refused."""
    try:
        password = _read_password()
    except ValueError as exc:
        return str(exc)
    problem = password_problem(password, 1)
    if problem is not None:
        return problem
    creds = make_credentials(password)
    return creds.password, creds.scram.to_json()


def _add(store: Accounts, where: str, name: str, email: str | None) -> int:
    creds = _new_credentials()
    if isinstance(creds, str):
        return _fail(creds, 1)
    # Direct messages the nick got before the account existed stay its earlier
    # holders': the account reads those from the next message on.
    if not store.create(casefold(name), name, *creds, email, store.history_start()):
        return _fail(f"account {name} already exists", 1)
    print(f"created account {name} in {where}")
    return 0


def _passwd(store: Accounts, name: str) -> int:
    if store.get(casefold(name)) is None:
        return _fail(f"no account {name}", 1)
    creds = _new_credentials()
    if isinstance(creds, str):
        return _fail(creds, 1)
    store.set_password(casefold(name), *creds)
    print(f"changed the password of {name}")
    return 0


def _delete(store: Accounts, name: str) -> int:
    if not store.delete(casefold(name)):
        return _fail(f"no account {name}", 1)
    print(f"deleted account {name} (a running server forgets it within 10 s, or on SIGHUP)")
    return 0


def _list(store: Accounts, where: str) -> int:
    rows = store.listing()
    for row in rows:
        created = datetime.fromtimestamp(row.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{row.display}\tcreated {created} UTC" + (f"\t{row.email}" if row.email else ""))
    print(f"{len(rows)} account(s) in {where}", file=sys.stderr)
    return 0


def _fail(message: str, status: int) -> int:
    print(f"chat-server: error: {message}", file=sys.stderr)
    return status
