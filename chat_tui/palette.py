"""Chat commands in the command palette (Ctrl+O): join, leave, switch room, search,
members, mark all read. Each hit calls a method of the app; nothing here sends."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from chat_protocol import valid_channel
from chat_tui.command_table import room_name

if TYPE_CHECKING:
    from chat_tui.app import ChatApp

Entry = tuple[str, Callable[[], object], str]  # (text, callback, help)


class ChatCommands(Provider):
    """The chat's own commands, beside Textual's (theme, keys, quit...)."""

    @property
    def chat(self) -> ChatApp:
        return cast("ChatApp", self.app)

    def entries(self) -> list[Entry]:
        """Every command on offer right now (rooms change, so asked each time)."""
        app = self.chat
        current = app.state.current_room
        found: list[Entry] = [
            ("Join a room…", partial(app.type_in_input, "/join "), "type the room's name"),
            ("Search messages", app.action_search, "this room, or all rooms with Tab"),
            ("Toggle member list", app.action_toggle_members, "show or hide the members"),
            ("Mark all rooms read", app.action_mark_all_read, "clear every unread count"),
        ]
        if not current.is_server:
            what = "Close" if current.is_query else "Leave"
            leave = partial(app.run_line, "/leave")
            found.insert(1, (f"{what} {current.name}", leave, "/leave"))
        for room in app.state.ordered_rooms():
            if room.key != current.key:
                name = app.state.network if room.is_server else room.name
                unread = f"{room.unread} unread" if room.unread else "no unread messages"
                found.append((f"Switch to {name}", partial(app.switch_to, room.key), unread))
        return found

    async def discover(self) -> Hits:
        for text, callback, help_text in self.entries():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self.entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, text, help_text)
        # "join rust" offers to join #rust at once, without typing it again.
        verb, _, word = query.strip().partition(" ")
        name = room_name(word.strip()) if word.strip() else ""
        if verb.lower() == "join" and valid_channel(name):
            join = partial(self.chat.run_line, f"/join {name}")
            yield Hit(1.0, f"Join {name}", join, f"Join {name}", "join this room now")
