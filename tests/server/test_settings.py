"""The settings schema: one table that the config file, the flags and the checks all read.

Pure tests (no server started): ``make_config`` and ``load_config_file`` directly, and
``cli.main`` only where it stops before starting anything.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from pathlib import Path

import pytest

from chat_server.cli import build_parser, history_error, main, make_config
from chat_server.config import SCHEMA, ConfigError, ServerConfig, build_config, load_config_file

README = Path(__file__).resolve().parents[2] / "README.md"


def config_from(*argv: str) -> ServerConfig:
    return make_config(build_parser().parse_args(list(argv)))


def write(tmp_path: Path, text: str) -> Path:
    conf = tmp_path / "c.toml"
    conf.write_text(text)
    return conf


def refused_flags(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one stderr line of flags the parser refuses (exit 2, as argparse exits)."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(list(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("chat-server: error: "), err
    return err


# -- the schema ------------------------------------------------------------------------


def test_schema_describes_every_field_once() -> None:
    names = [row.name for row in SCHEMA]
    assert names == [f.name for f in dataclasses.fields(ServerConfig)]
    assert len({row.flag_name for row in SCHEMA}) == len(SCHEMA)
    assert all(row.help for row in SCHEMA)


def test_new_flow_control_settings_and_defaults() -> None:
    config = ServerConfig()
    assert config.sendq_max == 8 * 1024 * 1024
    assert config.sendq_soft == 256 * 1024
    assert config.sendq_soft_seconds == 10.0
    assert config.read_budget == 16384
    assert config.recvq_max >= 8191 + 512


@pytest.mark.parametrize(
    ("argv", "attr", "value"),
    [
        (["--host", "::1"], "host", "::1"),
        (["--port", "6697"], "port", 6697),
        (["--history-db", "/tmp/h.db"], "history_db", "/tmp/h.db"),
        (["--server-name", "irc.example.org"], "server_name", "irc.example.org"),
        (["--password", "sesame"], "password", "sesame"),
        (["--oper", "root:pw", "--oper", "ops:x:y"], "opers", {"root": "pw", "ops": "x:y"}),
        (["--no-flood-limit"], "flood_limit", False),
        (["--max-clients", "10"], "max_clients", 10),
        (["--history-on-join", "0"], "history_on_join", 0),
        (["--ping-interval", "1"], "ping_interval", 1.0),
        (["--ping-timeout", "2.5"], "ping_timeout", 2.5),
        (["--registration-timeout", "1"], "registration_timeout", 1.0),
        (["--sendq", "65536"], "sendq_max", 65536),
        (
            ["--redis", "redis://127.0.0.1:6379/0", "--node-id", "a"],
            "redis",
            "redis://127.0.0.1:6379/0",
        ),
        (["--redis", "unix:///run/redis.sock", "--node-id", "n-1"], "node_id", "n-1"),
        (["--log-level", "debug"], "log_level", "DEBUG"),
        # flags the schema generates
        (["--sendq-soft", "4096"], "sendq_soft", 4096),
        (["--sendq-soft-seconds", "0.5"], "sendq_soft_seconds", 0.5),
        (["--read-budget", "512"], "read_budget", 512),
        (["--flood-rate", "0.5"], "flood_rate", 0.5),
        (["--flood-burst", "1"], "flood_burst", 1),
        (["--recvq-max", "8704"], "recvq_max", 8704),
        (["--max-per-address", "0"], "max_per_address", 0),
        (["--nick-len", "64"], "nick_len", 64),
    ],
)
def test_flags_parse(argv: list[str], attr: str, value: object) -> None:
    config = config_from(*argv)
    assert getattr(config, attr) == value
    assert type(getattr(config, attr)) is type(value)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--port", "70000"], "between 0 and 65535"),
        (["--port", "http"], "whole number"),
        (["--max-clients", "0"], "--max-clients"),
        (["--ping-timeout", "-1"], "greater than 0"),
        (["--ping-interval", "0"], "--ping-interval"),
        (["--registration-timeout", "nan"], "got nan"),
        (["--flood-rate", "0"], "--flood-rate"),
        (["--flood-burst", "0"], "between 1 and 100000"),
        (["--sendq", "1000"], "between 65536"),
        (["--sendq-soft", "100"], "--sendq-soft"),
        (["--sendq-soft-seconds", "0"], "between 0.1 and 3600"),
        (["--read-budget", "2000000"], "--read-budget"),
        (["--recvq-max", "8192"], "--recvq-max"),
        (["--nick-len", "8"], "between 9 and 64"),
        (["--chathistory-max", "0"], "--chathistory-max"),
        (["--log-level", "loud"], "DEBUG, INFO, WARNING, ERROR"),
        (["--node-id", "a b"], "--node-id"),
        (["--node-id", "a:b"], "--node-id"),
        (["--oper", "nopassword"], "NAME:PASS"),
        (["--redis", "notaurl"], "redis://, rediss:// or unix://"),
        (["--redis", "http://127.0.0.1:6379"], "--redis"),
        (["--redis", "redis://127.0.0.1:99999/0"], "--redis"),
        (["--redis", "redis://127.0.0.1:6379/zero"], "database number"),
    ],
)
def test_bad_flag_values_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert needle in refused_flags(capsys, *argv)


def test_redis_url_password_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused_flags(capsys, "--redis", "redis://:hunter2@127.0.0.1:6379/db")
    assert "hunter2" not in err


# -- the config file -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("flood_rate = 0\n", "flood_rate must be greater than 0"),
        ("max_clients = -5\n", "max_clients must be between 1"),
        ("ping_timeout = -1.0\n", "ping_timeout"),
        ('port = "6667"\n', "port must be a whole number, not a string"),
        ("port = 6667.5\n", "port must be a whole number"),
        ("max_clients = true\n", "max_clients must be a number, not a boolean"),
        ("flood_limit = 1\n", "flood_limit must be true or false"),
        ('opers = "admin"\n', "opers must be a table of strings"),
        ('log_level = "chatty"\n', "log_level must be one of"),
        ('redis = "notaurl"\nnode_id = "a"\n', "redis must be a redis://"),
        ("recvq_max = 4096\n", "recvq_max must be between 8704"),
        ("history_on_join = -1\n", "history_on_join must be at least 0"),
        ("[server]\ncolour = 'blue'\n", "unknown setting 'colour'"),
        ("port = 1\n[server]\nport = 2\n", "'port' is outside the [server] table"),
        ("server = 5\n", "[server] must be a table"),
    ],
)
def test_bad_file_values_name_the_setting(tmp_path: Path, text: str, needle: str) -> None:
    conf = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        make_config(build_parser().parse_args(["--config", str(conf)]))
    assert needle in str(exc.value)
    assert str(conf) in str(exc.value)


def test_main_reports_file_errors_as_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = write(tmp_path, "[server]\nflood_rate = 0\n")
    assert main(["--config", str(conf)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chat-server: error: ")
    assert "flood_rate" in err


def test_file_accepts_top_level_keys_dashes_and_ints_for_floats(tmp_path: Path) -> None:
    conf = write(tmp_path, 'ping-timeout = 5\nlog_level = "warning"\n')
    config = config_from("--config", str(conf))
    assert config.ping_timeout == 5.0 and isinstance(config.ping_timeout, float)
    assert config.log_level == "WARNING"


def test_other_programs_tables_beside_server_are_left_alone(tmp_path: Path) -> None:
    conf = write(tmp_path, '[server]\nport = 7000\n[chat-tui]\nnick = "x"\n')
    assert config_from("--config", str(conf)).port == 7000


def test_flag_wins_over_file(tmp_path: Path) -> None:
    conf = write(
        tmp_path,
        '[server]\nport = 7000\nmax_clients = 50\nsendq_soft = 8192\nopers = { admin = "a" }\n',
    )
    config = config_from("--config", str(conf), "--port", "7001", "--oper", "root:r")
    assert config.port == 7001  # the flag
    assert config.max_clients == 50  # the file
    assert config.sendq_soft == 8192  # the file
    assert config.opers == {"admin": "a", "root": "r"}  # --oper adds to the file's


def test_soft_sendq_over_hard_is_refused(tmp_path: Path) -> None:
    conf = write(tmp_path, "[server]\nsendq_max = 100000\nsendq_soft = 200000\n")
    with pytest.raises(ConfigError, match=r"sendq_soft \(200000\) must not exceed sendq_max"):
        config_from("--config", str(conf))
    with pytest.raises(ConfigError, match="sendq_soft"):
        config_from("--sendq", "65536", "--sendq-soft", "65537")


def test_unset_soft_sendq_follows_a_small_hard_limit() -> None:
    """``--sendq 65536`` alone (as scripts pass it) still starts: the soft limit follows."""
    config = config_from("--sendq", "65536")
    assert config.sendq_max == config.sendq_soft == 65536


def test_history_on_join_is_bounded_by_chathistory_max() -> None:
    with pytest.raises(ConfigError, match="history_on_join"):
        config_from("--chathistory-max", "10", "--history-on-join", "20")
    assert config_from("--chathistory-max", "10").history_on_join == 10


def test_redis_needs_node_id() -> None:
    with pytest.raises(ConfigError, match="--redis needs --node-id"):
        config_from("--redis", "redis://127.0.0.1:6379/0")


def test_build_config_checks_values_given_in_code() -> None:
    with pytest.raises(ConfigError, match="flood_rate"):
        build_config({"flood_rate": 0})
    assert build_config({"flood_rate": 3}).flood_rate == 3.0


def test_readme_config_example_is_valid(tmp_path: Path) -> None:
    text = README.read_text()
    section = text.split("## chat-server", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert blocks, "the chat-server section of README.md has a TOML example"
    for block in blocks:
        conf = write(tmp_path, block)
        assert load_config_file(conf)
        config_from("--config", str(conf))


# -- history errors --------------------------------------------------------------------


def test_history_error_names_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    already = Exception(f"cannot open history database {path}: file is not a database")
    assert history_error(path, already) == str(already)
    plain = history_error(path, sqlite3.DatabaseError("disk I/O error"))
    assert plain == f"cannot open history database {path}: disk I/O error"
    blocked = NotADirectoryError(20, "Not a directory", str(tmp_path / "file"))
    assert history_error(path, blocked).count(str(path)) == 1
