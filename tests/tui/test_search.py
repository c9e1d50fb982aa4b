"""Search (Ctrl+F, /search): the query, the matching rules, and the whole path against
a real chat-server (soju.im/search, CHATHISTORY AROUND) and against servers without it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from benchmarks.ngircd import NGIRCD, NgircdProcess
from chat_protocol import Message
from chat_protocol import client as client_module
from chat_protocol.client_types import ServerAddress
from chat_tui.app import CUT_NOTE, ChatApp
from chat_tui.config import Settings
from chat_tui.messages import AroundLoaded
from chat_tui.model import LineKind
from chat_tui.screens.search import SearchScreen, snippet
from chat_tui.search import (
    find,
    match_spans,
    parse_query,
    result_from,
    search_loaded,
)
from chat_tui.session import ChatSession
from chat_tui.state import ChatState
from chat_tui.widgets.message_pane import MessagePane
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, joined, live_app, texts, wait_until
from tests.tui.scenes import main_scene, offline_app

RAW_CAPS = ["message-tags", "server-time", "echo-message", "batch"]

# -- what the user typed, and what matches ------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "words", "sender"),
    [
        ("apple pie", ("apple", "pie"), None),
        ("  apple   from:bob ", ("apple",), "bob"),
        ("from:@Bob", (), "Bob"),
        ("from: apple", ("from:", "apple"), None),  # an empty from: is a word
        ("from:a from:b x", ("x",), "b"),
        ("", (), None),
    ],
)
def test_parse_query(typed: str, words: tuple[str, ...], sender: str | None) -> None:
    query = parse_query(typed)
    assert (query.words, query.sender) == (words, sender)
    assert query.empty is (not words and not sender)


@pytest.mark.parametrize(
    ("text", "words", "spans"),
    [
        ("an APPLE a day", ["apple"], [(3, 8)]),
        ("apple pie, apple!", ["pie", "apple"], [(0, 5), (6, 9), (11, 16)]),
        ("pineapple", ["apple"], None),  # whole words only, as the server's index
        ("apples", ["apple"], None),
        ("café au lait", ["cafe"], [(0, 4)]),  # accents do not count
        ("send an e-mail", ["e-mail"], [(8, 14)]),  # a phrase of its tokens
        ("e and mail", ["e-mail"], None),
        ("star * power", ["*", "power"], [(7, 12)]),  # punctuation alone matches anything
        ("hello", ["hello", "absent"], None),
    ],
)
def test_match_spans(text: str, words: list[str], spans: list[tuple[int, int]] | None) -> None:
    assert match_spans(text, words) == spans


def test_snippet_keeps_the_first_match_in_view() -> None:
    text = "x" * 50 + " needle " + "y" * 50
    spans = match_spans(text, ["needle"])
    assert spans is not None
    shown, offset = snippet(text, spans, 30)
    assert shown.startswith("…") and shown[spans[0][0] - offset :].startswith("needle")
    assert snippet("short needle", [(6, 12)], 30) == ("short needle", 0)


def chat(state: ChatState, *lines: str) -> None:
    for line in lines:
        state.apply(Message.parse(line))


def test_loaded_lines_are_searched_newest_first_in_one_room_or_all() -> None:
    state = ChatState("alice")
    chat(
        state,
        ":alice!a@h JOIN #fruit",
        "@time=2026-12-06T10:00:00.000Z :bob!b@h PRIVMSG #fruit :red apple",
        "@time=2026-12-06T10:01:00.000Z :carol!c@h PRIVMSG #veg :apple tart",
        "@time=2026-12-06T10:02:00.000Z :bob!b@h PRIVMSG alice :\x01ACTION eats an apple\x01",
        "@time=2026-12-06T10:03:00.000Z :bob!b@h PRIVMSG #fruit :\x02Apple\x02 pie",
        "@time=2026-12-06T10:04:00.000Z :bob!b@h PRIVMSG #fruit :pear",
    )
    state.note("apple (a client note, not a message)")
    everywhere = search_loaded(state, parse_query("apple"))
    assert [(r.room, r.text, r.action) for r in everywhere] == [
        ("#fruit", "\x02Apple\x02 pie", False),
        ("bob", "eats an apple", True),
        ("#veg", "apple tart", False),
        ("#fruit", "red apple", False),
    ]
    assert all(r.seq is not None for r in everywhere)
    assert [r.text for r in search_loaded(state, parse_query("apple"), "#FRUIT")] == [
        "\x02Apple\x02 pie",
        "red apple",
    ]
    assert [r.text for r in search_loaded(state, parse_query("from:carol"))] == ["apple tart"]
    assert search_loaded(state, parse_query("apple"), "#nowhere") == []
    assert search_loaded(state, parse_query("apple"), limit=1)[0].text == "\x02Apple\x02 pie"


def test_a_server_result_belongs_to_its_room_or_the_other_person() -> None:
    state = ChatState("alice")
    stamp = "@time=2026-12-06T10:00:00.000Z;msgid=m1 "
    theirs = result_from(Message.parse(stamp + ":bob!b@h PRIVMSG alice :hi"), state)
    mine = result_from(Message.parse(stamp + ":alice!a@h PRIVMSG Bob :hi"), state)
    room = result_from(Message.parse(stamp + ":bob!b@h NOTICE #fruit :hi"), state)
    assert theirs is not None and mine is not None and room is not None
    assert (theirs.room, mine.room, room.room) == ("bob", "Bob", "#fruit")
    assert theirs.time == datetime(2026, 12, 6, 10, tzinfo=UTC) and theirs.msgid == "m1"
    assert result_from(Message.parse(":bob!b@h JOIN #fruit"), state) is None


async def test_offline_the_loaded_lines_are_searched_and_the_answer_says_so() -> None:
    state = ChatState("alice")
    chat(state, "@time=2026-12-06T10:00:00.000Z :bob!b@h PRIVMSG #fruit :red apple")
    answer = await find(None, state, parse_query("apple"), None)
    assert not answer.on_server and [r.text for r in answer.results] == ["red apple"]
    assert answer.note.startswith("offline — 1 message found in the ")


# -- the screen, without a server ---------------------------------------------------------


async def open_search(pilot: Pilot[None], app: ChatApp) -> SearchScreen:
    await pilot.press("ctrl+f")
    await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), "the search screen")
    assert isinstance(app.screen, SearchScreen)
    return app.screen


async def answered(pilot: Pilot[None], screen: SearchScreen, scope: object = ...) -> None:
    """Wait for the answer to the search last asked (in ``scope``, when given)."""
    await wait_until(
        pilot,
        lambda: (
            screen.answer is not None
            and (scope is ... or (screen.searched is not None and screen.searched[1] == scope))
        ),
        "the search answer",
    )
    await pilot.pause()


def status(screen: SearchScreen) -> str:
    return str(screen.query_one("#search-status", Static).render())


async def test_keys_of_the_search_screen_offline() -> None:
    """Ctrl+F, words, Enter: results; Tab: all rooms; Down, Enter: that room with the
    line highlighted; Ctrl+F offers the last words and scope; Escape closes."""
    app = offline_app()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        screen = await open_search(pilot, app)
        await pilot.press("enter")  # nothing typed: nothing asked
        assert screen.searched is None and "type words" in status(screen)
        await pilot.press(*"alice", "enter")
        await answered(pilot, screen, "#general")
        assert [r.room for r in screen.results] == ["#general"]
        assert "found in the" in status(screen) and "offline" in status(screen)
        await pilot.press("tab")
        await answered(pilot, screen, None)
        assert [r.text for r in screen.results] == ["alice: you in?", screen.results[1].text]
        assert [r.room for r in screen.results] == ["#random", "#general"]
        await pilot.press("down")
        await pilot.resize_terminal(90, 30)  # the rows are laid out again, the choice kept
        await pilot.pause()
        assert screen.query_one(OptionList).highlighted == 1
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is not screen, "the screen closed")
        await pilot.pause()
        general = app.state.room("#general")
        assert general is not None and app.state.current == "#general"
        found = general.find(screen.results[1].msgid)
        assert found is not None and app.query_one(MessagePane).found == found.seq
        screen = await open_search(pilot, app)
        assert screen.query_one("#search-input").value == "alice"  # type: ignore[attr-defined]
        assert screen.all_rooms  # the scope chosen last time
        await answered(pilot, screen)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not screen, "the screen closed")
        assert app.state.current == "#general"


async def test_lines_around_a_result_that_do_not_reach_the_loaded_ones_say_so() -> None:
    """When the lines between a result and the loaded ones did not all come, a note
    marks the hole right after the last of them."""
    app = offline_app()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        window = [
            Message.parse(
                f"@time=2024-03-01T10:0{i}:00.000Z;msgid=old{i} :bob!b@h PRIVMSG #general "
                f":old line {i}"
            )
            for i in range(3)
        ]
        app.post_message(AroundLoaded("#general", "old1", window, cut=True))
        general = app.state.room("#general")
        assert general is not None
        await wait_until(pilot, lambda: general.find("old1") is not None, "the lines")
        await pilot.pause()
        rows = [ln.text for ln in general.lines]
        assert rows[rows.index("old line 2") + 1] == CUT_NOTE
        found = general.find("old1")
        assert found is not None and app.query_one(MessagePane).found == found.seq
        assert "old line 1" in pane_text(app) and CUT_NOTE in pane_text(app)


# -- against a real chat-server -----------------------------------------------------------


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path, flood_limit=False) as server:
        yield server


@pytest.fixture
def raw(srv: ServerProcess) -> Iterator[Callable[[str], RawClient]]:
    clients: list[RawClient] = []

    def make(nick: str) -> RawClient:
        c = RawClient(srv.host, srv.port)
        clients.append(c)
        c.register(nick, caps=RAW_CAPS)
        return c

    yield make
    for c in clients:
        c.close()


def say(c: RawClient, target: str, *lines: str) -> None:
    """Send lines and wait for their echoes: they are in the history then."""
    for text in lines:
        c.send(f"PRIVMSG {target} :{text}")
        c.expect("PRIVMSG", pattern=re.escape(text))


def pane_text(app: ChatApp) -> str:
    pane = app.query_one(MessagePane)
    return "\n".join(pane.render_line(y).text for y in range(pane.size.height))


def messages(app: ChatApp, room: str) -> list[str]:
    found = app.state.room(room)
    assert found is not None
    return [ln.text for ln in found.lines if ln.kind == LineKind.MESSAGE]


async def test_ctrl_f_finds_an_old_message_on_the_server_and_shows_the_lines_around_it(
    srv: ServerProcess, raw: Callable[[str], RawClient]
) -> None:
    bob = raw("bob")
    bob.join("#fruit")
    bob.join("#veg")
    fillers = [f"filler {i:03d}" for i in range(120)]
    say(bob, "#fruit", "the durian is ripe", *fillers)
    say(bob, "#veg", "durian soup tonight")
    app = live_app(srv, rooms=("#fruit", "#veg"))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#fruit", "#veg")
        await wait_until(pilot, lambda: "filler 119" in texts(app, "#fruit"), "the join replay")
        await pilot.press("alt+1")
        assert "the durian is ripe" not in texts(app, "#fruit")  # older than the replay

        screen = await open_search(pilot, app)
        await pilot.press(*"durian", "enter")
        await answered(pilot, screen, "#fruit")
        assert screen.answer is not None and screen.answer.on_server
        assert [(r.room, r.nick, r.text) for r in screen.results] == [
            ("#fruit", "bob", "the durian is ripe")
        ]
        assert status(screen) == "1 message found on the server"
        result = screen.results[0]
        await pilot.press("enter")

        room = app.state.room("#fruit")
        assert room is not None
        await wait_until(pilot, lambda: room.find(result.msgid) is not None, "lines around it")
        await pilot.pause()
        assert app.state.current == "#fruit" and app.screen is app.screen_stack[0]
        line = room.find(result.msgid)
        pane = app.query_one(MessagePane)
        assert line is not None and pane.found == line.seq
        shown = pane_text(app)
        assert "the durian is ripe" in shown and "filler 010" in shown
        # The lines around it and the replayed ones are joined: no hole, nothing twice.
        assert messages(app, "#fruit") == ["the durian is ripe", *fillers]


async def test_all_rooms_scope_and_slash_search(
    srv: ServerProcess, raw: Callable[[str], RawClient]
) -> None:
    bob = raw("bob")
    bob.join("#fruit")
    bob.join("#veg")
    app = live_app(srv, rooms=("#fruit", "#veg"))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#fruit", "#veg")
        say(bob, "#fruit", "carrot cake recipe", "not this one")
        say(bob, "#veg", "carrot soup")
        say(bob, "alice", "a carrot for you")  # direct messages are searched too
        await wait_until(pilot, lambda: "a carrot for you" in texts(app, "bob"), "the DM")
        await pilot.press("alt+1")
        app.query_one("#input").value = "/search carrot"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), "the screen")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await answered(pilot, screen, "#fruit")
        assert [r.text for r in screen.results] == ["carrot cake recipe"]
        app.screen.query_one("#search-input").value = "soup"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await answered(pilot, screen, "#fruit")
        assert screen.results == []
        assert status(screen) == "nothing found on the server — tab searches all rooms"
        app.screen.query_one("#search-input").value = "carrot"  # type: ignore[attr-defined]

        await pilot.press("tab")  # all rooms
        await answered(pilot, screen, None)
        assert screen.answer is not None and screen.answer.on_server
        assert [(r.room, r.text) for r in screen.results] == [
            ("bob", "a carrot for you"),
            ("#veg", "carrot soup"),
            ("#fruit", "carrot cake recipe"),
        ]
        times = [r.time for r in screen.results]
        assert times == sorted(times, reverse=True)

        await pilot.press("down", "enter")  # carrot soup, in #veg
        await wait_until(pilot, lambda: app.state.current == "#veg", "#veg shown")
        await pilot.pause()
        veg = app.state.room("#veg")
        assert veg is not None
        line = veg.find(screen.results[1].msgid)
        assert line is not None and app.query_one(MessagePane).found == line.seq
        assert "carrot soup" in pane_text(app)


@pytest.mark.skipif(not Path(NGIRCD).exists(), reason="needs ngircd")
async def test_on_a_server_without_search_the_loaded_lines_are_searched(tmp_path: Path) -> None:
    with NgircdProcess(tmp_path) as ngircd:
        settings = Settings(
            nick="alice", servers=[ServerAddress("127.0.0.1", ngircd.port)], rooms=["#general"]
        )
        app = ChatApp(settings, ChatSession(settings))
        async with app.run_test(size=SIZE) as pilot:
            await joined(pilot, app, "#general")
            bob = RawClient("127.0.0.1", ngircd.port)
            try:
                bob.register("bob")
                bob.join("#general")
                for text in ("kiwi season", "mango season", "kiwi again"):
                    bob.send(f"PRIVMSG #general :{text}")
                await wait_until(pilot, lambda: "kiwi again" in texts(app, "#general"), "lines")
            finally:
                bob.close()
            assert app.session is not None and not app.session.can_search
            screen = await open_search(pilot, app)
            await pilot.press(*"kiwi", "enter")
            await answered(pilot, screen)
            assert screen.answer is not None and not screen.answer.on_server
            assert [r.text for r in screen.results] == ["kiwi again", "kiwi season"]
            assert status(screen).startswith("this server cannot search its history — 2 messages")
            await pilot.press("down", "enter")
            await wait_until(pilot, lambda: app.screen is not screen, "the screen closed")
            await pilot.pause()
            room = app.state.room("#general")
            assert room is not None
            line = room.find(None, screen.results[1].seq)
            assert line is not None and line.text == "kiwi season"
            assert app.query_one(MessagePane).found == line.seq


async def test_without_the_capability_search_falls_back_to_the_loaded_lines(
    srv: ServerProcess, raw: Callable[[str], RawClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own server, with soju.im/search not asked for: the choice of ``find``."""
    caps = tuple(c for c in client_module.WANTED_CAPS if c != "soju.im/search")
    monkeypatch.setattr(client_module, "WANTED_CAPS", caps)
    bob = raw("bob")
    bob.join("#fruit")
    say(bob, "#fruit", "mango lassi (before alice came)")
    app = live_app(srv, rooms=("#fruit",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#fruit")
        say(bob, "#fruit", "mango chutney")
        await wait_until(pilot, lambda: "mango chutney" in texts(app, "#fruit"), "the line")
        assert app.session is not None and app.session.has_history
        assert not app.session.can_search
        answer = await find(app.session, app.state, parse_query("mango"), "#fruit")
        assert not answer.on_server
        assert answer.note.startswith("this server cannot search its history")
        # The replayed line is loaded too, so it is found.
        assert [r.text for r in answer.results] == [
            "mango chutney",
            "mango lassi (before alice came)",
        ]
