"""chat-bot's account: its name from the config or a flag, its password from the
environment only, and the bot logging in to a real chat-server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.cli import build_parser, config_from_args
from bot.config import PASSWORD_VARIABLE, BotConfig, ConfigError
from tests.bot.conftest import BotProcess
from tests.protocol.accounts import AccountServer
from tests.protocol.accounts import account_server as account_server  # fixture
from tests.support.fake_openai import FakeOpenAI


def parse(*argv: str, env: dict[str, str] | None = None) -> BotConfig:
    return config_from_args(build_parser().parse_args(list(argv)), env or {})


def test_no_password_no_login() -> None:
    cfg = parse("--server", "h:1")
    assert cfg.login_account is None


def test_password_from_environment_logs_in_as_the_nick() -> None:
    cfg = parse("--server", "h:1", "--nick", "helper", env={PASSWORD_VARIABLE: "pw-123"})
    assert cfg.login_account == "helper" and cfg.account_password == "pw-123"
    assert "pw-123" not in repr(cfg)


def test_account_flag_and_file(tmp_path: Path) -> None:
    env = {PASSWORD_VARIABLE: "pw"}
    cfg = parse("--server", "h:1", "--account", "owner", env=env)
    assert cfg.login_account == "owner"
    conf = tmp_path / "bot.toml"
    conf.write_text('server = "h:1"\naccount = "fromfile"\nsasl_mechanism = "PLAIN"\n')
    cfg = parse("--config", str(conf), env=env)
    assert (cfg.login_account, cfg.sasl_mechanism) == ("fromfile", "PLAIN")


def test_account_without_password_is_an_error() -> None:
    with pytest.raises(ConfigError, match=PASSWORD_VARIABLE):
        parse("--server", "h:1", "--account", "owner")


@pytest.mark.parametrize("key", ["password", "account_password", "sasl-password"])
def test_passwords_do_not_belong_in_files(tmp_path: Path, key: str) -> None:
    conf = tmp_path / "bot.toml"
    conf.write_text(f'server = "h:1"\n{key} = "secret"\n')
    with pytest.raises(ConfigError, match=PASSWORD_VARIABLE):
        parse("--config", str(conf))


def test_bad_account_name_and_mechanism(tmp_path: Path) -> None:
    env = {PASSWORD_VARIABLE: "pw"}
    with pytest.raises(ConfigError, match="account name"):
        parse("--server", "h:1", "--account", "bad name", env=env)
    conf = tmp_path / "bot.toml"
    conf.write_text('server = "h:1"\nsasl_mechanism = "EXTERNAL"\n')
    with pytest.raises(ConfigError, match="SASL mechanism"):
        parse("--config", str(conf), env=env)


def bot_env(password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONUNBUFFERED="1", OPENAI_API_KEY="sk-test-key")
    env[PASSWORD_VARIABLE] = password
    return env


def start(server_address: str, api: FakeOpenAI, password: str) -> BotProcess:
    args = [
        "--server", server_address, "--nick", "helper", "--rooms", "#room",
        "--base-url", api.base_url, "--model", "fake/model", "--send-rate", "50/1",
    ]  # fmt: skip
    return BotProcess(args, bot_env(password))


def test_bot_logs_in_and_keeps_its_nick(
    account_server: AccountServer, fake_api: FakeOpenAI
) -> None:
    server = account_server(helper="bot passphrase")
    bot = start(server.address, fake_api, "bot passphrase")
    try:
        bot.wait_log("logged in as helper")
        bot.wait_log("connected to")
        assert "as helper" in bot.wait_log("connected to")
        bot.wait_log("joined #room")
        assert not any("bot passphrase" in line for line in bot.log)
    finally:
        assert bot.stop() == 0


def test_bot_with_a_wrong_password_says_so(
    account_server: AccountServer, fake_api: FakeOpenAI
) -> None:
    server = account_server(helper="bot passphrase")
    bot = start(server.address, fake_api, "wrong one")
    try:
        failed = bot.wait_log("login as helper failed")
        assert "904" in failed and "wrong one" not in "\n".join(bot.log)
        bot.wait_log("joined #room")  # it goes on, under another nick
        assert "as helper_" in bot.wait_log("connected to")
    finally:
        assert bot.stop() == 0
