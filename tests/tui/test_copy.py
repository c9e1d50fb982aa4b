"""Copy mode (issue 16): Ctrl+Y or /copy selects lines of the pane by keyboard, and
Enter copies their text only (no time or nick column) through OSC 52.

The clipboard is intercepted where the app hands text to the terminal: the driver's
``write`` (Textual's ``App.copy_to_clipboard`` writes OSC 52 there).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from chat_protocol import Message
from chat_tui.config import load
from chat_tui.model import ChatLine, LineKind
from chat_tui.selection import LineSelection, copied_text
from chat_tui.widgets.chat_input import ChatInput
from chat_tui.widgets.message_pane import MessagePane
from chat_tui.widgets.status_line import StatusLine
from tests.tui.scenes import main_scene, offline_app

OSC_52 = re.compile(r"\x1b\]52;c;([A-Za-z0-9+/=]*)\x07")


def pasted(written: list[str]) -> list[str]:
    """The texts put on the clipboard through OSC 52, in order."""
    return [base64.b64decode(match).decode() for data in written for match in OSC_52.findall(data)]


@pytest.mark.parametrize(
    ("start", "moves", "first", "last"),
    [
        (LineSelection(5, 5), [(-1, False)], 4, 4),
        (LineSelection(5, 5), [(-1, True), (-1, True)], 3, 5),
        (LineSelection(5, 5), [(1, True), (-3, True)], 3, 5),
        (LineSelection(5, 5), [(-2, True), (1, False)], 4, 4),
        (LineSelection(0, 0), [(-1, True)], 0, 0),
        (LineSelection(5, 5), [(9, False)], 6, 6),
    ],
)
def test_selection_moves_inside_the_lines(
    start: LineSelection, moves: list[tuple[int, bool]], first: int, last: int
) -> None:
    selection = start
    for delta, extend in moves:
        selection = selection.moved(delta, 7, extend)
    assert (selection.first, selection.last) == (first, last)


def test_copied_text_is_the_text_column_only() -> None:
    from datetime import UTC, datetime

    when = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    lines = [
        ChatLine(when, LineKind.MESSAGE, "bob", "good night, \x0304red\x03 and \x02bold\x02"),
        ChatLine(when, LineKind.ACTION, "dave", "waves"),
        ChatLine(when, LineKind.EVENT, "erin", "← erin left #general (brb)"),
    ]
    assert copied_text(lines) == "good night, red and bold\ndave waves\n← erin left #general (brb)"


async def test_ctrl_y_then_enter_copies_the_last_message() -> None:
    app = offline_app()
    written: list[str] = []
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        assert app._driver is not None
        app._driver.write = written.append  # type: ignore[method-assign]
        await pilot.press("ctrl+y")
        pane = app.query_one(MessagePane)
        assert pane.selecting and pane.has_focus
        assert app.query_one(StatusLine).note.startswith("copy: ")
        await pilot.press("enter")
        await pilot.pause()
        assert pasted(written) == ["Build #42 passed ✔"]
        assert not pane.selecting
        assert app.query_one(ChatInput).has_focus
        assert app.query_one(StatusLine).note == "copied 1 line"


async def test_shift_up_extends_and_copies_several_lines_joined() -> None:
    app = offline_app()
    written: list[str] = []
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        assert app._driver is not None
        app._driver.write = written.append  # type: ignore[method-assign]
        # From the last line up to erin's join, then two more above it: the action
        # is copied as drawn ("dave waves"), the event with its arrow.
        await pilot.press("ctrl+y", "up", "up", "shift+up", "shift+up", "y")
        await pilot.pause()
        assert pasted(written) == ["yes, looks good\ndave waves\n→ erin joined #general"]
        assert app.query_one(StatusLine).note == "copied 3 lines"


async def test_escape_leaves_without_copying_and_typing_goes_on() -> None:
    app = offline_app()
    written: list[str] = []
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        assert app._driver is not None
        app._driver.write = written.append  # type: ignore[method-assign]
        await pilot.press("ctrl+y", "up", "escape")
        await pilot.pause()
        await pilot.press("h", "i")
        assert pasted(written) == []
        assert app.query_one(ChatInput).value == "hi"
        assert app.query_one(StatusLine).note == ""


async def test_slash_copy_starts_copy_mode_and_keys_can_be_rebound() -> None:
    app = offline_app()
    app.settings.keybindings.update({"copy_selected": "c", "copy_up": "p"})
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        app.query_one(ChatInput).value = "/copy"
        await pilot.press("enter", "p", "c")
        await pilot.pause()
        assert app.clipboard == "← erin left #general (brb)"


async def test_switching_room_ends_copy_mode() -> None:
    app = offline_app()
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        await pilot.press("ctrl+y", "ctrl+n")
        await pilot.pause()
        assert not app.query_one(MessagePane).selecting
        assert app.query_one(ChatInput).has_focus
        assert app.query_one(StatusLine).note == ""


async def test_selection_stays_on_its_lines_when_history_arrives_above() -> None:
    app = offline_app()
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        await pilot.press("ctrl+y", "up", "shift+up")
        older = [
            Message.parse(
                f"@time=2024-03-04T20:0{i}:00.000Z;msgid=old{i} :bob!b@h PRIVMSG #general :old {i}"
            )
            for i in range(3)
        ]
        update = app.state.apply_older(older)
        update.reordered.add("#general")
        app.view.refresh(update)
        await pilot.pause()
        pane = app.query_one(MessagePane)
        assert pane.selecting
        assert [line.text for line in pane.selected_lines()] == [
            "→ erin joined #general",
            "← erin left #general (brb)",
        ]


async def test_copy_mode_is_not_started_under_a_dialog() -> None:
    app = offline_app()
    async with app.run_test(size=(120, 35)) as pilot:
        main_scene(app)
        await pilot.pause()
        await pilot.press("f1", "ctrl+y")
        await pilot.pause()
        assert not app.query_one(MessagePane).selecting


def test_copy_mode_keys_are_known_to_the_config(tmp_path: Path) -> None:
    config = tmp_path / "chat-tui.toml"
    config.write_text("[keybindings]\ncopy_mode = 'f4'\ncopy_selected = 'c'\n")
    settings = load(config)
    assert settings.keybindings == {"copy_mode": "f4", "copy_selected": "c"}
    assert settings.warnings == []


async def test_scrolled_up_copy_mode_starts_at_the_lowest_line_on_screen() -> None:
    app = offline_app()
    async with app.run_test(size=(100, 24)) as pilot:
        app.apply_message(Message.parse(":irc.example.net 001 alice :Welcome"))
        app.apply_message(Message.parse("@time=2024-03-05T09:00:00.000Z :alice!a@h JOIN #long"))
        for i in range(60):
            stamp = f"2024-03-05T10:{i:02d}:00.000Z"
            app.apply_message(Message.parse(f"@time={stamp} :bob!b@h PRIVMSG #long :line {i}"))
        await pilot.pause()
        pane = app.query_one(MessagePane)
        await pilot.press("pageup", "pageup")
        bottom = int(pane.scroll_y) + pane.scrollable_content_region.height - 1
        await pilot.press("ctrl+y", "enter")
        await pilot.pause()
        # The pane's rows: a banner-free room, one day rule, then "line i" on row i + 2
        # (the JOIN line is row 1).
        assert app.clipboard == f"line {bottom - 2}"
