"""Settings: every one declared once below (kind, default, help, file key, flag,
environment variable); the TOML file and the command line both read the declarations
(see ``schema``). Precedence: defaults, then the file, then flags.

The file is ``chat-tui.toml`` in the user's config directory (see ``locations``)::

    nick = "alice"
    servers = ["irc.example.net:6667"]   # or "host:port,host:port"
    rooms = ["#general", "#random"]
    account = "alice"                    # log in to this account (SASL)
    password = "secret"                  # its password (without account: the server's, PASS)
    server_password = "secret"           # the server's password (PASS), next to an account
    sasl_mechanism = "PLAIN"             # optional: SCRAM-SHA-256 is taken when offered
    theme = "textual-dark"
    send_typing = true                   # tell others when you type
    show_members = true
    timestamp_format = "%H:%M"
    notify = true                        # desktop notification on a mention or DM
    bell = true                          # ... and the terminal bell
    highlight_words = ["deploy"]         # words that count as mentions, like your nick
    ignore = ["spammer", "*!*@bad.example"]

    [keybindings]                        # action = "key[,key…]"
    next_room = "ctrl+n"
    toggle_members = "f2"

An empty string in the file is the same as leaving the setting out.
"""

from __future__ import annotations

import getpass
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat_protocol import valid_nick
from chat_protocol.client_types import SASL_MECHANISMS, ServerAddress, parse_servers
from chat_tui.command_table import room_name
from chat_tui.ignore import normal_mask, valid_mask
from chat_tui.keymap import COPY_MODE_KEYS, DEFAULT_KEYS
from chat_tui.schema import (
    ConfigError,
    FileValues,
    Kind,
    Setting,
    SettingError,
    from_file,
    from_flags,
    schema,
    setting,
)

__all__ = ["SCHEMA", "ConfigError", "Settings", "from_mapping", "load"]

PASSWORD_VARIABLE = "CHAT_TUI_PASSWORD"

# -- kinds of values -------------------------------------------------------------------


def _takes_no_text(text: str, label: str) -> Any:
    raise SettingError(f"{label} takes no value")


def _text(value: object, label: str) -> str | None:
    if not isinstance(value, str):
        raise SettingError(f"{label} must be a string")
    return value or None


def _flag(value: object, label: str) -> bool:
    if not isinstance(value, bool):
        raise SettingError(f"{label} must be true or false")
    return value


