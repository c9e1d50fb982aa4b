"""Snapshots of the main screen, the room list and the help at 120x35, and of the main
screen at 80x24 and 60x20 too (narrower columns; at 60 the member list hides); the
search screen, a search result in its room, copy mode, the help and the command
palette at 120x40 and 80x24.

Each baseline was looked at (rendered to PNG) before it was kept. No live server:
the app is fed fixed IRC lines with fixed times, nicks and UTC display.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.command import CommandInput, CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from chat_protocol import Message
from chat_protocol.client_search import SearchQuery
from chat_tui.app import ChatApp
from chat_tui.palette import ChatCommands
from chat_tui.screens.search import SearchScreen
from chat_tui.search import find
from tests.tui.scenes import MAIN_SCENE, feed, main_scene, offline_app

SIZE = (120, 35)


async def settled(pilot: Pilot[None], table: DataTable[Any]) -> None:
    """Wait until the table has sized its columns to the rows (it does that when idle).

    One pause is not always enough on a busy machine, and a screenshot taken before
    shows the columns cut to their header widths.
    """
    for _ in range(100):
        await pilot.pause()
        widths = {column.label.plain: column.content_width for column in table.ordered_columns}
        if widths["Room"] >= len("#general") and widths["Topic"] >= len("Talk about anything"):
            return
    raise AssertionError(f"room list columns never fitted their rows: {widths}")


async def typed(pilot: Pilot[None]) -> None:
    main_scene(pilot.app)  # type: ignore[arg-type]
    await pilot.pause()
    pilot.app.query_one("#input").value = "bob: see you at noon"  # type: ignore[attr-defined]
    await pilot.pause()


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=SIZE, run_before=typed)


def test_main_screen_80x24(snap_compare: Any) -> None:
    """Narrower sidebar and member list, nick column still full width."""
    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=typed)


def test_main_screen_60x20(snap_compare: Any) -> None:
    """Too narrow for the member list: it hides (F2 brings it back)."""
    assert snap_compare(offline_app(), terminal_size=(60, 20), run_before=typed)


def test_room_list_screen(snap_compare: Any) -> None:
    app = offline_app()

    async def before(pilot: Pilot[None]) -> None:
        main_scene(app)
        await pilot.press("f3")
        for line in [
            ":irc.example.net 321 alice Channel :Users Name",
            ":irc.example.net 322 alice #general 5 :Talk about anything",
            ":irc.example.net 322 alice #random 2 :Lunch, cats and \x02everything\x02 else",
            ":irc.example.net 322 alice #dev 3 :Builds and deploys",
            ":irc.example.net 322 alice #quiet 1 :",
            ":irc.example.net 323 alice :End of /LIST",
        ]:
            pilot.app.apply_message(Message.parse(line))  # type: ignore[attr-defined]
        pilot.app.screen.query_one("#room-list-filter").cursor_blink = False  # type: ignore[attr-defined]
        await settled(pilot, pilot.app.screen.query_one(DataTable))

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_help_screen(snap_compare: Any) -> None:
    app = offline_app()

    async def before(pilot: Pilot[None]) -> None:
        main_scene(app)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


async def pasted(pilot: Pilot[None]) -> None:
    main_scene(pilot.app)  # type: ignore[arg-type]
    await pilot.pause()
    lines = ["def greet(name):", "    print(f'hello {name}')", "", "greet('bob')", "greet('carol')"]
    pilot.app.query_one("#input").post_message(events.Paste("\n".join(lines)))
    await pilot.pause()
    await pilot.pause()


def test_paste_question(snap_compare: Any) -> None:
    """A paste of more than three lines asks: lines, one message, or cancel."""
    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=pasted)


def test_paste_question_80x24(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=pasted)


async def marked(pilot: Pilot[None]) -> None:
    """#random with news since the last look, scrolled up while two more lines arrive."""
    app = pilot.app
    main_scene(app)  # type: ignore[arg-type]
    feed(app, [  # type: ignore[arg-type]
        f"@time=2024-03-05T09:{10 + i:02d}:00.000Z;msgid=n{i} :carol!c@h PRIVMSG #random "
        f":lunch plan, item {i}"
        for i in range(30)
    ])  # fmt: skip
    await pilot.press("alt+2")
    await pilot.pause()
    await pilot.press("pageup")
    await pilot.pause()
    feed(app, [  # type: ignore[arg-type]
        "@time=2024-03-05T09:50:00.000Z;msgid=z1 :bob!b@h PRIVMSG #random :still hungry",
        "@time=2024-03-05T09:51:00.000Z;msgid=z2 :dave!d@h PRIVMSG #random :me too",
    ])  # fmt: skip
    await pilot.pause()


def test_read_marker_and_newer_lines_hint(snap_compare: Any) -> None:
    """The "new since you last looked" rule, and "2 new messages below" when scrolled up."""
    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=marked)


def test_read_marker_and_newer_lines_hint_80x24(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=marked)


# -- search (Ctrl+F) ----------------------------------------------------------------------

RELEASE_TALK = [
    "@time=2024-03-05T09:10:00.000Z;msgid=s1 :dave!d@h PRIVMSG #dev "
    ":the release is tagged, notes follow after lunch",
    "@time=2024-03-05T09:12:00.000Z;msgid=s2 :bob!b@h PRIVMSG #random "
    ":did anyone read the release notes?",
    "@time=2024-03-05T09:14:00.000Z;msgid=s3 :carol!c@h PRIVMSG #dev :a long message that goes "
    "on and on about builds, caches, flaky tests and coffee before it finally mentions the "
    "release notes near its very end",
]


