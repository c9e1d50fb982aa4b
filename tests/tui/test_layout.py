"""The main screen's layout at several terminal sizes, read back from the rendered screen."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console
from textual import constants
from textual._xterm_parser import XTermParser
from textual.pilot import Pilot

from chat_protocol import Message
from chat_protocol.client_types import Disconnected
from chat_tui.app import NARROW_WIDTH, ChatApp
from chat_tui.messages import AroundLoaded, ClientEvent, HistoryLoaded, SendFailed
from chat_tui.screens.help import help_tables
from chat_tui.widgets.member_list import MemberList
from tests.tui.scenes import feed, main_scene, offline_app

SIZES = [(120, 40), (80, 24), (60, 20)]


def screen_lines(app: ChatApp) -> list[str]:
    """The screen as plain text, one string per row (the scenes draw no wide characters)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()


async def scene(pilot: Pilot[None]) -> ChatApp:
    app = pilot.app
    assert isinstance(app, ChatApp)
    main_scene(app)
    await pilot.pause()
    return app


@pytest.mark.parametrize("size", SIZES)
async def test_input_box_sits_below_the_pane_clear_of_the_member_list(
    size: tuple[int, int],
) -> None:
    async with offline_app().run_test(size=size) as pilot:
        app = await scene(pilot)
        centre, pane, box = (app.query_one(s).region for s in ("#centre", "#pane", "#input"))
        members = app.query_one(MemberList)
        assert members.display == (size[0] >= NARROW_WIDTH)
        assert box.y == pane.bottom and box.bottom == centre.bottom
        assert (box.x, box.right) == (pane.x, pane.right) == (centre.x, centre.right)
        if members.display:
            assert members.region.x == centre.right  # side by side, nothing shared
            assert (members.region.y, members.region.bottom) == (0, centre.bottom)
        else:
            assert centre.right == size[0]
        rows = screen_lines(app)
        top, middle, bottom = rows[box.y], rows[box.y + 1], rows[box.y + 2]
        left, right = box.x, box.right - 1
        assert top[left] + top[right] == "╭╮" and set(top[left + 1 : right]) == {"─"}
        assert middle[left] + middle[right] == "││"
        assert bottom[left] + bottom[right] == "╰╯" and set(bottom[left + 1 : right]) == {"─"}
        if members.display:
            # The member list's rule runs unbroken from the top row to the last input row.
            assert {rows[y][members.region.x] for y in range(centre.bottom)} == {"▏"}


async def test_narrow_terminal_hides_members_and_f2_still_shows_them() -> None:
    async with offline_app().run_test(size=(60, 20)) as pilot:
        app = await scene(pilot)
        members = app.query_one(MemberList)
        assert not members.display and not app.members_shown
        await pilot.press("f2")
        assert members.display and members.region.right == 60
        await pilot.press("f2")
        assert not members.display
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert members.display  # wide again: the wide choice (shown) comes back
        await pilot.press("f2")
        assert not members.display
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not members.display  # hidden with F2 while wide: stays hidden


@pytest.mark.parametrize("size", SIZES)
async def test_every_message_word_is_on_screen(size: tuple[int, int]) -> None:
    async with offline_app().run_test(size=size) as pilot:
        app = await scene(pilot)
        app.state.current_room.lines[:] = app.state.current_room.lines[-4:]  # fits any size
        app._show_current()
        await pilot.pause()
        pane = app.query_one("#pane").region
        shown = " ".join(row[pane.x : pane.right] for row in screen_lines(app)).split()
        for line in app.state.current_room.lines:
            for word in line.text.split():
                assert word in shown, word


async def test_member_count_shows_above_the_member_list() -> None:
    async with offline_app().run_test(size=(120, 40)) as pilot:
        app = await scene(pilot)
        members = app.query_one(MemberList).region
        inside = slice(members.x + 1, members.right)  # right of the rule
        rows = screen_lines(app)
        assert rows[0][inside].split() == ["5", "members"]
        assert rows[1][inside].strip() == "@alice"
        feed(app, ["@time=2024-03-05T10:00:00.000Z :alice!a@h JOIN #solo"])
        app.apply_message(Message.parse(":irc.example.net 353 alice = #solo :@alice"))
        app.apply_message(Message.parse(":irc.example.net 366 alice #solo :End"))
        app._switch("#solo")
        await pilot.pause()
        assert screen_lines(app)[0][inside].split() == ["1", "member"]