def _words(value: object, label: str) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` as ``["a", "b"]``."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise SettingError(f"{label} must be a string or a list of strings")


def _nick(value: object, label: str) -> str | None:
    nick = _text(value, label)
    if nick is not None and not valid_nick(nick):
        raise SettingError(f"{label} {nick!r} is not a valid IRC nick")
    return nick


def _account(value: object, label: str) -> str | None:
    """An account name is a nick: the server gives each account the nick named like it."""
    name = _text(value, label)
    if name is not None and not valid_nick(name):
        raise SettingError(f"{label} {name!r} is not a valid account name (a nick)")
    return name


def _servers(value: object, label: str) -> list[ServerAddress]:
    try:
        return parse_servers(",".join(_words(value, label)))
    except ValueError as exc:
        raise SettingError(f"{label}: {exc}") from None


def _rooms(value: object, label: str) -> list[str]:
    """Room names with ``#`` added where missing."""
    return [room_name(word) for word in _words(value, label)]


def _masks(value: object, label: str) -> list[str]:
    masks = _words(value, label)
    for mask in masks:
        if not valid_mask(mask):
            raise SettingError(f"{label}: {mask!r} is not a nick or nick!user@host mask")
    return [normal_mask(mask) for mask in masks]


def _mechanism(value: object, label: str) -> str | None:
    name = _text(value, label)
    if name is not None and name.upper() not in SASL_MECHANISMS:
        raise SettingError(f"{label} {name!r} is not one of {', '.join(SASL_MECHANISMS)}")
    return name.upper() if name is not None else None


def _keys(value: object, label: str) -> dict[str, str]:
    """``action = "key[,key…]"``; bindings of actions chat-tui does not have are kept
    here and warned about in ``settings_from``."""
    if not isinstance(value, dict):
        raise SettingError(f"{label} must be a table")
    for action, key in value.items():
        known = action in DEFAULT_KEYS or action in COPY_MODE_KEYS
        if known and (not isinstance(key, str) or not key.strip()):
            raise SettingError(f"key binding {action} must be a key such as 'ctrl+n'")
    return dict(value)


TEXT = Kind(_text, lambda text, label: text or None)
FLAG = Kind(_flag, _takes_no_text)
WORDS = Kind(_words, _words)
NICK = Kind(_nick, _nick)
ACCOUNT = Kind(_account, _account)
SERVERS = Kind(_servers, _servers)
ROOMS = Kind(_rooms, _rooms)
MASKS = Kind(_masks, _masks)
MECHANISM = Kind(_mechanism, _mechanism)
KEYS = Kind(_keys, _takes_no_text)


# -- the settings ----------------------------------------------------------------------


@dataclass
class Settings:
    """Everything chat-tui needs to start; ``servers`` empty means: run a local server.

    Field names are the file's keys unless a field says otherwise.
    """

    # setting() gives a list or dict default its own default_factory: none is shared
    servers: list[ServerAddress] = setting(  # noqa: RUF009
        [], "servers, in order; ircs://HOST[:PORT] for TLS (port 6697)",
        kind=SERVERS, old_keys=("server",), flag="--server", metavar="HOST:PORT[,HOST:PORT…]",
    )  # fmt: skip
    # TLS for ircs:// servers: a CA (or self-signed certificate) to trust, and whether
    # certificates are checked at all (chat_protocol's ClientConfig; the flags are
    # chat_protocol.client_tls's, the same for every client program).
    tls_ca: str | None = setting(
        None, "PEM CA (or self-signed certificate) to trust for TLS",
        kind=TEXT, flag="--tls-ca", shared_flag=True,
    )  # fmt: skip
    tls_verify: bool = setting(
        True, "check TLS certificates (false: a throwaway test server only)",
        kind=FLAG, flag="--no-tls-verify", shared_flag=True,
    )  # fmt: skip
    nick: str = setting(
        "", "your nick (default: the account's name, else your login name)",
        kind=NICK, flag="--nick", metavar="NAME",
    )  # fmt: skip
    account: str | None = setting(
        None,
        f"log in to this account; its password comes from the config file, "
        f"{PASSWORD_VARIABLE} or a prompt (never a flag)",
        kind=ACCOUNT, flag="--account", metavar="NAME",
    )  # fmt: skip
    # The server's password (PASS); the file's ``password`` is it too, without an account.
    password: str | None = setting(
        None, "the server's password (PASS), not an account's",
        kind=TEXT, key="server_password", flag="--password", metavar="PASS", secret=True,
    )  # fmt: skip
    # The account's password: from CHAT_TUI_PASSWORD, else the file, else a prompt
    # (cli.py), never from a flag (flags show in the process list).
    account_password: str | None = setting(
        None, "the account's password (with an account; without one, the server's)",
        kind=TEXT, key="password", env=PASSWORD_VARIABLE, secret=True,
    )  # fmt: skip
    sasl_mechanism: str | None = setting(
        None, "PLAIN or SCRAM-SHA-256 (default: SCRAM-SHA-256 when offered)", kind=MECHANISM
    )
    rooms: list[str] = setting(  # noqa: RUF009
        [], "rooms to join", kind=ROOMS, flag="--join", metavar="'#a,#b'"
    )
    theme: str = setting("textual-dark", "a Textual theme", kind=TEXT)
    send_typing: bool = setting(True, "tell others when you type", kind=FLAG)
    show_members: bool = setting(True, "show the member list", kind=FLAG)
    timestamp_format: str = setting("%H:%M", "strftime format of message times", kind=TEXT)
    keybindings: dict[str, str] = setting(  # noqa: RUF009
        {}, "[keybindings] action = 'key[,key…]'", kind=KEYS
    )
    notify: bool = setting(True, "desktop notification on a mention or DM", kind=FLAG)
    bell: bool = setting(True, "terminal bell on a mention or DM", kind=FLAG)
    highlight_words: list[str] = setting(  # noqa: RUF009
        [], "words that count as mentions, like your nick", kind=WORDS
    )
    ignore: list[str] = setting(  # noqa: RUF009
        [], "nicks or nick!user@host masks to hide", kind=MASKS
    )
    # Things in the config that were ignored (unknown settings, a file chat-tui does not
    # read): said on stderr and in the server tab, never silently dropped.
    warnings: list[str] = field(default_factory=list)


SCHEMA: tuple[Setting, ...] = schema(Settings)
ROWS = {row.name: row for row in SCHEMA}


def default_nick() -> str:
    """The login name made into a valid nick, so a first start needs no flags."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "guest"
    name = re.sub(r"[^A-Za-z0-9\[\]\\`_^{|}\-]", "", name)[:30]
    return name if valid_nick(name) else f"guest-{name}"[:30] if name else "guest"


