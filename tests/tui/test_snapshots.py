"""Snapshots of the main screen, the room list and the help, at a fixed size.

Each baseline was looked at (rendered to PNG) before it was kept. No live server:
the app is fed fixed IRC lines with fixed times, nicks and UTC display.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from chat_protocol import Message
from tests.tui.scenes import main_scene, offline_app

SIZE = (120, 35)


def test_main_screen(snap_compare: Any) -> None:
    app = offline_app()

    async def before(pilot: Pilot[None]) -> None:
        main_scene(app)
        await pilot.pause()
        pilot.app.query_one("#input").value = "bob: see you at noon"  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


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
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_help_screen(snap_compare: Any) -> None:
    app = offline_app()

    async def before(pilot: Pilot[None]) -> None:
        main_scene(app)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)
