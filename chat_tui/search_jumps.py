"""From a search to the message: the search screen opened with the last words, and a
result shown highlighted in its room, its surroundings fetched from the server's
history when they are not loaded (``ConnectionEvents.around_loaded`` finishes that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_tui.model import Room
from chat_tui.screens.search import Finder, SearchScreen
from chat_tui.search import SearchResult
from chat_tui.widgets.message_pane import MessagePane

if TYPE_CHECKING:
    from chat_tui.app import ChatApp


class SearchJumps:
    """Remembers what the last search looked for (offered again) and takes the reader
    to a result."""

    def __init__(self, app: ChatApp) -> None:
        self.app = app
        self.words = ""
        self.all_rooms = False  # whether the last search was over all rooms

    def open(self, find: Finder, words: str) -> None:
        """The search screen over the current room (or all rooms); ``words``, when given,
        are filled in and searched at once."""
        app = self.app
        current = app.state.current_room
        room = None if current.is_server else current.name
        screen = SearchScreen(find, room, words, self.all_rooms, app.tz)

        def chosen(result: SearchResult | None) -> None:
            if screen.searched is not None:
                self.words = screen.searched[0]
            if room is not None:
                self.all_rooms = screen.all_rooms
            if result is not None:
                self.go_to(result)

        app.push_screen(screen, chosen)

    def go_to(self, result: SearchResult) -> None:
        """Show the room of ``result`` with the message highlighted; lines around it are
        fetched from the server's history when they are not loaded."""
        app = self.app
        room, _ = app.state.ensure_room(result.room)
        app.view.switch(room.key)
        if self.show_found(room, result.msgid, result.seq):
            return
        session = app.session
        if result.msgid is None or session is None or not session.has_history:
            app.notify("that message is no longer loaded here", severity="warning")
            return
        oldest = room.oldest
        if oldest is None or oldest.msgid is None:  # nothing from the server here yet
            fill, until = True, None
        else:  # older than what is loaded: join the two, or the reader sees no hole
            fill, until = result.time < oldest.time, oldest.msgid
        load = session.load_around(
            room.name, result.msgid, app.post_message, fill=fill, until=until
        )
        app.run_worker(load, group="history")

    def show_found(self, room: Room, msgid: str | None, seq: int | None) -> bool:
        """Highlight the line in the pane if ``room`` is shown and the line is loaded."""
        line = room.find(msgid, seq)
        if line is None or room.key != self.app.view.shown:
            return False
        self.app.query_one(MessagePane).show_found(line.seq)
        return True
