"""Settings: the TOML config file, overridden by command-line flags.

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
from chat_tui.commands import room_name
from chat_tui.ignore import normal_mask, valid_mask
from chat_tui.keymap import COPY_MODE_KEYS, DEFAULT_KEYS


class ConfigError(ValueError):
    """A config file or flag that cannot be used; the message says what to fix."""


@dataclass
class Settings:
    """Everything chat-tui needs to start; ``servers`` empty means: run a local server."""

    nick: str
    servers: list[ServerAddress] = field(default_factory=list)
    password: str | None = field(default=None, repr=False)  # the server's (PASS)
    # The account to log in to (SASL) and its password; the password comes from the
    # file, CHAT_TUI_PASSWORD or a prompt (cli.py), never from a flag.
    account: str | None = None
    account_password: str | None = field(default=None, repr=False)
    sasl_mechanism: str | None = None
    rooms: list[str] = field(default_factory=list)
    theme: str = "textual-dark"
    send_typing: bool = True
    show_members: bool = True
    timestamp_format: str = "%H:%M"
    keybindings: dict[str, str] = field(default_factory=dict)
    notify: bool = True
    bell: bool = True
    highlight_words: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    # TLS for ircs:// servers: a CA (or self-signed certificate) to trust, and whether
    # certificates are checked at all (chat_protocol's ClientConfig).
    tls_ca: str | None = None
    tls_verify: bool = True
    # Things in the config that were ignored (unknown settings, a file chat-tui does not
    # read): said on stderr and in the server tab, never silently dropped.
    warnings: list[str] = field(default_factory=list)


def default_nick() -> str:
    """The login name made into a valid nick, so a first start needs no flags."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "guest"
    name = re.sub(r"[^A-Za-z0-9\[\]\\`_^{|}\-]", "", name)[:30]
    return name if valid_nick(name) else f"guest-{name}"[:30] if name else "guest"


def _str_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ConfigError(f"{what} must be a string or a list of strings")


