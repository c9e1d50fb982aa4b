"""Rooms and conversations that come back: ``state.json`` rooms rejoined at the next
start, and direct conversations reopened from ``CHATHISTORY TARGETS`` on connect."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chat_protocol.client_types import ServerAddress
from chat_tui import cli, locations
from chat_tui.app import ChatApp
from chat_tui.config import Settings
from chat_tui.remembered import LOCAL, RememberedRooms
from chat_tui.session import ChatSession
from chat_tui.state import ChatState
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, joined, live_app, texts, wait_until

Connect = Callable[..., RawClient]


def test_missing_or_broken_file_remembers_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert RememberedRooms(path, "a").load() == []
    path.write_text("{not json")
    assert RememberedRooms(path, "a").load() == []
    path.write_text('{"rooms": {"a": "#not-a-list"}}')
    assert RememberedRooms(path, "a").load() == []


def test_each_server_keeps_its_own_list(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "state.json"
    a, b = RememberedRooms(path, "a:6667"), RememberedRooms(path, LOCAL)
    assert a.save(["#one", "#two"])
    assert b.save(["#general"])
    assert not a.save(["#one", "#two"])  # unchanged: not written again
    assert RememberedRooms(path, "a:6667").load() == ["#one", "#two"]
    assert json.loads(path.read_text()) == {
        "version": 1,
        "rooms": {"a:6667": ["#one", "#two"], "local": ["#general"]},
    }
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    ("argv", "rooms"),
    [
        ([], ["#dev", "#random"]),  # zero setup: the local server's rooms come back
        (["--server", "127.0.0.1:7000"], ["#far"]),
        (["--server", "127.0.0.1:7001"], []),  # nothing kept for this server
        (["--join", "#asked"], ["#asked"]),  # --join wins
    ],
)
def test_cli_joins_remembered_rooms_only_when_none_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], rooms: list[str]
) -> None:
    path = tmp_path / "state.json"
    monkeypatch.setattr(locations, "state_file", lambda: path)
    RememberedRooms(path, LOCAL).save(["#dev", "#random"])
    RememberedRooms(path, "127.0.0.1:7000").save(["#far"])
    settings = cli.settings_from_args(["--config", str(write_config(tmp_path)), *argv])
    remembered = cli.remembered_rooms(settings)
    assert settings.rooms == rooms
    assert remembered.key == (LOCAL if not settings.servers else str(settings.servers[0]))


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "chat-tui.toml"
    path.write_text('nick = "alice"\n')
    return path


def test_open_conversations_skips_rooms_self_and_ignored() -> None:
    state = ChatState("alice", ignore=["eve"])
    update = state.open_conversations(["#general", "bob", "alice", "eve", "carol"])
    assert update.sidebar
    assert [r.name for r in state.ordered_rooms() if r.is_query] == ["bob", "carol"]
    assert not state.open_conversations(["bob"]).sidebar


async def type_line(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one("#input").value = text
    await pilot.press("enter")


async def test_joined_and_left_rooms_are_written(server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    settings = Settings(
        nick="alice", servers=[ServerAddress(server.host, server.port)], rooms=["#a"]
    )
    remembered = RememberedRooms(path, server.address)
    app = ChatApp(settings, ChatSession(settings), remembered=remembered)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#a")
        await wait_until(pilot, lambda: RememberedRooms(path, server.address).load(), "file")
        assert RememberedRooms(path, server.address).load() == ["#a"]
        await type_line(pilot, "/join #b")
        await joined(pilot, app, "#b")
        await pilot.pause()
        assert RememberedRooms(path, server.address).load() == ["#a", "#b"]
        await type_line(pilot, "/part #a bye")
        await wait_until(pilot, lambda: app.state.room("#a") is None, "PART of #a")
        await pilot.pause()
        assert RememberedRooms(path, server.address).load() == ["#b"]


async def test_direct_conversations_come_back_from_targets(
    server: ServerProcess, connect: Connect
) -> None:
    bob = connect("bob")
    app = live_app(server, rooms=("#general",))
    asked: list[bool] = []
    assert app.session is not None
    session = app.session
    real = session.load_targets

    async def spy(post):  # type: ignore[no-untyped-def]
        asked.append(True)
        await real(post)

    session.load_targets = spy  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        await wait_until(pilot, lambda: asked, "TARGETS asked on connect")
        bob.send("PRIVMSG alice :psst, remember me?")
        await wait_until(pilot, lambda: app.state.room("bob") is not None, "DM from bob")
        await pilot.press("alt+2")
        await type_line(pilot, "/close")
        await pilot.pause()
        assert app.state.room("bob") is None
        found = await session.client.history_targets(datetime(2020, 1, 1, tzinfo=UTC))
        assert "bob" in [name for name, _ in found]
        await real(app.post_message)  # what a connect does
        await wait_until(pilot, lambda: app.state.room("bob") is not None, "bob reopened")
        room = app.state.room("bob")
        assert room is not None and room.lines == []
        await pilot.press("alt+2")  # opening it loads its history
        await wait_until(
            pilot, lambda: "psst, remember me?" in texts(app, "bob"), "history of the DM"
        )
