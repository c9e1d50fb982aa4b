"""The chat's commands in the command palette (Ctrl+O), chosen the way a user does:
open it, type a few letters, pick the hit."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from chat_tui.app import ChatApp
from chat_tui.screens.search import SearchScreen
from chat_tui.widgets.chat_input import ChatInput
from tests.tui.live import SIZE, wait_until
from tests.tui.scenes import main_scene, offline_app


async def choose(pilot: Pilot[None], typed: str, expected: str) -> None:
    """Open the palette, type ``typed``, and pick the hit whose text is ``expected``."""
    app = pilot.app
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), "palette")
    await pilot.press(*typed)

    def prompts() -> list[str]:
        found = app.screen.query(CommandList)
        if not found:
            return []
        options = found.first().options
        return [str(getattr(o.prompt, "plain", o.prompt)).splitlines()[0] for o in options]

    await wait_until(pilot, lambda: expected in prompts(), f"hit {expected!r}")
    await pilot.pause(0.2)  # hits arrive one provider at a time: let the list settle
    for _ in range(prompts().index(expected) + 1):
        await pilot.press("down")
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, CommandPalette), "closed")
    await pilot.pause()


def scene() -> ChatApp:
    return offline_app()


async def test_switch_to_a_room() -> None:
    app = scene()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        await pilot.press("alt+1")
        await choose(pilot, "switch random", "Switch to #random")
        assert app.state.current == "#random"


async def test_mark_all_read_clears_every_count() -> None:
    app = scene()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        await pilot.press("alt+1")
        assert any(r.unread for r in app.state.rooms.values())
        await choose(pilot, "mark all", "Mark all rooms read")
        assert not any(r.unread or r.mentions for r in app.state.rooms.values())
        assert all(entry.unread == 0 for entry in app.room_entries())


async def test_join_asks_for_the_name_in_the_input() -> None:
    app = scene()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        await pilot.press("alt+1")
        await choose(pilot, "join a room", "Join a room…")
        chat_input = app.query_one(ChatInput)
        assert chat_input.value == "/join " and chat_input.has_focus


async def test_join_with_a_name_joins_at_once() -> None:
    app = scene()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        await pilot.press("alt+1")
        await choose(pilot, "join rust", "Join #rust")
        assert "#rust" in app.state.focus_on_join  # the /join ran (offline: not sent)
        assert app.query_one(ChatInput).value == "/join #rust"


async def test_toggle_members_search_and_close() -> None:
    app = scene()
    async with app.run_test(size=SIZE) as pilot:
        main_scene(app)
        await pilot.press("alt+1")
        shown = app.members_shown
        await choose(pilot, "toggle mem", "Toggle member list")
        assert app.members_shown is not shown
        await choose(pilot, "switch bob", "Switch to bob")
        await choose(pilot, "close bob", "Close bob")
        assert app.state.room("bob") is None
        await choose(pilot, "search mess", "Search messages")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), "search screen")