def _expect(data: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{what}: {key} must be a {kind.__name__}")
    return value


def _flag(data: dict[str, Any], key: str, source: str) -> bool:
    """A true/false setting, true when missing."""
    value = data.get(key, True)
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be true or false")
    return value


def parse_rooms(items: list[str]) -> list[str]:
    """Room names with ``#`` added where missing."""
    return [room_name(item) for item in items]


def load_file(path: Path) -> dict[str, Any]:
    """Read a config file; a missing file is an empty config, a broken one an error."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc


KNOWN_SETTINGS = (
    "nick", "servers", "server", "password", "rooms", "theme", "send_typing",
    "show_members", "timestamp_format", "keybindings", "notify", "bell", "highlight_words",
    "ignore", "tls_ca", "tls_verify", "account", "server_password", "sasl_mechanism",
)  # fmt: skip


def from_mapping(data: dict[str, Any], source: str = "config") -> Settings:
    """Settings from a parsed TOML document, checked field by field.

    Unknown names are ignored with a warning (a newer version's setting should not stop
    an older client); a known setting with a wrong value is an error.
    """
    warnings = []
    unknown = set(data) - set(KNOWN_SETTINGS)
    if unknown:
        warnings.append(
            f"{source}: unknown setting(s) {', '.join(sorted(unknown))} ignored "
            f"(known: {', '.join(KNOWN_SETTINGS)})"
        )
    account = _account(_expect(data, "account", str, source) or None, source)
    nick = _expect(data, "nick", str, source) or account or default_nick()
    if not valid_nick(nick):
        raise ConfigError(f"{source}: nick {nick!r} is not a valid IRC nick")
    servers_value = data.get("servers", data.get("server"))
    servers: list[ServerAddress] = []
    if servers_value is not None:
        try:
            servers = parse_servers(",".join(_str_list(servers_value, f"{source}: servers")))
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
    keys = _expect(data, "keybindings", dict, source) or {}
    for action, key in list(keys.items()):
        if action not in DEFAULT_KEYS and action not in COPY_MODE_KEYS:
            known = ", ".join(sorted(DEFAULT_KEYS | COPY_MODE_KEYS))
            warnings.append(f"{source}: unknown key binding {action!r} ignored (known: {known})")
            del keys[action]
            continue
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"{source}: key binding {action} must be a key such as 'ctrl+n'")
    rooms = parse_rooms(_str_list(data.get("rooms", []), f"{source}: rooms"))
    ignore = _str_list(data.get("ignore", []), f"{source}: ignore")
    for mask in ignore:
        if not valid_mask(mask):
            raise ConfigError(f"{source}: ignore: {mask!r} is not a nick or nick!user@host mask")
    password = _expect(data, "password", str, source) or None
    server_password = _expect(data, "server_password", str, source) or None
    return Settings(
        nick=nick,
        servers=servers,
        # Without an account, ``password`` is the server's, as it always was.
        password=server_password if account else server_password or password,
        account=account,
        account_password=password if account else None,
        sasl_mechanism=_mechanism(_expect(data, "sasl_mechanism", str, source), source),
        rooms=rooms,
        theme=_expect(data, "theme", str, source) or "textual-dark",
        send_typing=data.get("send_typing", True) is not False,
        show_members=data.get("show_members", True) is not False,
        timestamp_format=_expect(data, "timestamp_format", str, source) or "%H:%M",
        keybindings=dict(keys),
        notify=_flag(data, "notify", source),
        bell=_flag(data, "bell", source),
        highlight_words=_str_list(data.get("highlight_words", []), f"{source}: highlight_words"),
        ignore=[normal_mask(mask) for mask in ignore],
        tls_ca=_expect(data, "tls_ca", str, source) or None,
        tls_verify=_flag(data, "tls_verify", source),
        warnings=warnings,
    )


def _account(name: str | None, source: str) -> str | None:
    """An account name is a nick: the server gives each account the nick named like it."""
    if name is not None and not valid_nick(name):
        raise ConfigError(f"{source}: account {name!r} is not a valid account name (a nick)")
    return name


def _mechanism(name: str | None, source: str) -> str | None:
    if name is None:
        return None
    if name.upper() not in SASL_MECHANISMS:
        known = ", ".join(SASL_MECHANISMS)
        raise ConfigError(f"{source}: sasl_mechanism {name!r} is not one of {known}")
    return name.upper()


def exposed_password_warning(path: Path, data: dict[str, Any]) -> str | None:
    """A warning when a file holding a password can be read by other users."""
    if "password" not in data and "server_password" not in data:
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


def load(
    path: Path,
    *,
    servers: str | None = None,
    nick: str | None = None,
    password: str | None = None,
    join: str | None = None,
    tls_ca: str | None = None,
    tls_verify: bool = True,
    account: str | None = None,
) -> Settings:
    """The config file at ``path`` with command-line flags on top (``password`` is the
    server's, PASS: an account's password is never a flag)."""
    data = load_file(path)
    settings = from_mapping(data, str(path))
    if account is not None:
        settings.account = _account(account, "--account")
        if "nick" not in data:
            settings.nick = account  # the nick an account owns is its own name
        if settings.account_password is None and data.get("password"):
            # The file's ``password`` is the account's once there is an account.
            settings.account_password = data["password"]
            settings.password = data.get("server_password") or None
    warning = exposed_password_warning(path, data)
    if warning:
        settings.warnings.append(warning)
    if servers is not None:
        try:
            settings.servers = parse_servers(servers)
        except ValueError as exc:
            raise ConfigError(f"--server: {exc}") from exc
    if nick is not None:
        if not valid_nick(nick):
            raise ConfigError(f"--nick: {nick!r} is not a valid IRC nick")
        settings.nick = nick
    if password is not None:
        settings.password = password
    if join is not None:
        settings.rooms = parse_rooms(_str_list(join, "--join"))
    if tls_ca is not None:
        settings.tls_ca = tls_ca
    if not tls_verify:
        settings.tls_verify = False
    return settings