class SearchingServer:
    """Stands in for a session whose server has soju.im/search: answers from fixed lines."""

    connected = True
    can_search = True

    async def search(self, query: SearchQuery) -> list[Message]:
        lines = [MAIN_SCENE[9], *RELEASE_TALK]  # carol's morning line mentions the notes
        return [Message.parse(line) for line in lines]


async def search_release_notes(pilot: Pilot[None], on_server: bool) -> None:
    app = pilot.app
    assert isinstance(app, ChatApp)
    main_scene(app)
    feed(app, RELEASE_TALK)
    if on_server:
        server = SearchingServer()
        app._find = lambda query, room: find(server, app.state, query, room)  # type: ignore[method-assign, arg-type]
    await pilot.press("ctrl+f")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    screen.query_one("#search-input", Input).cursor_blink = False
    await pilot.press(*"release notes", "tab", "enter")  # Tab: all rooms
    for _ in range(100):
        await pilot.pause()
        if screen.answer is not None:
            break
    await pilot.pause()


def test_search_screen(snap_compare: Any) -> None:
    """Results from the server, newest first; the words marked; a long line shows the
    part with the match."""

    async def before(pilot: Pilot[None]) -> None:
        await search_release_notes(pilot, on_server=True)

    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=before)


def test_search_screen_80x24(snap_compare: Any) -> None:
    """No server search (offline here): the loaded lines are searched, and it says so."""

    async def before(pilot: Pilot[None]) -> None:
        await search_release_notes(pilot, on_server=False)

    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=before)


def test_search_result_shown_in_its_room(snap_compare: Any) -> None:
    """Enter on a result: its room, the message highlighted in the middle of the pane."""

    async def before(pilot: Pilot[None]) -> None:
        await search_release_notes(pilot, on_server=False)
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=before)


async def copy_mode_three_lines(pilot: Pilot[None]) -> None:
    """Copy mode on, three lines selected: erin's join up to alice's line."""
    main_scene(pilot.app)  # type: ignore[arg-type]
    await pilot.pause()
    await pilot.press("ctrl+y", "up", "up", "shift+up", "shift+up")
    await pilot.pause()


def test_copy_mode(snap_compare: Any) -> None:
    """The selected lines highlighted whole; the status line says copy mode's keys and
    the footer shows Copy and Leave."""
    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=copy_mode_three_lines)


def test_copy_mode_80x24(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=copy_mode_three_lines)


def test_search_result_shown_in_its_room_80x24(snap_compare: Any) -> None:
    """The message a search led to, in the middle of a narrow pane."""

    async def before(pilot: Pilot[None]) -> None:
        await search_release_notes(pilot, on_server=False)
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=before)


# -- help (F1) and the command palette (Ctrl+O) at both sizes -------------------------------


async def help_open(pilot: Pilot[None]) -> None:
    main_scene(pilot.app)  # type: ignore[arg-type]
    await pilot.press("f1")
    await pilot.pause()


def test_help_screen_120x40(snap_compare: Any) -> None:
    """Keys beside the commands."""
    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=help_open)


def test_help_screen_80x24(snap_compare: Any) -> None:
    """Narrow: the commands go below the keys (scroll for more)."""
    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=help_open)


async def palette_open(pilot: Pilot[None]) -> None:
    """Ctrl+O in #general: the chat's commands (join, leave, search, members, mark all
    read, switch to each room). Textual's own commands (theme, keys, quit...) are left
    out of the picture: the palette lists each provider's as they arrive, in an order
    that varies from run to run."""
    app = pilot.app
    main_scene(app)  # type: ignore[arg-type]
    app.COMMANDS = {ChatCommands}  # type: ignore[misc]
    await pilot.press("ctrl+o")
    for _ in range(200):
        await pilot.pause()
        screen = app.screen
        if isinstance(screen, CommandPalette) and screen.has_class("-ready"):
            break
    screen = app.screen
    assert isinstance(screen, CommandPalette)
    screen.query_one(CommandInput).cursor_blink = False
    prompts = [str(o.prompt) for o in screen.query_one(CommandList).options]
    assert any("Mark all rooms read" in p for p in prompts), prompts
    await pilot.pause()


def test_command_palette(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=palette_open)


def test_command_palette_80x24(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=palette_open)


async def palette_switch(pilot: Pilot[None]) -> None:
    """Ctrl+O, then "switch": a hit for every other room, with its unread count."""
    await palette_open(pilot)
    await pilot.press(*"switch")
    screen = pilot.app.screen
    assert isinstance(screen, CommandPalette)
    for _ in range(200):
        await pilot.pause()
        prompts = [str(o.prompt) for o in screen.query_one(CommandList).options]
        if screen.has_class("-ready") and sum("Switch to" in p for p in prompts) == 4:
            break
    await pilot.pause()


def test_command_palette_switch(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=(120, 40), run_before=palette_switch)


def test_command_palette_switch_80x24(snap_compare: Any) -> None:
    assert snap_compare(offline_app(), terminal_size=(80, 24), run_before=palette_switch)
