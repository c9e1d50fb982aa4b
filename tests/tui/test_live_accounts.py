"""chat-tui logging in to accounts on a real chat-server (made with ``chat-server account
add``): the account in the status line, a failed login's line, and /register."""

from __future__ import annotations

from chat_protocol.client_types import ServerAddress
from chat_tui.app import ChatApp
from chat_tui.config import Settings
from chat_tui.model import LineKind
from chat_tui.session import ChatSession
from chat_tui.widgets.chat_input import ChatInput
from chat_tui.widgets.status_line import StatusLine
from tests.protocol.accounts import AccountServer
from tests.protocol.accounts import account_server as account_server  # fixture
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, joined, wait_until


def account_app(
    server: ServerProcess, nick: str, account: str | None = None, password: str | None = None
) -> ChatApp:
    settings = Settings(
        nick=nick,
        servers=[ServerAddress(server.host, server.port)],
        rooms=["#general"],
        account=account,
        account_password=password,
    )
    return ChatApp(settings, ChatSession(settings))


def server_lines(app: ChatApp, kind: LineKind) -> list[str]:
    return [line.text for line in app.state.server_room.lines if line.kind == kind]


async def test_logged_in_account_is_in_the_status_line(account_server: AccountServer) -> None:
    server = account_server(alice="correct horse")
    app = account_app(server, "alice", "alice", "correct horse")
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        await wait_until(pilot, lambda: app.state.connection.account == "alice", "logged in")
        status = app.query_one(StatusLine)
        await wait_until(pilot, lambda: status.account == "alice", "status line")
        shown = str(status.render())
        assert "alice (logged in)" in shown and app.state.nick == "alice"
        assert "logged in as alice" in server_lines(app, LineKind.INFO)
        assert not server_lines(app, LineKind.ERROR)


async def test_wrong_password_is_one_clear_line(account_server: AccountServer) -> None:
    server = account_server(alice="correct horse")
    app = account_app(server, "alice", "alice", "not it")
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        errors = [t for t in server_lines(app, LineKind.ERROR) if t.startswith("login as")]
        assert len(errors) == 1, errors
        assert errors[0].startswith("login as alice failed (SCRAM-SHA-256, 904): ")
        assert errors[0].endswith(" — going on without it") and "not it" not in errors[0]
        assert app.state.connection.account is None and app.state.nick != "alice"
        assert "logged in" not in str(app.query_one(StatusLine).render())


async def test_register_from_the_input_line(account_server: AccountServer) -> None:
    server = account_server()
    app = account_app(server, "newbie")
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        chat_input = app.query_one(ChatInput)
        chat_input.value = "/register a long passphrase"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.state.connection.account == "newbie", "registered")
        await wait_until(
            pilot,
            lambda: any(
                t.startswith("registered account newbie") for t in server_lines(app, LineKind.INFO)
            ),
            "registered line",
        )
        assert not any("passphrase" in line for line in chat_input.sent)  # not recallable
        assert app.session is not None and app.session.client.config.account == "newbie"
        status = app.query_one(StatusLine)
        await wait_until(pilot, lambda: "(logged in)" in str(status.render()), "status line")
        chat_input.value = "/register another one"
        await pilot.press("enter")
        errors = server_lines(app, LineKind.ERROR) + [
            line.text for line in app.state.current_room.lines if line.kind == LineKind.ERROR
        ]
        assert any("already logged in as newbie" in t for t in errors)
