"""The client against a real chat-server: Pilot drives keys, a RawClient plays the other user."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from chat_tui.model import LineKind
from chat_tui.screens.room_list import RoomListScreen
from chat_tui.screens.room_switcher import RoomSwitcher
from chat_tui.widgets.message_pane import MessagePane
from chat_tui.widgets.room_sidebar import RoomSidebar
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, in_thread, joined, live_app, texts, wait_until

Connect = Callable[..., RawClient]


async def type_line(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one("#input").value = text
    await pilot.press("enter")


async def test_join_send_and_receive(server: ServerProcess, connect: Connect) -> None:
    bob = connect("bob")
    bob.join("#general")
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        assert app.state.current == "#general"
        await in_thread(bob.expect, "JOIN", pattern="alice")
        await type_line(pilot, "hello bob")
        msg = await in_thread(bob.expect, "PRIVMSG", pattern="hello bob")
        assert msg.nick == "alice"  # type: ignore[union-attr]
        await wait_until(pilot, lambda: "hello bob" in texts(app, "#general"), "own echo")
        bob.send("PRIVMSG #general :hi alice, \x02welcome\x02")
        await wait_until(pilot, lambda: any("hi alice" in t for t in texts(app, "#general")), "bob")
        last = app.state.room("#general").lines[-1]  # type: ignore[union-attr]
        assert last.nick == "bob" and last.mention
        assert "bob" in [m.nick for m in app.state.roster.members("#general")]
        await type_line(pilot, "/join #second")
        await joined(pilot, app, "#second")
        await wait_until(pilot, lambda: app.state.current == "#second", "focus on /join")


async def test_switch_rooms_with_each_key(server: ServerProcess) -> None:
    app = live_app(server, rooms=("#a", "#b", "#c"))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#a", "#b", "#c")
        app._switch("#a")
        await pilot.press("ctrl+n")
        assert app.state.current == "#b"
        await pilot.press("ctrl+p")
        assert app.state.current == "#a"
        await pilot.press("ctrl+p")  # wraps to the server buffer at the end
        assert app.state.current_room.is_server
        await pilot.press("alt+3")
        assert app.state.current == "#c"
        await pilot.press("ctrl+k")
        await wait_until(pilot, lambda: isinstance(app.screen, RoomSwitcher), "switcher")
        await pilot.press("b", "enter")
        await wait_until(pilot, lambda: app.state.current == "#b", "fuzzy switch to #b")
        assert not isinstance(app.screen, RoomSwitcher)
        await pilot.click(RoomSidebar, offset=(3, 0))
        assert app.state.current == "#a"
        # Ctrl+P is previous room, not the command palette.
        await pilot.press("ctrl+p")
        assert app.screen is app.screen_stack[0]


async def test_unread_counts_rise_and_clear_mentions_first(
    server: ServerProcess, connect: Connect
) -> None:
    app = live_app(server, rooms=("#a", "#b", "#c"))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#a", "#b", "#c")
        app._switch("#a")
        bob = connect("bob")
        for room in ("#b", "#c"):
            bob.join(room)
        bob.send("PRIVMSG #b :one")
        bob.send("PRIVMSG #b :two")
        bob.send("PRIVMSG #c :alice: look here")
        b, c = app.state.room("#b"), app.state.room("#c")
        assert b is not None and c is not None
        await wait_until(pilot, lambda: b.unread == 2 and c.unread == 1, "unread counts")
        assert (b.mentions, c.mentions) == (0, 1)
        sidebar = app.query_one(RoomSidebar)
        entry = {e.key: e for e in sidebar.entries}
        assert (entry["#b"].unread, entry["#c"].mentions) == (2, 1)
        await pilot.press("alt+a")
        assert app.state.current == "#c" and c.unread == 0  # mention first
        await pilot.press("alt+a")
        assert app.state.current == "#b" and b.unread == 0
        bob.send("PRIVMSG alice :a secret")
        await wait_until(pilot, lambda: app.state.room("bob") is not None, "direct conversation")
        assert app.state.room("bob").mentions == 1  # type: ignore[union-attr]


async def test_list_screen_and_enter_joins(server: ServerProcess, connect: Connect) -> None:
    bob = connect("bob")
    bob.join("#lobby")
    bob.send("TOPIC #lobby :Say hello")
    bob.expect("TOPIC")
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        await type_line(pilot, "/list")
        await wait_until(pilot, lambda: isinstance(app.screen, RoomListScreen), "list screen")
        screen = app.screen
        assert isinstance(screen, RoomListScreen)
        await wait_until(pilot, lambda: screen.done and len(screen.entries) >= 2, "LIST reply")
        lobby = next(e for e in screen.entries if e.name == "#lobby")
        assert (lobby.users, lobby.topic) == (1, "Say hello")
        await pilot.press("l", "o", "b")
        await pilot.press("enter")
        await joined(pilot, app, "#lobby")
        await wait_until(pilot, lambda: app.state.current == "#lobby", "switched to #lobby")
        assert app.state.roster.topic(app.state.current_room.name) == "Say hello"


async def test_history_loads_when_scrolling_up(
    server_factory: Callable[..., ServerProcess], connect: Connect, tmp_path: Path
) -> None:
    server = server_factory(flood_limit=False)
    bob = RawClient(server.host, server.port)
    try:
        bob.register("bob")
        bob.join("#hist")
        for i in range(250):
            bob.send(f"PRIVMSG #hist :message {i:03d}")
        bob.send("PING done")
        bob.expect("PONG", timeout=10)
        app = live_app(server, rooms=("#hist",))
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app, "#hist")
            room = app.state.room("#hist")
            assert room is not None

            def count() -> int:
                return sum(1 for t in texts(app, "#hist") if t.startswith("message "))

            await wait_until(pilot, lambda: count() >= 50, "recent history")
            assert count() < 250  # not everything at once
            pane = app.query_one(MessagePane)
            for _ in range(40):
                if room.history_exhausted:
                    break
                await wait_until(pilot, lambda: not room.loading_history, "page loaded")
                await pilot.press("pageup")
                pane.scroll_home(animate=False, immediate=True)
                await pilot.pause(0.05)
            await wait_until(pilot, lambda: room.history_exhausted, "beginning of history")
            shown = [t for t in texts(app, "#hist") if t.startswith("message ")]
            assert shown == [f"message {i:03d}" for i in range(250)]  # all, in order, no dupes
            assert pane.scroll_y < pane.max_scroll_y  # the reader's place was kept, not bottom
    finally:
        bob.close()


async def test_reconnect_after_server_restart(server: ServerProcess, connect: Connect) -> None:
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        # Offline is watched for while the server restarts: a restart takes ~0.4 s and the
        # client is back ~0.5 s after the drop, so waiting for the restart first can miss it.
        restart = asyncio.ensure_future(in_thread(server.restart))
        await wait_until(pilot, lambda: app.state.connection.state == "offline", "offline")
        await type_line(pilot, "typed while offline")
        await restart
        state = app.state
        await wait_until(pilot, lambda: state.connection.state == "connected", "reconnected", 30)
        await joined(pilot, app, "#general")
        assert app.query_one("#input").value == "typed while offline"  # type: ignore[attr-defined]
        bob = connect("bob")
        bob.join("#general")
        bob.send("PRIVMSG #general :after the restart")
        await wait_until(pilot, lambda: "after the restart" in texts(app, "#general"), "new msg")
        errors = [ln for ln in state.server_room.lines if ln.kind == LineKind.ERROR]
        errors += [ln for ln in state.room("#general").lines if ln.kind == LineKind.ERROR]  # type: ignore[union-attr]
        assert any("disconnected" in ln.text for ln in errors)


async def test_bad_commands_get_one_line_and_nothing_breaks(server: ServerProcess) -> None:
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        for bad in ("/frobnicate", "/join", "/nick 9x", "/msg", "/join #a:b"):
            await type_line(pilot, bad)
        errors = [
            ln.text
            for ln in app.state.room("#general").lines  # type: ignore[union-attr]
            if ln.kind == LineKind.ERROR
        ]
        assert len(errors) == 5 and all("\n" not in e for e in errors)
        await type_line(pilot, "/join #nope,#")  # the server refuses "#": a red line too
        await type_line(pilot, "still works")
        await wait_until(pilot, lambda: "still works" in texts(app, "#general"), "echo")


async def test_nick_in_use_gets_a_suffix(server: ServerProcess, connect: Connect) -> None:
    connect("alice")
    app = live_app(server, nick="alice", rooms=("#general",))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await joined(pilot, app, "#general")
        assert app.state.nick != "alice" and app.state.nick.startswith("alice")
        notes = [ln.text for ln in app.state.server_room.lines] + texts(app, "#general")
        assert any("is taken" in t for t in notes)
