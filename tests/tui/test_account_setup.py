"""Accounts in chat-tui without a server: the config file and flags, where the password
comes from, /register, the status line and the login-failed line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chat_protocol import Message
from chat_protocol.client_types import AccountChanged, LoginFailed
from chat_tui import commands as c
from chat_tui.cli import PASSWORD_VARIABLE, NoPassword, account_password
from chat_tui.completion import candidates
from chat_tui.config import ConfigError, Settings, load
from chat_tui.connection_events import login_failed_text
from chat_tui.model import LineKind
from chat_tui.state import ChatState
from chat_tui.widgets.status_line import StatusLine
from tests.tui.scenes import offline_app


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "chat-tui.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


# -- config file and flags ---------------------------------------------------------------


def test_account_and_its_password_from_the_file(tmp_path: Path) -> None:
    settings = load(write(tmp_path, 'account = "alice"\npassword = "s3cret"\n'))
    assert (settings.account, settings.account_password) == ("alice", "s3cret")
    assert settings.password is None  # not sent as PASS
    assert settings.nick == "alice"  # the account's nick, unless another is given
    assert "s3cret" not in repr(settings)


def test_password_without_account_is_still_the_servers(tmp_path: Path) -> None:
    settings = load(write(tmp_path, 'password = "serverpw"\n'))
    assert settings.password == "serverpw" and settings.account_password is None


def test_server_password_next_to_an_account(tmp_path: Path) -> None:
    text = 'nick = "al"\naccount = "alice"\npassword = "mine"\nserver_password = "theirs"\n'
    settings = load(write(tmp_path, text))
    assert (settings.nick, settings.account, settings.account_password) == ("al", "alice", "mine")
    assert settings.password == "theirs"


def test_account_flag_makes_the_files_password_the_accounts(tmp_path: Path) -> None:
    settings = load(write(tmp_path, 'password = "mine"\n'), account="alice")
    assert (settings.account, settings.account_password, settings.password) == (
        "alice",
        "mine",
        None,
    )
    assert settings.nick == "alice"
    settings = load(write(tmp_path, 'nick = "al"\n'), account="alice", nick="ally")
    assert (settings.nick, settings.account_password) == ("ally", None)


def test_sasl_mechanism_setting(tmp_path: Path) -> None:
    assert load(write(tmp_path, 'sasl_mechanism = "plain"\n')).sasl_mechanism == "PLAIN"
    with pytest.raises(ConfigError, match="sasl_mechanism"):
        load(write(tmp_path, 'sasl_mechanism = "EXTERNAL"\n'))
    with pytest.raises(ConfigError, match="account"):
        load(write(tmp_path, 'account = "bad name"\n'))


def test_a_password_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    settings = load(write(tmp_path, 'account = "a"\npassword = "x"\n', mode=0o644))
    assert any("chmod 600" in w for w in settings.warnings)
    settings = load(write(tmp_path, 'account = "a"\npassword = "x"\n', mode=0o600))
    assert not any("chmod" in w for w in settings.warnings)


# -- where the password comes from ----------------------------------------------------------


def with_account(password: str | None = None) -> Settings:
    return Settings(nick="alice", account="alice", account_password=password)


def never_asked(prompt: str) -> str:
    raise AssertionError("must not prompt")


def test_password_from_environment_first() -> None:
    env = {PASSWORD_VARIABLE: "from-env"}
    assert account_password(with_account("from-file"), env, never_asked) == "from-env"


def test_password_from_file_then() -> None:
    assert account_password(with_account("from-file"), {}, never_asked) == "from-file"


def test_password_asked_last() -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    assert account_password(with_account(), {}, ask) == "typed"
    assert prompts == ["password for account alice: "]


def test_no_way_to_get_a_password() -> None:
    with pytest.raises(NoPassword, match=PASSWORD_VARIABLE):
        account_password(with_account(), {}, never_asked, interactive=False)
    with pytest.raises(NoPassword):
        account_password(with_account(), {}, lambda prompt: "")

    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt

    with pytest.raises(NoPassword):
        account_password(with_account(), {}, interrupted)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def test_cli_without_a_password_and_no_terminal_says_how(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_VARIABLE}
    empty = write(tmp_path, "")
    done = run_cli("--config", str(empty), "--server", "127.0.0.1:1", "--account", "alice", env=env)
    assert done.returncode == 2
    assert PASSWORD_VARIABLE in done.stderr and done.stderr.count("\n") == 1


def test_cli_help_has_account_and_no_account_password_flag() -> None:
    done = run_cli("--help", env=dict(os.environ))
    assert "--account" in done.stdout and PASSWORD_VARIABLE in done.stdout
    assert "not an account's" in done.stdout  # --password is the server's


# -- /register ------------------------------------------------------------------------------


@pytest.fixture
def state() -> ChatState:
    return ChatState("alice")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/register s3cret", [c.RegisterAccount("s3cret")]),
        ("/register two words", [c.RegisterAccount("two words")]),
        ("/register me@example.org s3cret", [c.RegisterAccount("s3cret", "me@example.org")]),
        ("/REGISTER  s3cret ", [c.RegisterAccount("s3cret")]),
    ],
)
def test_register_command(state: ChatState, line: str, expected: list[c.Effect]) -> None:
    assert c.run(line, state) == expected


def test_register_needs_a_password(state: ChatState) -> None:
    [note] = c.run("/register", state)
    assert isinstance(note, c.Note) and note.kind == LineKind.ERROR and "usage" in note.text


def test_register_when_logged_in(state: ChatState) -> None:
    state.connection.account = "alice"
    [note] = c.run("/register pw", state)
    assert isinstance(note, c.Note) and "already logged in as alice" in note.text


def test_register_password_is_not_in_repr() -> None:
    assert "s3cret" not in repr(c.RegisterAccount("s3cret", "me@example.org"))


def test_register_is_secret_and_completed() -> None:
    assert c.holds_secret("/register pw") and c.holds_secret("/REGISTER pw")
    assert not c.holds_secret("/join #a") and not c.holds_secret("register pw")
    assert candidates("/reg", 4, [], []) == ["/register "]
    assert any(spec.name == "register" for spec in c.COMMANDS.values())


# -- what the user sees ---------------------------------------------------------------------


def test_login_failed_text() -> None:
    event = LoginFailed("alice", "SASL authentication failed", "SCRAM-SHA-256", "904")
    assert login_failed_text(event) == (
        "login as alice failed (SCRAM-SHA-256, 904): SASL authentication failed"
        " — going on without it"
    )
    bare = LoginFailed("alice", "the server does not offer SASL", continuing=False)
    assert login_failed_text(bare) == (
        "login as alice failed: the server does not offer SASL — not connecting without it"
    )


async def test_status_line_shows_the_account_and_login_failure_goes_to_the_server_tab() -> None:
    app = offline_app()
    async with app.run_test(size=(120, 30)) as pilot:
        app.apply_message(Message.parse(":irc.example.net 001 alice :Welcome"))
        app.state.connection.state = "connected"
        app.connection_events.client_event(AccountChanged("alice"))
        await pilot.pause()
        status = app.query_one(StatusLine)
        assert status.account == "alice"
        assert "alice (logged in)" in str(status.render())
        app.connection_events.client_event(AccountChanged("other"))
        await pilot.pause()
        assert "(logged in as other)" in str(status.render())
        failed = LoginFailed("alice", "SASL authentication failed", "PLAIN", "904")
        app.connection_events.client_event(failed)
        await pilot.pause()
        lines = [ln for ln in app.state.server_room.lines if ln.kind == LineKind.ERROR]
        assert lines[-1].text.startswith("login as alice failed (PLAIN, 904)")
        app.connection_events.client_event(AccountChanged(None))
        await pilot.pause()
        assert status.account is None and "logged in" not in str(status.render())


async def test_a_password_being_typed_is_not_on_screen() -> None:
    from chat_tui.widgets.chat_input import ChatInput

    app = offline_app()
    async with app.run_test(size=(120, 30)) as pilot:
        field = app.query_one(ChatInput)
        field.focus()
        await pilot.press(*"/register hunter22")
        await pilot.pause()
        assert field.value == "/register hunter22" and field.password
        assert "hunter22" not in str(field.render())
        field.value = "/join #a"
        await pilot.pause()
        assert not field.password  # an ordinary line is shown again


async def test_a_reclaimed_nick_is_said() -> None:
    from chat_protocol.client_types import NickReclaimed

    app = offline_app()
    async with app.run_test(size=(120, 30)) as pilot:
        app.connection_events.client_event(NickReclaimed("alice", "alice_"))
        await pilot.pause()
        texts = [ln.text for room in app.state.rooms.values() for ln in room.lines]
        assert any("you are alice again (were alice_)" in t for t in texts)
