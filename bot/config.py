"""The bot's settings: defaults, a TOML file (``config_file``), then command-line flags,
in that order.

A room may have some settings of its own (``[room."#help"]`` tables in the file: its
model, system prompt, answer size, time limit, context and rate); everything it does
not set comes from the global settings, whether those came from the file or a flag.

The API key is never a setting: it comes from the environment only
(``OPENROUTER_API_KEY``, then ``OPENAI_API_KEY``), so it cannot end up in a config file
that gets committed or pasted. The same holds for the password of the bot's account
(``CHAT_BOT_PASSWORD``); the account's name is a setting (``account``, default: the
nick, as the server gives each account the nick named like it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chat_protocol.casemap import casefold
from chat_protocol.sasl import MECHANISMS as SASL_MECHANISMS

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
# A small, cheap, widely available chat model on OpenRouter; any id the API knows works.
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful member of a multi-user IRC chat room. Answer briefly in plain "
    "text: no markdown, no code fences unless asked, a few short sentences at most."
)
KEY_VARIABLES = ("OPENROUTER_API_KEY", "OPENAI_API_KEY")
PASSWORD_VARIABLE = "CHAT_BOT_PASSWORD"


class ConfigError(ValueError):
    """A setting that cannot work; the message is shown to the user as one line."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``per`` seconds (a token bucket); count 0 means no limit."""

    count: int
    per: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``N/SECONDS`` (e.g. ``4/60``), or ``off`` / ``0`` for no limit."""
        text = text.strip().lower()
        if text in ("off", "0", "none"):
            return cls(0, 1.0)
        count_s, sep, per_s = text.partition("/")
        try:
            count = int(count_s)
            per = float(per_s) if sep else 60.0
        except ValueError:
            raise ConfigError(f"rate {text!r} is not N/SECONDS (e.g. 4/60) or 'off'") from None
        if count < 0 or per <= 0:
            raise ConfigError(f"rate {text!r} needs N >= 0 and SECONDS > 0")
        return cls(count, per)

    @property
    def enabled(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        return f"{self.count}/{self.per:g}" if self.enabled else "off"


# The settings a room may override; the others (server, nick, key, pacing...) belong to
# the connection, and user_rate to a person wherever they ask.
ROOM_SETTINGS = (
    "model",
    "system_prompt",
    "max_tokens",
    "max_lines",
    "context_lines",
    "timeout",
    "room_rate",
    "temperature",
    "top_p",
)


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """What applies in one room (or private chat): its own values over the global ones."""

    model: str
    system_prompt: str
    max_tokens: int
    max_lines: int
    context_lines: int
    timeout: float
    room_rate: Rate
    temperature: float | None = None  # None: the model's own default
    top_p: float | None = None


@dataclass(frozen=True, slots=True)
class BotConfig:
    """Everything ``chat-bot`` needs to run, after defaults, file and flags are merged."""

    servers: str = ""
    nick: str = "bot"
    rooms: tuple[str, ...] = ()
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    context_lines: int = 50
    max_lines: int = 8
    max_tokens: int = 600
    timeout: float = 60.0
    user_rate: Rate = field(default_factory=lambda: Rate(4, 60.0))
    room_rate: Rate = field(default_factory=lambda: Rate(12, 60.0))
    # Built-in commands cost no API call, so they get a limit of their own, much looser.
    command_rate: Rate = field(default_factory=lambda: Rate(20, 60.0))
    temperature: float | None = None
    top_p: float | None = None
    send_rate: Rate = field(default_factory=lambda: Rate(8, 2.0))
    max_concurrent: int = 4
    max_rooms: int = 50
    api_key: str | None = field(default=None, repr=False)
    # The account the bot logs in to (SASL) so that its nick is its own; the password
    # comes from CHAT_BOT_PASSWORD only. None with a password: the nick.
    account: str | None = None
    account_password: str | None = field(default=None, repr=False)
    sasl_mechanism: str | None = None  # None: SCRAM-SHA-256 when offered, else PLAIN
    # TLS for ircs:// servers (see chat_protocol's ClientConfig): extra CAs to trust,
    # and whether certificates are checked at all.
    tls_ca: str | None = None
    tls_verify: bool = True
    # Room name as written -> {setting in ROOM_SETTINGS: value}; matched case-insensitively.
    room_overrides: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)

    def merged(self, values: dict[str, Any]) -> BotConfig:
        """A copy with ``values`` (already parsed) applied; ``None`` values are skipped."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def overrides_for(self, target: str) -> tuple[str, dict[str, Any]] | None:
        """The room's own settings table (its name as written, the values), if it has one."""
        key = casefold(target)
        for room, values in self.room_overrides.items():
            if casefold(room) == key:
                return room, values
        return None

    def for_room(self, target: str) -> RoomSettings:
        """The settings for a room or private chat: its overrides, else the global values."""
        values = {name: getattr(self, name) for name in ROOM_SETTINGS}
        found = self.overrides_for(target)
        if found is not None:
            values.update(found[1])
        return RoomSettings(**values)

    def check(self) -> BotConfig:
        """Raise ConfigError for values that cannot work; return self for chaining."""
        if not self.servers:
            raise ConfigError("no server given: use --server HOST:PORT or 'server' in the config")
        _check_room_settings(self.for_room(""), "")  # no room: the global settings
        joined = {casefold(room) for room in self.rooms}
        for room in self.room_overrides:
            if casefold(room) not in joined:
                where = ", ".join(self.rooms) if self.rooms else "none"
                raise ConfigError(
                    f"settings for room {room}, which the bot does not join (its rooms: {where})"
                )
            _check_room_settings(self.for_room(room), f"room {room}: ")
        if self.max_concurrent < 1:
            raise ConfigError("max concurrent must be >= 1")
        if not self.send_rate.enabled:
            raise ConfigError("send rate cannot be off: the server would drop a flooding bot")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL {self.base_url!r} must start with http:// or https://")
        if self.account and not self.account_password:
            raise ConfigError(f"account {self.account} needs its password in {PASSWORD_VARIABLE}")
        if self.sasl_mechanism and self.sasl_mechanism.upper() not in SASL_MECHANISMS:
            known = ", ".join(SASL_MECHANISMS)
            raise ConfigError(f"SASL mechanism {self.sasl_mechanism!r} is not one of {known}")
        return self

    @property
    def login_account(self) -> str | None:
        """The account to log in to: ``account``, or the nick when only a password is set."""
        if not self.account_password:
            return None
        return self.account or self.nick