async def test_long_topic_and_status_end_with_an_ellipsis() -> None:
    async with offline_app().run_test(size=(80, 24)) as pilot:
        app = await scene(pilot)
        rows = screen_lines(app)
        topic = app.query_one("#topic").region
        shown = rows[0][topic.x : topic.right].rstrip()
        assert shown.endswith("…") and "rules: http" in shown  # cut where it runs out
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert screen_lines(app)[18].rstrip().endswith("bob i…")


async def test_alt_digit_from_an_xterm_goes_to_that_room() -> None:
    """xterm, tmux and most Linux terminals send Alt+2 as Esc then "2"."""
    async with offline_app().run_test(size=(120, 40)) as pilot:
        app = await scene(pilot)
        parser = XTermParser()
        keys = list(parser.feed("\x1b2"))
        time.sleep(constants.ESCAPE_DELAY * 2)  # nothing follows the Esc+2: a key
        keys += parser.tick()
        assert [key.key for key in keys] == ["alt+2"]  # type: ignore[attr-defined]
        for key in keys:
            app.post_message(key)  # as the terminal driver does
        await pilot.pause()
        assert app.state.current == "#random"
        assert app.query_one("#input").value == ""  # type: ignore[attr-defined]


async def test_an_edit_key_followed_by_f1_in_one_burst_still_edits() -> None:
    """Ctrl+U then F1 read in one go: the help screen opens before the input line has
    handled Ctrl+U, and the edit must still happen (it used to be matched against the
    help screen's bindings and dropped)."""
    async with offline_app().run_test(size=(120, 40)) as pilot:
        app = await scene(pilot)
        await pilot.press(*"hello")
        await pilot.pause()
        line = app.query_one("#input")
        assert line.value == "hello"  # type: ignore[attr-defined]
        for key in XTermParser().feed("\x15\x1bOP"):  # Ctrl+U, F1
            app.post_message(key)
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert line.value == ""  # type: ignore[attr-defined]
        await pilot.press(*"abc", "left")  # printable keys and Input's own keys still work
        await pilot.press("ctrl+k")  # app-wide (priority): opens the room switcher
        await pilot.pause()
        assert line.value == "abc"  # type: ignore[attr-defined]


async def test_help_in_a_narrow_terminal_puts_commands_below_keys() -> None:
    async with offline_app().run_test(size=(60, 20)) as pilot:
        app = await scene(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert any("Next unread (mentions first)" in row for row in screen_lines(app))
        console = Console(width=54, file=io.StringIO(), record=True)
        console.print(help_tables(app.key_help(), width=60))
        rows = console.export_text().splitlines()
        keys = next(i for i, row in enumerate(rows) if row.split()[:2] == ["Key", "Does"])
        commands = next(i for i, row in enumerate(rows) if row.split()[:2] == ["Command", "Does"])
        assert commands > keys and any("/join <room>" in row for row in rows)


async def test_messages_that_arrive_while_the_app_shuts_down_are_dropped() -> None:
    """The connection's worker can post after the widgets are gone (quit, end of a test)."""
    app = offline_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await scene(pilot)
    assert not app.is_running
    app.on_history_loaded(HistoryLoaded("#general", []))
    app.on_around_loaded(AroundLoaded("#general", "m1", []))
    app.on_client_event(ClientEvent(Disconnected("closed", None)))
    app.on_send_failed(SendFailed("hello", "offline"))
    app._refresh_status()  # what the once-a-second timer calls


async def test_room_switcher_filters_rooms_with_unread_counts() -> None:
    """Typing in Ctrl+K's switcher highlights the match and keeps a room's mention and
    unread counts beside it (Textual's fuzzy highlight is immutable Content: appending
    rich-style to it crashed the app)."""
    async with offline_app().run_test(size=(120, 40)) as pilot:
        app = await scene(pilot)
        await pilot.press("ctrl+k")
        await pilot.pause()
        await pilot.press(*"rand")
        await pilot.pause()
        options = app.screen.query_one("#switcher-options")
        labels = [
            str(options.get_option_at_index(i).prompt)  # type: ignore[attr-defined]
            for i in range(options.option_count)  # type: ignore[attr-defined]
        ]
        assert labels and labels[0].startswith("#random") and "unread" in labels[0], labels
        await pilot.press("enter")
        await pilot.pause()
        assert app.state.current == "#random"
