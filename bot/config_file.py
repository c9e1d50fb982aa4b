"""The bot's TOML settings file, read into ``BotConfig`` field values.

Each key is declared once in ``_TOML_KEYS`` (field name and converter); dashes and
underscores are both accepted. Keys and passwords are refused outright: they come from
the environment only (see ``bot.config``).
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from bot.config import (
    PASSWORD_VARIABLE,
    ROOM_SETTINGS,
    BotConfig,
    ConfigError,
    Rate,
    RoomSettings,
    read_text_arg,
    room_name,
    split_rooms,
)
from chat_protocol.casemap import casefold, valid_channel


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
    "account": ("account", _to_str("account")),
    "sasl_mechanism": ("sasl_mechanism", _to_str("sasl_mechanism")),
}
assert {f for f, _ in _TOML_KEYS.values()} <= {f.name for f in fields(BotConfig)}
assert set(ROOM_SETTINGS) <= set(_TOML_KEYS) and set(ROOM_SETTINGS) <= set(RoomSettings.__slots__)
_KEY_NAMES = ("api_key", "key", "openai_api_key", "openrouter_api_key")
_NO_KEYS = "keys do not belong in files; set OPENROUTER_API_KEY instead"
_PASSWORD_NAMES = ("password", "account_password", "sasl_password")
_NO_PASSWORDS = f"passwords do not belong in files; set {PASSWORD_VARIABLE} instead"


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
        if norm in _PASSWORD_NAMES:
            raise ConfigError(f"config {path}: {_NO_PASSWORDS}")
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
