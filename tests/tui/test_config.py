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
        write(tmp_path, GOOD), servers="10.0.0.1:1", nick="bob", password="pw", rooms="#x,y"
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


# -- one declaration per setting ---------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_tui_section() -> str:
    text = README.read_text()
    return text[text.index("## chat-tui") : text.index("## chat-bot")]


def test_the_readme_example_config_is_all_known_settings(tmp_path: Path) -> None:
    """The settings the README documents are the ones declared (no warnings)."""
    section = readme_tui_section()
    example = section[section.index("```toml") + len("```toml") : section.rindex("```")]
    settings = load(write(tmp_path, example))
    assert settings.warnings == []
    assert settings.highlight_words == ["deploy", "release"]
    assert settings.keybindings == {"next_room": "ctrl+n", "toggle_members": "f2"}


def test_every_documented_flag_comes_from_the_schema() -> None:
    from chat_tui.cli import build_parser
    from chat_tui.config import SCHEMA

    documented = {
        "--server", "--nick", "--password", "--join", "--config", "--account", "--tls-ca",
        "--no-tls-verify",
    }  # fmt: skip
    options = set(build_parser()._option_string_actions)
    assert documented <= options
    assert {row.flag for row in SCHEMA if row.flag} == documented - {"--config"}


def test_each_setting_has_one_row_with_help_and_a_file_key() -> None:
    from chat_tui.config import SCHEMA, Settings

    names = [row.name for row in SCHEMA]
    assert len(names) == len(set(names))
    assert set(names) == set(Settings.__dataclass_fields__) - {"warnings"}
    keys = [key for row in SCHEMA for key in row.keys]
    assert len(keys) == len(set(keys)) and all(row.help and row.keys for row in SCHEMA)
    assert [row.env for row in SCHEMA if row.env] == ["CHAT_TUI_PASSWORD"]


@pytest.mark.parametrize("key", ["send_typing", "show_members", "notify", "bell", "tls_verify"])
def test_true_or_false_settings_take_only_true_or_false(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} must be true or false"):
        load(write(tmp_path, f'{key} = "no"\n'))


def test_flags_by_setting_name(tmp_path: Path) -> None:
    settings = load(tmp_path / "none.toml", tls_ca="/ca.pem", tls_verify=False, rooms="a")
    assert (settings.tls_ca, settings.tls_verify, settings.rooms) == ("/ca.pem", False, ["#a"])
    assert load(tmp_path / "none.toml", tls_verify=None).tls_verify is True
