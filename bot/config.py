"""The bot's settings: defaults, a TOML file, then command-line flags, in that order.

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
    send_rate: Rate = field(default_factory=lambda: Rate(8, 2.0))
    max_concurrent: int = 4
    max_rooms: int = 50
    api_key: str | None = field(default=None, repr=False)

    def merged(self, values: dict[str, Any]) -> BotConfig:
        """A copy with ``values`` (already parsed) applied; ``None`` values are skipped."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def check(self) -> BotConfig:
        """Raise ConfigError for values that cannot work; return self for chaining."""
        if not self.servers:
            raise ConfigError("no server given: use --server HOST:PORT or 'server' in the config")
        if self.context_lines < 0:
            raise ConfigError("context lines must be >= 0")
        if self.max_lines < 1:
            raise ConfigError("max lines must be >= 1")
        if self.max_tokens < 1:
            raise ConfigError("max tokens must be >= 1")
        if self.timeout <= 0:
            raise ConfigError("timeout must be > 0 seconds")
        if self.max_concurrent < 1:
            raise ConfigError("max concurrent must be >= 1")
        if not self.send_rate.enabled:
            raise ConfigError("send rate cannot be off: the server would drop a flooding bot")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL {self.base_url!r} must start with http:// or https://")
        return self


def api_key_from_env(environ: dict[str, str] | None = None) -> str | None:
    """The first non-empty key among KEY_VARIABLES, or None (AI answers then stay off)."""
    env = os.environ if environ is None else environ
    for name in KEY_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def split_rooms(text: str) -> tuple[str, ...]:
    """``'#a, b'`` -> ``('#a', '#b')``: the '#' is added when left out, as clients do."""
    rooms = []
    for part in text.replace(" ", ",").split(","):
        part = part.strip()
        if part:
            rooms.append(part if part[0] in "#&" else "#" + part)
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


def _to_rooms(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return split_rooms(v)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return split_rooms(",".join(v))
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
    "max_concurrent": ("max_concurrent", _to_int("max_concurrent")),
    "max_rooms": ("max_rooms", _to_int("max_rooms")),
}
assert {f for f, _ in _TOML_KEYS.values()} <= {f.name for f in fields(BotConfig)}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file into BotConfig field values; ConfigError says what is wrong."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    # Accept both a flat file and one with a [bot] table.
    if isinstance(raw.get("bot"), dict):
        raw = raw["bot"]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        norm = key.replace("-", "_")
        if norm in ("api_key", "key", "openai_api_key", "openrouter_api_key"):
            raise ConfigError(
                f"config {path}: keys do not belong in files; set OPENROUTER_API_KEY instead"
            )
        if norm not in _TOML_KEYS:
            known = ", ".join(sorted(k for k in _TOML_KEYS if k != "servers"))
            raise ConfigError(f"config {path}: unknown setting {key!r} (known: {known})")
        name, conv = _TOML_KEYS[norm]
        values[name] = conv(value)
    prompt = values.get("system_prompt")
    if prompt and prompt.startswith("@"):
        # A prompt file named in a config file is found next to that file.
        values["system_prompt"] = read_text_arg(
            "@" + str(path.parent / Path(prompt[1:]).expanduser())
        )
    return values
