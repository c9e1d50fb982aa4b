"""Where chat-tui keeps its files: the platform's user config and data directories."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP_NAME = "distchat"


def config_dir() -> Path:
    """Directory of ``chat-tui.toml`` (``~/.config/distchat`` on Linux)."""
    return user_config_path(APP_NAME, appauthor=False)


def config_file() -> Path:
    return config_dir() / "chat-tui.toml"


def data_dir() -> Path:
    """Directory of the local server's history (``~/.local/share/distchat`` on Linux)."""
    return user_data_path(APP_NAME, appauthor=False)


def local_history_db() -> Path:
    return data_dir() / "local-history.db"


def local_server_log() -> Path:
    return data_dir() / "local-server.log"


def state_file() -> Path:
    """What chat-tui remembers between runs (the rooms to rejoin): ``state.json``."""
    return data_dir() / "state.json"