def _check_room_settings(settings: RoomSettings, where: str) -> None:
    if settings.context_lines < 0:
        raise ConfigError(f"{where}context lines must be >= 0")
    if settings.max_lines < 1:
        raise ConfigError(f"{where}max lines must be >= 1")
    if settings.max_tokens < 1:
        raise ConfigError(f"{where}max tokens must be >= 1")
    if settings.timeout <= 0:
        raise ConfigError(f"{where}timeout must be > 0 seconds")
    if settings.temperature is not None and not 0.0 <= settings.temperature <= 2.0:
        raise ConfigError(f"{where}temperature must be between 0 and 2")
    if settings.top_p is not None and not 0.0 < settings.top_p <= 1.0:
        raise ConfigError(f"{where}top_p must be more than 0 and at most 1")


def api_key_from_env(environ: dict[str, str] | None = None) -> str | None:
    """The first non-empty key among KEY_VARIABLES, or None (AI answers then stay off)."""
    env = os.environ if environ is None else environ
    for name in KEY_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def password_from_env(environ: dict[str, str] | None = None) -> str | None:
    """The account's password from CHAT_BOT_PASSWORD (None when unset or empty)."""
    env = os.environ if environ is None else environ
    return env.get(PASSWORD_VARIABLE) or None


def room_name(name: str) -> str:
    """``'help'`` -> ``'#help'``: the '#' is added when left out, as clients do."""
    return name if name[:1] in "#&" else "#" + name


def split_rooms(text: str) -> tuple[str, ...]:
    """``'#a, b'`` -> ``('#a', '#b')``: the '#' is added when left out, as clients do."""
    rooms = []
    for part in text.replace(" ", ",").split(","):
        part = part.strip()
        if part:
            rooms.append(room_name(part))
    return tuple(rooms)


def read_text_arg(value: str) -> str:
    """``@FILE`` reads the file (ConfigError when missing); anything else is literal text."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
