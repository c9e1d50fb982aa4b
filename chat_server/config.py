"""Server settings: defaults, the TOML config file, and command-line overrides."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs


class ConfigError(Exception):
    """A config file or flag that cannot be used; the CLI prints it as one line."""


@dataclass
class ServerConfig:
    """Everything the server can be told. Field names are the TOML keys."""

    host: str = "127.0.0.1"
    port: int = 6667
    server_name: str = "distchat.local"
    network: str = "distchat"
    password: str | None = None
    opers: dict[str, str] = field(default_factory=dict)
    motd: str = "Welcome to distchat. /join #room to start talking; /list shows the rooms."
    history_db: str | None = None
    history_on_join: int = 50
    history_cache: int = 1000
    chathistory_max: int = 1000
    flood_limit: bool = True
    flood_burst: int = 30
    flood_rate: float = 6.0
    recvq_max: int = 32 * 1024
    sendq_max: int = 512 * 1024
    max_clients: int = 20000
    max_per_address: int = 256
    max_channels_per_user: int = 100
    registration_timeout: float = 30.0
    ping_interval: float = 90.0
    ping_timeout: float = 120.0
    nick_len: int = 30
    channel_len: int = 64
    topic_len: int = 390
    log_level: str = "INFO"
    redis: str | None = None
    node_id: str | None = None

    def history_path(self) -> Path:
        """The SQLite file: the flag or config value, else the user's data directory."""
        if self.history_db:
            return Path(self.history_db).expanduser()
        return Path(platformdirs.user_data_dir("distchat")) / "history.db"


def load_config_file(path: str | Path) -> dict[str, object]:
    """Read a TOML config file into a dict of known keys; unknown keys are an error."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {p}") from exc
    except PermissionError as exc:
        raise ConfigError(f"config file not readable: {p}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    data = data.get("server", data) if isinstance(data.get("server"), dict) else data
    known = {f.name: f for f in fields(ServerConfig)}
    out: dict[str, object] = {}
    defaults = ServerConfig()
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"config file {p}: unknown setting {key!r}")
        default = getattr(defaults, name)
        int_for_float = isinstance(default, float) and isinstance(value, int)
        if default is not None and not isinstance(value, type(default)) and not int_for_float:
            raise ConfigError(
                f"config file {p}: {key} must be {type(default).__name__}, "
                f"not {type(value).__name__}"
            )
        out[name] = value
    return out