def settings_from(file: FileValues, flags: dict[str, Any]) -> Settings:
    """Settings from a file's values with flags on top, and the rules between them:
    the nick is the account's name unless given, and ``password`` in the file is the
    account's once there is an account (by the file or ``--account``), else the
    server's, as it always was."""
    values = {**file.values, **flags}
    warnings = list(file.warnings)
    account = values.get("account")
    values.setdefault("nick", account or default_nick())
    if not account:
        file_password = values.pop("account_password", None)
        if "password" not in values and file_password:
            values["password"] = file_password
    keys = values.get("keybindings", {})
    for action in [a for a in keys if a not in DEFAULT_KEYS and a not in COPY_MODE_KEYS]:
        known = ", ".join(sorted(DEFAULT_KEYS | COPY_MODE_KEYS))
        warnings.append(f"{file.where}: unknown key binding {action!r} ignored (known: {known})")
        del keys[action]
    return Settings(**values, warnings=warnings)


def from_mapping(data: dict[str, Any], source: str = "config") -> Settings:
    """Settings from a parsed TOML document, checked field by field.

    Unknown names are ignored with a warning (a newer version's setting should not stop
    an older client); a known setting with a wrong value is an error.
    """
    return settings_from(from_file(SCHEMA, data, source), {})


def load_file(path: Path) -> dict[str, Any]:
    """Read a config file; a missing file is an empty config, a broken one an error."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc


def load(path: Path, **flags: str | bool | None) -> Settings:
    """The config file at ``path`` with flags on top, by the name of the setting each
    fills: text as typed (``servers="h:1,h:2"``, ``rooms="#a,b"``), or the value of a
    flag without one (``tls_verify=False``: ``--no-tls-verify``); None: not given."""
    data = load_file(path)
    settings = settings_from(from_file(SCHEMA, data, str(path)), from_flags(SCHEMA, flags))
    warning = exposed_password_warning(path, data)
    if warning:
        settings.warnings.append(warning)
    return settings


def exposed_password_warning(path: Path, data: dict[str, Any]) -> str | None:
    """A warning when a file holding a password can be read by other users."""
    if not any(key in data for row in SCHEMA if row.secret for key in row.keys):
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o077:
        return f"{path} holds a password and other users may read it: chmod 600 {path}"
    return None


def stray_config_files(directory: Path, read: Path) -> list[str]:
    """Warnings for TOML files in chat-tui's config directory that nothing reads (say a
    ``config.toml`` written after an old README), so they are not silently ignored."""
    try:
        found = sorted(directory.glob("*.toml"))
    except OSError:
        return []
    return [
        f"{path} is not read: chat-tui reads {read.name} (rename it, or pass --config)"
        for path in found
        if path.name != read.name
    ]
