"""chat-bot's flags and config file: merged in order, bad input is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser, config_from_args, main
from bot.config import DEFAULT_BASE_URL, DEFAULT_MODEL, ConfigError, Rate, api_key_from_env


def parse(*argv: str, env: dict[str, str] | None = None):
    return config_from_args(build_parser().parse_args(list(argv)), env or {})


def test_defaults() -> None:
    cfg = parse("--server", "127.0.0.1:6667")
    assert cfg.nick == "bot"
    assert cfg.base_url == DEFAULT_BASE_URL
    assert cfg.model == DEFAULT_MODEL
    assert cfg.api_key is None
    assert cfg.rooms == ()


def test_flags() -> None:
    cfg = parse(
        "--server", "127.0.0.1:1,127.0.0.1:2", "--nick", "helper", "--rooms", "#a, b",
        "--model", "m/x", "--base-url", "http://127.0.0.1:9/v1", "--max-lines", "3",
        "--context-lines", "0", "--timeout", "2.5", "--user-rate", "off", "--room-rate", "5/10",
        "--system-prompt", "Be terse.",
    )  # fmt: skip
    assert cfg.rooms == ("#a", "#b")
    assert (cfg.nick, cfg.model, cfg.max_lines, cfg.context_lines) == ("helper", "m/x", 3, 0)
    assert cfg.timeout == 2.5
    assert not cfg.user_rate.enabled
    assert cfg.room_rate == Rate(5, 10.0)
    assert cfg.system_prompt == "Be terse."


def test_key_from_environment_only() -> None:
    assert api_key_from_env({"OPENROUTER_API_KEY": "or", "OPENAI_API_KEY": "oa"}) == "or"
    assert api_key_from_env({"OPENAI_API_KEY": "oa"}) == "oa"
    assert api_key_from_env({"OPENROUTER_API_KEY": "  "}) is None
    cfg = parse("--server", "h:1", env={"OPENAI_API_KEY": "sk-secret-123"})
    assert cfg.api_key == "sk-secret-123"
    assert "sk-secret-123" not in repr(cfg)  # never in logs by accident


def test_config_file_then_flags(tmp_path: Path) -> None:
    (tmp_path / "prompt.txt").write_text("You are a pirate.\n")
    conf = tmp_path / "bot.toml"
    conf.write_text(
        '[bot]\nserver = ["127.0.0.1:1", "127.0.0.1:2"]\nnick = "filebot"\n'
        'rooms = ["#x", "y"]\nmodel = "file/model"\nsystem_prompt = "@prompt.txt"\n'
        'max-lines = 4\nuser_rate = "2/30"\ntimeout = 5\n'
    )
    cfg = parse("--config", str(conf), "--model", "flag/model")
    assert cfg.servers == "127.0.0.1:1,127.0.0.1:2"
    assert cfg.nick == "filebot"
    assert cfg.rooms == ("#x", "#y")
    assert cfg.model == "flag/model"  # the flag wins
    assert cfg.system_prompt == "You are a pirate."
    assert cfg.max_lines == 4 and cfg.timeout == 5.0
    assert cfg.user_rate == Rate(2, 30.0)


ROOMS_TOML = """
[bot]
server = "127.0.0.1:1"
rooms = ["#general", "#Help", "dev"]
model = "global/model"
system_prompt = "You are the global helper."
max_tokens = 300

[room."#HELP"]                 # matched case-insensitively
model = "help/model"
system_prompt = "@help.txt"
max_lines = 12
max-tokens = 900
room_rate = "30/60"

