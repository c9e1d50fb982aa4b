"""Bugs found by using chat-tui for a day (issue 16), each against a real chat-server
where a server is involved, with Pilot driving the keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual import events

from benchmarks.ngircd import NGIRCD, NgircdProcess
from chat_protocol import Message
from chat_protocol.client_types import ServerAddress
from chat_tui.app import ChatApp
from chat_tui.config import Settings
from chat_tui.formatting import nick_color
from chat_tui.messages import HistoryLoaded
from chat_tui.model import LineKind
from chat_tui.screens.paste_confirm import PasteConfirm
from chat_tui.session import ChatSession
from chat_tui.widgets.chat_input import ChatInput
from chat_tui.widgets.message_pane import MessagePane
from chat_tui.widgets.room_sidebar import RoomSidebar
from chat_tui.widgets.topic_line import TopicLine
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, in_thread, joined, live_app, texts, wait_until
from tests.tui.scenes import feed, main_scene, offline_app

Connect = Callable[..., RawClient]


async def type_line(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one("#input").value = text
    await pilot.press("enter")


def pane_text(app) -> str:  # type: ignore[no-untyped-def]
    pane = app.query_one(MessagePane)
    return "\n".join(pane.render_line(y).text for y in range(pane.size.height))


# -- 1. /leave shows the room the input now belongs to --------------------------------


async def test_leave_shows_the_next_room_and_typing_goes_there_visibly(
    server: ServerProcess,
) -> None:
    app = live_app(server, rooms=("#random", "#general"))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#random", "#general")
        await pilot.press("alt+1")
        assert app.state.current == "#random"
        await type_line(pilot, "/leave")
        await wait_until(pilot, lambda: app.state.room("#random") is None, "PART of #random")
        await pilot.pause()
        assert app.state.current == "#general"
        assert app.query_one(TopicLine).room == "#general"
        assert app.query_one(MessagePane)._lines is app.state.room("#general").lines  # type: ignore[union-attr]
        await type_line(pilot, "hi")
        await wait_until(pilot, lambda: "hi" in texts(app, "#general"), "echo in #general")
        await pilot.pause()
        assert "hi" in pane_text(app)


async def test_leave_before_a_conversation_shows_that_conversation(
    server: ServerProcess, connect: Connect
) -> None:
    bob = connect("bob")
    app = live_app(server, rooms=("#random",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#random")
        bob.send("PRIVMSG alice :psst")
        await wait_until(pilot, lambda: app.state.room("bob") is not None, "DM from bob")
        await pilot.press("alt+1")
        await type_line(pilot, "/leave")
        await wait_until(pilot, lambda: app.state.room("#random") is None, "PART of #random")
        await pilot.pause()
        assert app.state.current == "bob"
        assert app.query_one(TopicLine).topic == "direct conversation with bob"
        assert "psst" in pane_text(app)
        await type_line(pilot, "hello bob")
        await in_thread(bob.expect, "PRIVMSG", pattern="hello bob")
        await wait_until(pilot, lambda: "hello bob" in pane_text(app), "own DM on screen")


# -- 3. a paste of several lines sends every line ---------------------------------------


async def paste(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(ChatInput).post_message(events.Paste(text))
    await pilot.pause()


async def test_paste_of_a_few_lines_sends_each(server: ServerProcess, connect: Connect) -> None:
    bob = connect("bob")
    bob.join("#general")
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        await in_thread(bob.expect, "JOIN", pattern="alice")
        app.query_one(ChatInput).value = "start: "
        await paste(pilot, "one\n\ntwo\nthree\n")
        for text in ("start: one", "two", "three"):
            msg = await in_thread(bob.expect, "PRIVMSG")
            assert msg.params[-1] == text  # type: ignore[union-attr]
        assert app.query_one(ChatInput).value == ""
        await paste(pilot, "just one line\n")  # one line: into the input, not sent
        assert app.query_one(ChatInput).value == "just one line"


async def test_long_paste_asks_first(server: ServerProcess, connect: Connect) -> None:
    bob = connect("bob")
    bob.join("#general")
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        await in_thread(bob.expect, "JOIN", pattern="alice")
        rows = [f"row {i}" for i in range(1, 6)]
        await paste(pilot, "\n".join(rows))
        await wait_until(pilot, lambda: isinstance(app.screen, PasteConfirm), "the question")
        await pilot.press("escape")  # cancel: nothing sent, nothing lost
        assert app.query_one(ChatInput).value == " ".join(rows)
        app.query_one(ChatInput).value = ""
        await paste(pilot, "\n".join(rows))
        await wait_until(pilot, lambda: isinstance(app.screen, PasteConfirm), "the question")
        await pilot.press("enter")  # every line
        for text in rows:
            msg = await in_thread(bob.expect, "PRIVMSG")
            assert msg.params[-1] == text  # type: ignore[union-attr]
        await paste(pilot, "\n".join(rows))
        await wait_until(pilot, lambda: isinstance(app.screen, PasteConfirm), "the question")
        await pilot.press("o")  # as one message
        msg = await in_thread(bob.expect, "PRIVMSG")
        assert msg.params[-1] == " ".join(rows)  # type: ignore[union-attr]


# -- 4. shrinking the terminal at the bottom keeps following -----------------------------


def privmsg(i: int, room: str = "#general", nick: str = "bob") -> str:
    minute, second = divmod(i, 60)
    stamp = f"2024-03-05T{10 + minute // 60:02d}:{minute % 60:02d}:{second:02d}.000Z"
    return f"@time={stamp};msgid=x{i} :{nick}!b@h PRIVMSG {room} :message {i:03d}"


async def test_shrinking_at_the_bottom_keeps_following_new_lines() -> None:
    app = offline_app()
    async with app.run_test(size=(100, 40)) as pilot:
        main_scene(app)
        feed(app, [privmsg(i) for i in range(100, 160)])
        app._switch("#general")
        await pilot.pause()
        pane = app.query_one(MessagePane)
        assert pane.at_bottom
        await pilot.resize_terminal(100, 20)
        await pilot.pause()
        await pilot.resize_terminal(90, 16)
        await pilot.pause()
        feed(app, [privmsg(200)])
        await pilot.pause()
        assert pane.at_bottom and pane.following
        assert "message 200" in pane_text(app)


async def test_scrolled_up_shows_that_newer_lines_arrived() -> None:
    app = offline_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main_scene(app)
        feed(app, [privmsg(i) for i in range(100, 160)])
        app._switch("#general")
        await pilot.pause()
        await pilot.press("pageup")
        await pilot.pause()
        pane = app.query_one(MessagePane)
        assert not pane.following
        feed(app, [privmsg(200), privmsg(201)])
        await pilot.pause()
        assert "2 new messages below" in pane_text(app)
        assert "message 200" not in pane_text(app)  # the reader's place is kept
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause()
        assert pane.following and "new messages below" not in pane_text(app)
        assert "message 201" in pane_text(app)


# -- 5. scrolling up while older lines load keeps the place ---------------------------


async def test_scrolling_up_while_loading_keeps_the_place() -> None:
    app = offline_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main_scene(app)
        feed(app, [privmsg(i, "#hist") for i in range(100, 160)])
        app._switch("#hist")
        await pilot.pause()
        room = app.state.room("#hist")
        pane = app.query_one(MessagePane)
        assert room is not None
        room.loading_history = True
        pane.set_banner(app._banner(room))
        pane.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert "loading older messages" in pane_text(app)
        await pilot.press("pageup")  # again, while the page is on its way
        await pilot.pause()
        top = pane_text(app)
        assert "message 100" in top
        older = [Message.parse(privmsg(i, "#hist")) for i in range(40, 100)]
        app.post_message(HistoryLoaded("#hist", older))
        await wait_until(pilot, lambda: not room.loading_history, "the page")
        await pilot.pause()
        assert not pane.at_bottom
        shown = pane_text(app)
        assert "message 100" in shown and "message 159" not in shown
        assert "loading older messages" not in shown


# -- 6, 7, 8. after a reconnect ---------------------------------------------------------


def error_lines(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        line.text
        for room in app.state.rooms.values()
        for line in room.lines
        if line.kind == LineKind.ERROR
    ]


async def test_reconnect_counts_the_gap_and_keeps_nick_away_and_no_stale_topic(
    server: ServerProcess, connect: Connect
) -> None:
    app = live_app(server, rooms=("#a", "#b"))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#a", "#b")
        state = app.state
        app._switch("#b")
        await type_line(pilot, "/topic an old topic")
        await wait_until(pilot, lambda: state.roster.topic("#b") == "an old topic", "topic")
        app._switch("#a")
        await type_line(pilot, "/nick alice2")
        await wait_until(pilot, lambda: state.nick == "alice2", "new nick")
        await type_line(pilot, "/away lunch")
        await wait_until(pilot, lambda: state.away, "away")
        assert app.session is not None
        # Come back after ~3 s: time for bob to speak into the gap first.
        app.session.client.config.reconnect_min = app.session.client.config.reconnect_max = 3.0
        await in_thread(server.restart)  # the server forgets away; rooms keep topics
        bob = connect("bob")
        bob.join("#b")  # first back in the emptied room: he runs it
        bob.send("TOPIC #b :")  # cleared while alice is away: hers is stale now
        bob.send("PRIVMSG #b :alice2: said while you were gone")
        bob.send("PING sent")
        await in_thread(bob.expect, "PONG")
        await wait_until(pilot, lambda: state.connection.state == "offline", "offline")
        await wait_until(pilot, lambda: state.connection.state == "connected", "back", 30)
        await joined(pilot, app, "#a", "#b")
        b = state.room("#b")
        assert b is not None
        await wait_until(
            pilot, lambda: "alice2: said while you were gone" in texts(app, "#b"), "gap fill"
        )
        assert (b.unread, b.mentions) == (1, 1)  # 6: the gap is news
        assert state.nick == "alice2" and app.session.client.nick == "alice2"  # 7: nick kept
        assert state.roster.topic("#b") == ""  # 7: no stale topic
        await wait_until(pilot, lambda: state.away, "away again")  # 7: re-sent
        bob.send("WHOIS alice2")
        await in_thread(bob.expect, "301", pattern="lunch")  # the server has us away too


async def test_offline_attempts_update_one_line(server: ServerProcess) -> None:
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        assert app.session is not None
        config = app.session.client.config
        config.reconnect_min, config.reconnect_max = 0.05, 0.1
        await in_thread(server.stop)
        state = app.state
        await wait_until(pilot, lambda: state.connection.attempts >= 4, "several attempts")
        offline = [t for t in error_lines(app) if t.startswith("disconnected")]
        assert len(offline) == 1, offline
        assert " attempts, next in " in offline[0] and "Connect call failed" in offline[0]
        assert " attempts, next in " in pane_text(app)  # redrawn where the reader looks
        await in_thread(server.start)
        await wait_until(pilot, lambda: state.connection.state == "connected", "back", 30)
        assert len([t for t in error_lines(app) if t.startswith("disconnected")]) == 1


# -- 10. small things that mislead ----------------------------------------------------


async def test_timestamp_format_with_seconds_is_shown_whole() -> None:
    app = offline_app()
    app.settings.timestamp_format = "%H:%M:%S"
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        row = next(r for r in pane_text(app).splitlines() if "yes, looks good" in r)
        assert row.startswith("09:01:00        alice yes, looks good"), row


async def test_long_nicks_stay_distinct_and_colours_differ() -> None:
    app = offline_app()
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        feed(app, [
            "@time=2024-03-05T10:00:00.000Z :Averyverylongnick1!a@h PRIVMSG #general :one",
            "@time=2024-03-05T10:00:01.000Z :Averyverylongnick2!a@h PRIVMSG #general :two",
        ])  # fmt: skip
        await pilot.pause()
        rows = pane_text(app).splitlines()
        one = next(r for r in rows if r.endswith("one") or " one " in r + " ")
        two = next(r for r in rows if r.endswith("two") or " two " in r + " ")
        assert "Averyv…nick1" in one and "Averyv…nick2" in two
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
    assert len({nick_color(name) for name in names}) == len(names)


async def test_server_tab_keeps_the_numbers_of_lusers_lines() -> None:
    app = offline_app()
    async with app.run_test(size=(120, 35)):
        feed(app, [
            ":irc.example.net 251 alice :There are 3 users and 0 invisible on 1 servers",
            ":irc.example.net 252 alice 2 :operator(s) online",
            ":irc.example.net 253 alice 1 :unknown connection(s)",
            ":irc.example.net 254 alice 7 :channels formed",
            ":irc.example.net 265 alice 3 5 :Current local users 3, max 5",
        ])  # fmt: skip
        server_texts = [line.text for line in app.state.server_room.lines]
        assert server_texts[-5:] == [
            "There are 3 users and 0 invisible on 1 servers",
            "2 operator(s) online",
            "1 unknown connection(s)",
            "7 channels formed",
            "Current local users 3, max 5",
        ]


async def test_whois_idle_and_signon_in_words(server: ServerProcess, connect: Connect) -> None:
    connect("bob")
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        await type_line(pilot, "/whois bob")
        await wait_until(
            pilot, lambda: any("bob has been idle" in t for t in texts(app, "#general")), "317"
        )
        idle = next(t for t in texts(app, "#general") if "has been idle" in t)
        assert "s, signed on 20" in idle  # "bob has been idle 0s, signed on 2026-…"


async def test_refused_message_comes_back_to_the_input(
    server: ServerProcess, connect: Connect
) -> None:
    bob = connect("bob")
    bob.join("#quiet")
    bob.send("MODE #quiet +m")
    bob.expect("MODE")
    app = live_app(server, rooms=("#quiet",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#quiet")
        await type_line(pilot, "a careful remark")
        chat_input = app.query_one(ChatInput)
        await wait_until(pilot, lambda: chat_input.value == "a careful remark", "text back")
        assert any("Cannot send to channel" in t for t in texts(app, "#quiet"))


@pytest.mark.skipif(not Path(NGIRCD).exists(), reason="needs ngircd")
async def test_server_without_history_does_not_claim_the_beginning(tmp_path: Path) -> None:
    with NgircdProcess(tmp_path) as ngircd:
        settings = Settings(
            nick="alice", servers=[ServerAddress("127.0.0.1", ngircd.port)], rooms=["#general"]
        )
        app = ChatApp(settings, ChatSession(settings))
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app, "#general")
            await pilot.press("pageup")
            await pilot.pause()
            shown = pane_text(app)
            assert "this server keeps no history" in shown
            assert "beginning of the conversation" not in shown


# -- read marker ------------------------------------------------------------------------


async def test_read_marker_shows_what_is_new_since_the_last_look() -> None:
    app = offline_app()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        await pilot.press("alt+2")  # #random: bob's two lines came while alice was away
        await pilot.pause()
        rows = pane_text(app).splitlines()
        marker = next(i for i, r in enumerate(rows) if "new since you last looked" in r)
        assert "anyone for lunch?" in rows[marker + 1]
        await pilot.press("alt+1")
        feed(app, [privmsg(300, "#random")])
        await pilot.press("alt+2")
        await pilot.pause()
        rows = pane_text(app).splitlines()
        marker = next(i for i, r in enumerate(rows) if "new since you last looked" in r)
        assert "message 300" in rows[marker + 1]  # seen lines are above it now
        assert sum("new since you last looked" in r for r in rows) == 1


async def test_markread_from_another_client_clears_what_it_read() -> None:
    app = offline_app()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        random = app.state.room("#random")
        assert random is not None and (random.unread, random.mentions) == (2, 1)
        feed(app, [":irc.example.net MARKREAD #random timestamp=2024-03-05T09:05:30.000Z"])
        assert (random.unread, random.mentions) == (1, 1)  # "alice: you in?" is still new
        feed(app, [":irc.example.net MARKREAD #random timestamp=2024-03-05T09:06:00.000Z"])
        assert (random.unread, random.mentions) == (0, 0)
        await pilot.pause()
        entry = {e.key: e for e in app.query_one(RoomSidebar).entries}["#random"]
        assert entry.unread == 0
        feed(app, [":irc.example.net MARKREAD #random timestamp=2024-03-05T09:00:00.000Z"])
        assert random.read_until is not None and random.read_until.minute == 6  # never back
