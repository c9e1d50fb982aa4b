"""Snapshots of the main screen, the room list and the help at 120x35, and of the main
screen at 80x24 and 60x20 too (narrower columns; at 60 the member list hides).

Each baseline was looked at (rendered to PNG) before it was kept. No live server:
the app is fed fixed IRC lines with fixed times, nicks and UTC display.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable

from chat_protocol import Message
from tests.tui.scenes import feed, main_scene, offline_app

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
    pilot.app.query_one("#input").post_message(events.Paste("\n".join(lines)))  # type: ignore[attr-defined]
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