[room.dev]                     # '#' may be left out, as in rooms
system_prompt = "You know the codebase."
context_lines = 0
timeout = 9
"""


def test_room_overrides_fall_back_to_global_settings(tmp_path: Path) -> None:
    (tmp_path / "help.txt").write_text("You are the help desk.\n")
    conf = tmp_path / "bot.toml"
    conf.write_text(ROOMS_TOML)
    cfg = parse("--config", str(conf), "--max-lines", "5")
    assert set(cfg.room_overrides) == {"#HELP", "#dev"}
    help_room = cfg.for_room("#help")
    assert help_room == cfg.for_room("#Help") == cfg.for_room("#HELP")
    assert help_room.model == "help/model"
    assert help_room.system_prompt == "You are the help desk."  # read next to the file
    assert (help_room.max_lines, help_room.max_tokens) == (12, 900)
    assert help_room.room_rate == Rate(30, 60.0)
    assert help_room.timeout == 60.0  # not set for the room: the global value
    dev = cfg.for_room("#DEV")
    assert (dev.model, dev.system_prompt) == ("global/model", "You know the codebase.")
    assert (dev.context_lines, dev.timeout, dev.max_lines) == (0, 9.0, 5)  # 5: the flag
    for other in ("#general", "alice", "#unknown"):  # other rooms and private chats
        s = cfg.for_room(other)
        assert (s.model, s.system_prompt, s.max_tokens) == (
            "global/model", "You are the global helper.", 300,
        )  # fmt: skip
    # A global flag changes the rooms that have no value of their own, not the others.
    cfg = parse("--config", str(conf), "--model", "flag/model")
    assert cfg.for_room("#general").model == "flag/model"
    assert cfg.for_room("#help").model == "help/model"


def test_room_tables_flat_file_and_inside_bot(tmp_path: Path) -> None:
    conf = tmp_path / "bot.toml"
    conf.write_text('server = "h:1"\nrooms = "#a"\n[room."#a"]\nmodel = "flat/a"\n')
    assert parse("--config", str(conf)).for_room("#a").model == "flat/a"
    conf.write_text('[bot]\nserver = "h:1"\nrooms = "#a"\n[bot.room.a]\nmodel = "in/bot"\n')
    assert parse("--config", str(conf)).for_room("#A").model == "in/bot"
    assert parse("--config", str(conf)).room_overrides == {"#a": {"model": "in/bot"}}


BASE = '[bot]\nserver = "h:1"\nrooms = ["#a", "#b"]\n'


@pytest.mark.parametrize(
    ("toml", "argv", "needle"),
    [
        (
            BASE + '[room."#c"]\nmodel = "x"\n',
            [],
            "room #c, which the bot does not join (its rooms: #a, #b)",
        ),
        (
            BASE + '[room."#b"]\nmodel = "x"\n',
            ["--rooms", "#a"],
            "room #b, which the bot does not join",
        ),
        ('server = "h:1"\n[room."#a"]\nmodel = "x"\n', [], "does not join (its rooms: none)"),
        (
            BASE + '[room."#a"]\nseed = 2\n',
            [],
            "room #a: 'seed' is not a setting (a room may set: model",
        ),
        (BASE + '[room."#a"]\ntemperature = 2.5\n', [], "room #a: temperature must be between"),
        (BASE + '[room."#a"]\ntop_p = 0\n', [], "room #a: top_p must be more than 0"),
        (BASE + '[room."#a"]\nnick = "x"\n', [], "room #a: 'nick' cannot be set per room"),
        (BASE + '[room."#a"]\nmax_lines = "many"\n', [], "room #a: max_lines must be an integer"),
        (BASE + '[room."#a"]\nmodel = 4\n', [], "room #a: model must be a string"),
        (BASE + '[room."#a"]\nroom_rate = "fast"\n', [], "room #a: rate 'fast' is not N/SECONDS"),
        (BASE + '[room."#a"]\ntimeout = true\n', [], "room #a: timeout must be a number"),
        (BASE + '[room."#a"]\nmax_lines = 0\n', [], "room #a: max lines must be >= 1"),
        (BASE + '[room."#a"]\ntimeout = 0\n', [], "room #a: timeout must be > 0"),
        (BASE + '[room."#a"]\nsystem_prompt = "@nope.txt"\n', [], "room #a: cannot read"),
        (BASE + '[room."#a"]\napi_key = "sk-x"\n', [], "OPENROUTER_API_KEY"),
        (
            BASE + '[room."#a"]\nmodel = "x"\n[room."#A"]\nmodel = "y"\n',
            [],
            "room #A has two settings tables",
        ),
        (BASE + "[room]\na = 3\n", [], "room.'a' must be a table of settings"),
        (BASE + '[room."a b"]\nmodel = "x"\n', [], "not a valid room name"),
        ('server = "h:1"\nroom = "x"\n', [], "room must be a table of rooms"),
        ('server = "h:1"\n[rooms."#a"]\nmodel = "x"\n', [], 'go in a [room."#name"] table'),
    ],
)
def test_bad_room_settings_are_one_line_at_startup(
    tmp_path: Path, toml: str, argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "bot.toml"
    conf.write_text(toml)
    assert main(["--config", str(conf), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chat-bot: error: ")
    assert needle in err


def test_bad_room_settings_end_the_real_program_in_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "bot.toml"
    conf.write_text(BASE + '[room."#a"]\nmax_tokens = 1.5\n')
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr == f"chat-bot: error: config {conf}: room #a: max_tokens must be an integer\n"
    )


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('server = "h:1"\nnope = 1\n', "unknown setting 'nope'"),
        ('server = "h:1"\napi_key = "sk-x"\n', "OPENROUTER_API_KEY"),
        ('server = "h:1"\nmax_lines = "x"\n', "max_lines must be an integer"),
        ('server = "h:1"\nuser_rate = "fast"\n', "N/SECONDS"),
        ("server = \n", "not valid TOML"),
        ('server = "h:1"\nsystem_prompt = "@missing.txt"\n', "cannot read"),
    ],
)
def test_bad_config_file(tmp_path: Path, toml: str, needle: str) -> None:
    conf = tmp_path / "bot.toml"
    conf.write_text(toml)
    with pytest.raises(ConfigError, match=needle):
        parse("--config", str(conf))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "no server given"),
        (["--server", "h:99999"], "port out of range"),
        (["--server", "h:1", "--nick", "9lives"], "not a valid nick"),
        (["--server", "h:1", "--rooms", "#a b,#c d"], None),  # spaces split rooms: fine
        (["--server", "h:1", "--config", "/no/such/file.toml"], "cannot read config"),
        (["--server", "h:1", "--system-prompt", "@/no/such/prompt"], "cannot read"),
        (["--server", "h:1", "--base-url", "ftp://x"], "must start with http"),
        (["--server", "h:1", "--send-rate", "off"], "send rate cannot be off"),
    ],
)
def test_main_reports_bad_settings(
    argv: list[str], needle: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    if needle is None:
        assert parse(*argv).rooms == ("#a", "#b", "#c", "#d")
        return
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chat-bot: error: ")
    assert needle in err


@pytest.mark.parametrize(
    "argv",
    [["--timeout", "soon"], ["--max-lines", "0"], ["--user-rate", "x/y"], ["--bogus"]],
)
def test_bad_flags_exit_2_with_one_line(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--server", "127.0.0.1:1", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("chat-bot: error: ")


def test_model_parameters_and_command_rate(tmp_path: Path) -> None:
    conf = tmp_path / "bot.toml"
    conf.write_text(
        '[bot]\nserver = "h:1"\nrooms = ["#a", "#b"]\ntemperature = 0.3\ncommand_rate = "5/10"\n'
        '[room."#b"]\ntemperature = 1.2\ntop_p = 0.9\n'
    )
    cfg = parse("--config", str(conf))
    assert cfg.command_rate == Rate(5, 10.0)
    assert (cfg.for_room("#a").temperature, cfg.for_room("#a").top_p) == (0.3, None)
    assert (cfg.for_room("#B").temperature, cfg.for_room("#B").top_p) == (1.2, 0.9)
    flags = parse("--server", "h:1", "--temperature", "0", "--top-p", "0.5")
    assert (flags.temperature, flags.top_p) == (0.0, 0.5)
    assert parse("--server", "h:1").command_rate == Rate(20, 60.0)  # looser than user_rate
    with pytest.raises(ConfigError, match="temperature"):
        parse("--server", "h:1", "--temperature", "3")


def test_tls_settings_from_file_and_flags(tmp_path: Path) -> None:
    """ircs:// servers, a CA to trust and (for throwaway servers) no checking at all."""
    assert parse("--server", "ircs://irc.example.org").tls_verify is True
    cfg = tmp_path / "bot.toml"
    cfg.write_text('server = "ircs://irc.example.org:7000"\ntls_ca = "/etc/ca.pem"\n')
    config = parse("--config", str(cfg))
    assert (config.servers, config.tls_ca, config.tls_verify) == (
        "ircs://irc.example.org:7000", "/etc/ca.pem", True,
    )  # fmt: skip
    assert parse("--config", str(cfg), "--tls-ca", "/other.pem").tls_ca == "/other.pem"
    assert parse("--config", str(cfg), "--no-tls-verify").tls_verify is False
    cfg.write_text('server = "ircs://h"\ntls_verify = "no"\n')
    with pytest.raises(ConfigError, match="tls_verify must be true or false"):
        parse("--config", str(cfg))
