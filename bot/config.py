"""The bot's settings: defaults, a TOML file, then command-line flags, in that order.

A room may have some settings of its own (``[room."#help"]`` tables in the file: its
model, system prompt, answer size, time limit, context and rate); everything it does
not set comes from the global settings, whether those came from the file or a flag.

The API key is never a setting: it comes from the environment only
(``OPENROUTER_API_KEY``, then ``OPENAI_API_KEY``), so it cannot end up in a config file
that gets committed or pasted.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from chat_protocol.casemap import casefold, valid_channel

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
# A small, cheap, widely available chat model on OpenRouter; any id the API knows works.
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful member of a multi-user IRC chat room. Answer briefly in plain "
    "text: no markdown, no code fences unless asked, a few short sentences at most."
)
KEY_VARIABLES = ("OPENROUTER_API_KEY", "OPENAI_API_KEY")


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
        return self


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


# TOML key -> (field name, converter). Dashes and underscores are both accepted.
def _to_int(name: str) -> Any:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"config: {name} must be an integer")
        return v

    return conv


def _to_float(name: str) -> Any:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"config: {name} must be a number")
        return float(v)

    return conv


def _to_str(name: str) -> Any:
    def conv(v: Any) -> str:
        if not isinstance(v, str):
            raise ConfigError(f"config: {name} must be a string")
        return v

    return conv


def _to_bool(name: str) -> Any:
    def conv(v: Any) -> bool:
        if not isinstance(v, bool):
            raise ConfigError(f"config: {name} must be true or false")
        return v

    return conv


def _to_rooms(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return split_rooms(v)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return split_rooms(",".join(v))
    if isinstance(v, dict):
        raise ConfigError(
            "config: rooms must be a string or a list of strings; "
            'a room\'s own settings go in a [room."#name"] table'
        )
    raise ConfigError("config: rooms must be a string or a list of strings")


def _to_servers(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return ",".join(v)
    raise ConfigError("config: server must be a string or a list of strings")


def _to_rate(name: str) -> Any:
    def conv(v: Any) -> Rate:
        if not isinstance(v, str | int) or isinstance(v, bool):
            raise ConfigError(f"config: {name} must be a string like '4/60' or 'off'")
        return Rate.parse(str(v))

    return conv


_TOML_KEYS: dict[str, tuple[str, Any]] = {
    "server": ("servers", _to_servers),
    "servers": ("servers", _to_servers),
    "nick": ("nick", _to_str("nick")),
    "rooms": ("rooms", _to_rooms),
    "base_url": ("base_url", _to_str("base_url")),
    "model": ("model", _to_str("model")),
    "system_prompt": ("system_prompt", _to_str("system_prompt")),
    "context_lines": ("context_lines", _to_int("context_lines")),
    "max_lines": ("max_lines", _to_int("max_lines")),
    "max_tokens": ("max_tokens", _to_int("max_tokens")),
    "timeout": ("timeout", _to_float("timeout")),
    "user_rate": ("user_rate", _to_rate("user_rate")),
    "room_rate": ("room_rate", _to_rate("room_rate")),
    "send_rate": ("send_rate", _to_rate("send_rate")),
    "command_rate": ("command_rate", _to_rate("command_rate")),
    "temperature": ("temperature", _to_float("temperature")),
    "top_p": ("top_p", _to_float("top_p")),
    "max_concurrent": ("max_concurrent", _to_int("max_concurrent")),
    "max_rooms": ("max_rooms", _to_int("max_rooms")),
    "tls_ca": ("tls_ca", _to_str("tls_ca")),
    "tls_verify": ("tls_verify", _to_bool("tls_verify")),
}
assert {f for f, _ in _TOML_KEYS.values()} <= {f.name for f in fields(BotConfig)}
assert set(ROOM_SETTINGS) <= set(_TOML_KEYS) and set(ROOM_SETTINGS) <= set(RoomSettings.__slots__)
_KEY_NAMES = ("api_key", "key", "openai_api_key", "openrouter_api_key")
_NO_KEYS = "keys do not belong in files; set OPENROUTER_API_KEY instead"


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file into BotConfig field values; ConfigError says what is wrong.

    Per-room settings are ``[room."#name"]`` tables (``[bot.room."#name"]`` works too);
    they end up in ``room_overrides``. Whether their rooms are joined is checked later,
    by ``BotConfig.check``, once flags may have changed the room list.
    """
    path = Path(path).expanduser()
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    room_tables: list[Any] = []
    # Accept both a flat file and one with a [bot] table.
    if isinstance(raw.get("bot"), dict):
        if "room" in raw:  # [room."#x"] next to [bot]
            room_tables.append(raw["room"])
        raw = raw["bot"]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        norm = key.replace("-", "_")
        if norm in _KEY_NAMES:
            raise ConfigError(f"config {path}: {_NO_KEYS}")
        if norm == "room":
            room_tables.append(value)
            continue
        if norm not in _TOML_KEYS:
            known = ", ".join(sorted(k for k in _TOML_KEYS if k != "servers"))
            raise ConfigError(f"config {path}: unknown setting {key!r} (known: {known})")
        name, conv = _TOML_KEYS[norm]
        values[name] = conv(value)
    if "system_prompt" in values:
        values["system_prompt"] = _prompt_near(values["system_prompt"], path)
    overrides: dict[str, dict[str, Any]] = {}
    for table in room_tables:
        _load_rooms(table, path, overrides)
    if overrides:
        values["room_overrides"] = overrides
    return values


def _prompt_near(prompt: str, path: Path) -> str:
    """A prompt file named in a config file is found next to that file."""
    if prompt.startswith("@"):
        return read_text_arg("@" + str(path.parent / Path(prompt[1:]).expanduser()))
    return prompt


def _load_rooms(table: Any, path: Path, into: dict[str, dict[str, Any]]) -> None:
    """Add the ``[room."#name"]`` tables in ``table`` to ``into`` (room -> values)."""
    if not isinstance(table, dict):
        raise ConfigError(
            f'config {path}: room must be a table of rooms, like [room."#help"] model = "..."'
        )
    allowed = ", ".join(ROOM_SETTINGS)
    for written, settings in table.items():
        room = room_name(written)
        if not valid_channel(room):
            raise ConfigError(f"config {path}: [room.{written!r}]: not a valid room name")
        if not isinstance(settings, dict):
            raise ConfigError(
                f'config {path}: room.{written!r} must be a table of settings, like [room."{room}"]'
            )
        for other in into:
            if casefold(other) == casefold(room):
                raise ConfigError(f"config {path}: room {room} has two settings tables")
        where = f"config {path}: room {room}"
        values: dict[str, Any] = {}
        for key, value in settings.items():
            norm = key.replace("-", "_")
            if norm in _KEY_NAMES:
                raise ConfigError(f"{where}: {_NO_KEYS}")
            if norm not in ROOM_SETTINGS:
                what = "cannot be set per room" if norm in _TOML_KEYS else "is not a setting"
                raise ConfigError(f"{where}: {key!r} {what} (a room may set: {allowed})")
            name, conv = _TOML_KEYS[norm]
            try:
                values[name] = conv(value)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {str(exc).removeprefix('config: ')}") from None
        if "system_prompt" in values:
            try:
                values["system_prompt"] = _prompt_near(values["system_prompt"], path)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        into[room] = values
