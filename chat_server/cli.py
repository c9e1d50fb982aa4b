"""``chat-server``: parse flags and config, start the loop, exit cleanly."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from chat_server.config import SCHEMA, ConfigError, ServerConfig, build_config, load_config_file
from chat_server.settings import add_flags

log = logging.getLogger("chat_server")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line, exit 2
        self.exit(2, f"chat-server: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """``--config`` and one flag per setting of the schema (``config.py``)."""
    p = _Parser(
        prog="chat-server",
        description="The distchat IRC server. Flags win over the --config file.",
    )
    p.add_argument("--config", metavar="FILE.toml", help="settings file ([server] table)")
    add_flags(p, SCHEMA)
    return p


def make_config(args: argparse.Namespace) -> ServerConfig:
    """Defaults, then the config file, then flags; every value checked by the schema."""
    from_file = load_config_file(args.config) if args.config else {}
    from_flags: dict[str, object] = {}
    for row in SCHEMA:
        value = getattr(args, row.name, None)
        if value is not None:
            from_flags[row.name] = dict(value) if row.kind is dict else value
    return build_config(from_file, from_flags)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "history":  # chat-server history export|prune
        from chat_server.history.admin import main as history_main

        return history_main(argv[1:])
    if argv and argv[0] == "account":  # chat-server account add|del|passwd|list
        from chat_server.accounts.admin import main as account_main

        return account_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        config = make_config(args)
    except ConfigError as exc:
        print(f"chat-server: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from chat_server.history import Durability, HistoryStore
    from chat_server.server import Server

    if config.tls_port and config.tls_cert and config.tls_key:
        from chat_server.tls import TlsError, make_context

        try:
            make_context(config.tls_cert, config.tls_key)  # the server loads it again
        except TlsError as exc:
            print(f"chat-server: error: {exc}", file=sys.stderr)
            return 1
    server: Server
    if config.redis and config.history_db:
        print("chat-server: error: --history-db is a single server's SQLite file; a"
              " cluster's shared history is --history-postgres URL", file=sys.stderr)  # fmt: skip
        return 2
    if config.redis:
        from chat_server.cluster.node import ClusterServer

        server = ClusterServer(config)  # history: PostgreSQL, or each node's memory
    else:
        path = config.history_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            history = HistoryStore(
                path,
                replay=config.history_on_join,
                cache_bytes=config.history_cache_bytes,
                durability=Durability(
                    sync=config.history_sync,
                    max_age_days=config.history_max_age_days or None,
                    max_per_room=config.history_max_per_room or None,
                ),
            )
        except Exception as exc:
            print(f"chat-server: error: {history_error(path, exc)}", file=sys.stderr)
            return 1
        server = Server(config, history)
    try:
        server.listen()
    except OSError as exc:
        server.history.close()
        reason = exc.strerror or exc
        ports = f"{config.port}" + (f" and {config.tls_port} (TLS)" if config.tls_port else "")
        print(
            f"chat-server: error: cannot listen on {config.host}:{ports}: {reason}",
            file=sys.stderr,
        )
        return 1
    tune_gc()
    server.run()
    return 0


def history_error(path: Path, exc: Exception) -> str:
    """One line on a history file that cannot be used, naming the file once.

    ``HistoryStore`` already names the file in most of its errors; repeating the prefix
    made "cannot open history database X: cannot open history database X: ...".
    """
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = (
            exc.strerror if exc.filename in (None, str(path)) else f"{exc.strerror}: {exc.filename}"
        )
    if str(path) in text:
        return text
    return f"cannot open history database {path}: {text}"


def tune_gc() -> None:
    """Objects made at startup never become garbage: keep them out of every collection.
    And collect less often: a burst of connects allocates thousands of objects, and each
    young-generation pass is time no client is served (measured: a 1,000-client
    registration storm finished ~10% sooner). Garbage cycles are still collected."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
