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
