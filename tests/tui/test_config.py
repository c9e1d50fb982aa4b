"""Config file and flags: what they set, and the one-line errors when they are wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_protocol.client_types import ServerAddress
from chat_tui.cli import settings_from_args
from chat_tui.config import ConfigError, default_nick, load
from tests.tui.scenes import offline_app

GOOD = """
nick = "alice"
servers = ["127.0.0.1:6667", "127.0.0.2:7000"]
rooms = ["general", "#random"]
theme = "nord"
send_typing = false

[keybindings]
next_room = "ctrl+j"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chat-tui.toml"
    path.write_text(text)
    return path


def test_config_file_is_read(tmp_path: Path) -> None:
    settings = load(write(tmp_path, GOOD))
    assert settings.nick == "alice"
    assert settings.servers == [ServerAddress("127.0.0.1", 6667), ServerAddress("127.0.0.2", 7000)]
    assert settings.rooms == ["#general", "#random"]
    assert settings.theme == "nord" and settings.send_typing is False
    assert settings.keybindings == {"next_room": "ctrl+j"}


def test_flags_override_file(tmp_path: Path) -> None:
    settings = load(
        write(tmp_path, GOOD), servers="10.0.0.1:1", nick="bob", password="pw", join="#x,y"
    )
    assert settings.servers == [ServerAddress("10.0.0.1", 1)]
    assert (settings.nick, settings.password, settings.rooms) == ("bob", "pw", ["#x", "#y"])


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path / "none.toml")
    assert settings.servers == [] and settings.nick == default_nick()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nick = 'bad nick'", "not a valid IRC nick"),
        ("servers = ['host:notaport']", "port is not a number"),
        ("nick = [", "cannot read config"),
        ("rooms = 5", "rooms must be"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load(write(tmp_path, text))


def test_bad_flag_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--server"):
        load(tmp_path / "none.toml", servers="host:99999")
    with pytest.raises(ConfigError, match="--nick"):
        load(tmp_path / "none.toml", nick="#chan")


def test_default_nick_is_valid() -> None:
    from chat_protocol import valid_nick

    assert valid_nick(default_nick())


def test_unknown_settings_are_ignored_with_a_warning(tmp_path: Path) -> None:
    settings = load(write(tmp_path, "nick = 'alice'\ncolour = 'red'\n[keybindings]\nfly = 'f9'"))
    assert settings.nick == "alice" and settings.keybindings == {}
    assert len(settings.warnings) == 2
    assert "unknown setting(s) colour ignored" in settings.warnings[0]
    assert "unknown key binding 'fly' ignored" in settings.warnings[1]


def test_a_config_toml_beside_is_not_silently_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README once said config.toml; the file chat-tui reads is chat-tui.toml."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    directory = tmp_path / "distchat"
    directory.mkdir()
    (directory / "config.toml").write_text("nick = 'fromold'\n")
    (directory / "chat-tui.toml").write_text("nick = 'fromnew'\n")
    settings = settings_from_args(["--server", "127.0.0.1:1"])
    assert settings.nick == "fromnew"
    assert settings.warnings == [
        f"{directory / 'config.toml'} is not read: chat-tui reads chat-tui.toml "
        "(rename it, or pass --config)"
    ]
    assert "config.toml is not read" in capsys.readouterr().err


async def test_config_warnings_show_in_the_app() -> None:
    app = offline_app()
    app.settings.warnings.append("chat-tui.toml: unknown setting(s) colour ignored")
    async with app.run_test(size=(100, 30)):
        texts = [line.text for line in app.state.server_room.lines]
        assert "chat-tui.toml: unknown setting(s) colour ignored" in texts
