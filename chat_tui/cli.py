"""``chat-tui``: parse flags, read the config, start a local server if none is given."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from chat_protocol.client_tls import add_tls_arguments
from chat_tui import locations
from chat_tui.config import ROWS, SCHEMA, ConfigError, Settings, load, stray_config_files
from chat_tui.localserver import LocalServer, LocalServerError
from chat_tui.remembered import LOCAL, RememberedRooms
from chat_tui.schema import add_flags, given_flags

PASSWORD_VARIABLE = ROWS["account_password"].env


class NoPassword(Exception):
    """An account is configured but there is no way to get its password."""


def account_password(
    settings: Settings,
    environ: Mapping[str, str],
    ask: Callable[[str], str] = getpass.getpass,
    interactive: bool = True,
) -> str:
    """The password of ``settings.account``: from CHAT_TUI_PASSWORD, else the config
    file, else asked on the terminal without echo, before the full screen starts."""
    password = environ.get(PASSWORD_VARIABLE) or settings.account_password
    if password:
        return password
    where = f"set {PASSWORD_VARIABLE} or password in the config file"
    if not interactive:
        raise NoPassword(f"no password for account {settings.account}: {where}")
    try:
        password = ask(f"password for account {settings.account}: ")
    except (EOFError, KeyboardInterrupt):
        raise NoPassword(f"no password given for account {settings.account}") from None
    if not password:
        raise NoPassword(f"no password given for account {settings.account} ({where})")
    return password


def build_parser() -> argparse.ArgumentParser:
    """The flags are the settings' own (``config.SCHEMA``), plus ``--config``."""
    parser = argparse.ArgumentParser(
        prog="chat-tui",
        description="A terminal chat client (IRC). Without --server it starts a local server.",
        epilog=f"Settings in {locations.config_file().name}: "
        + ", ".join(key for row in SCHEMA for key in row.keys[:1])
        + " (see the README).",
    )
    # --tls-ca and --no-tls-verify are chat_protocol's, the same for every client.
    add_flags(parser, SCHEMA, add_shared=add_tls_arguments)
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help=f"config file (default {locations.config_file()})",
    )
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Settings from the config file and flags; exits with a one-line error when wrong."""
    parser = build_parser()
    args = parser.parse_args(argv)
    path = args.config or locations.config_file()
    if args.config is not None and not path.exists():
        parser.exit(2, f"chat-tui: error: config file {path} does not exist\n")
    try:
        settings = load(path, **given_flags(SCHEMA, args))
    except ConfigError as exc:
        parser.exit(2, f"chat-tui: error: {exc}\n")
    if args.config is None:
        settings.warnings.extend(stray_config_files(locations.config_dir(), path))
    for warning in settings.warnings:
        print(f"chat-tui: warning: {warning}", file=sys.stderr)
    if settings.account:
        try:
            interactive = sys.stdin.isatty()
            settings.account_password = account_password(
                settings, os.environ, interactive=interactive
            )
        except NoPassword as exc:
            parser.exit(2, f"chat-tui: error: {exc}\n")
    return settings


def remembered_rooms(settings: Settings) -> RememberedRooms:
    """The rooms kept from the last run for this server; without ``--join`` or config
    rooms they become the rooms to join (the local server is one server for this)."""
    key = str(settings.servers[0]) if settings.servers else LOCAL
    remembered = RememberedRooms(locations.state_file(), key)
    if not settings.rooms:
        settings.rooms = remembered.load()
    return remembered


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``chat-tui``."""
    settings = settings_from_args(argv)
    remembered = remembered_rooms(settings)
    local: LocalServer | None = None
    if not settings.servers:
        local = LocalServer(
            locations.data_dir(), locations.local_history_db(), locations.local_server_log()
        )
        print(f"chat-tui: using the local chat-server (history in {local.history_db})…")
        try:
            settings.servers = [local.start()]
        except LocalServerError as exc:
            print(f"chat-tui: error: {exc}", file=sys.stderr)
            return 1
        joined = "started it" if local.started_here else "joined the running one"
        print(f"chat-tui: local chat-server on {local.address} ({joined})")
        if not settings.rooms:
            settings.rooms = ["#general"]
    # Imported late so that --help and config errors answer without loading Textual.
    from chat_tui.app import ChatApp
    from chat_tui.session import ChatSession

    if local is not None:
        # A closed terminal (SIGHUP) or a kill must still let the last client stop the
        # shared server: turn both into an exit that runs the ``finally`` below.
        for sig in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, _exit_on_signal)
    from chat_tui.terminal import TerminalWatch, exit_when_gone

    exit_when_gone(TerminalWatch(), local.stop if local is not None else lambda: None)
    try:
        app = ChatApp(settings, ChatSession(settings), remembered=remembered)
        app.run()
    finally:
        if local is not None:
            local.stop()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
