"""What the screen shows of ``ChatState``: the room on view, and the widgets kept in
step with it.

An ``Update`` from the state says what changed; ``RoomView.refresh`` redraws only
that. Switching rooms keeps the room left behind (its draft, the reader's place, how
far they read, told to the server with ``draft/read-marker``), and a room shown at
its top asks for older lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_protocol import casefold
from chat_tui import commands
from chat_tui.model import Room, format_server_time
from chat_tui.screens.room_list import RoomListScreen
from chat_tui.update import Unsent, Update
from chat_tui.widgets.chat_input import ChatInput
from chat_tui.widgets.member_list import MemberList
from chat_tui.widgets.message_pane import MessagePane
from chat_tui.widgets.room_sidebar import RoomEntry, RoomSidebar
from chat_tui.widgets.status_line import StatusLine
from chat_tui.widgets.topic_line import TopicLine

if TYPE_CHECKING:
    from chat_tui.app import ChatApp


class RoomView:
    """Keeps the pane, input, topic, members, sidebar and status line in step with the
    state of ``app``."""

    def __init__(self, app: ChatApp) -> None:
        self.app = app
        # The key of the room the pane and the input show; ``state.current`` can move
        # without the UI (our own PART removes the room), and then the two must agree.
        self.shown = app.state.current

    def refresh(self, update: Update) -> None:
        """Redraw what ``update`` says changed; ring, notify and remember as it asks."""
        app, state = self.app, self.app.state
        if update.focus and update.focus in state.rooms and update.focus != state.current:
            self.switch(update.focus)
        elif state.current != self.shown:
            # The state moved on by itself (our PART, a closed or renamed conversation):
            # show the room the input now belongs to, or typing goes somewhere unseen.
            # Text typed meanwhile stays in the input, in plain view of where it will go.
            chat_input = app.query_one(ChatInput)
            typed = chat_input.value
            self.show_current()
            if typed and not chat_input.value:
                chat_input.value = typed
                chat_input.cursor_position = len(typed)
        current = state.current
        pane = app.query_one(MessagePane)
        if current in update.reordered:
            pane.reload(banner=self.banner(state.current_room))
            self.maybe_load_older()
        elif current in update.appended:
            pane.sync()
        if current in update.rewritten:
            pane.redraw()
        if current in update.members:
            self.refresh_members()
        if current in update.topic:
            self.refresh_topic()
        if update.sidebar or update.appended or update.reordered:
            self.refresh_sidebar()
        if update.status:
            self.refresh_status()
        if update.room_list and isinstance(app.screen, RoomListScreen):
            app.screen.update_entries(state.room_list, state.room_list_done)
        for toast in update.toasts:
            app.notify(toast)
        for alert in update.alerts:
            shown = casefold(alert.room) == self.shown and app.screen is app.screen_stack[0]
            app.notifier.alert(alert, in_view=shown and app.app_focus)
        if update.give_back is not None:
            self.give_back(update.give_back)
        if update.chosen and app.remembered is not None:
            app.remembered.save(list(state.chosen.values()))

    def give_back(self, unsent: Unsent) -> None:
        """Put a refused line back where it was typed, unless something new is there."""
        room = self.app.state.rooms.get(unsent.room)
        if room is None:
            return
        if room.key == self.shown:
            chat_input = self.app.query_one(ChatInput)
            if not chat_input.value:
                chat_input.value = unsent.typed
                chat_input.cursor_position = len(unsent.typed)
        elif not room.draft:
            room.draft = unsent.typed

    def banner(self, room: Room) -> str:
        """The pane's top row for ``room``: loading, beginning, or no history here."""
        session = self.app.session
        if room.is_server:
            return ""
        if room.loading_history:
            return "loading older messages…"
        if room.history_exhausted:
            return "— beginning of the conversation —"
        if session is not None and session.connected and not session.has_history:
            return "— this server keeps no history —"
        return ""

    def show_current(self) -> None:
        """Show the state's current room in every widget."""
        app = self.app
        room = app.state.current_room
        self.shown = app.state.current
        app.query_one(MessagePane).show(
            room.lines, room.scroll_anchor, self.banner(room), room.marker
        )
        chat_input = app.query_one(ChatInput)
        chat_input.value = room.draft
        chat_input.cursor_position = len(room.draft)
        self.refresh_topic()
        self.refresh_members()
        self.refresh_sidebar()
        self.refresh_status()
        self.maybe_load_older()

    def refresh_topic(self) -> None:
        state = self.app.state
        room = state.current_room
        topic = self.app.query_one(TopicLine)
        topic.room = state.network if room.is_server else room.name
        if room.is_query:
            topic.topic = f"direct conversation with {room.name}"
        else:
            topic.topic = state.roster.topic(room.name)

    def refresh_members(self) -> None:
        state = self.app.state
        room = state.current_room
        members = state.roster.members(room.name) if room.is_channel else []
        self.app.query_one(MemberList).set_members(members)
        chat_input = self.app.query_one(ChatInput)
        chat_input.nicks = [m.nick for m in members if not state.is_me(m.nick)]
        chat_input.rooms = [r.name for r in state.ordered_rooms() if r.is_channel]

    def refresh_sidebar(self) -> None:
        self.app.query_one(RoomSidebar).set_rooms(self.room_entries(), self.app.state.current)

    def room_entries(self) -> list[RoomEntry]:
        """The sidebar's rows (also the room switcher's), in sidebar order."""
        state = self.app.state
        return [
            RoomEntry(
                room.key,
                state.network if room.is_server else room.name,
                room.unread,
                room.mentions,
                room.joined or not room.is_channel,
            )
            for room in state.ordered_rooms()
        ]

    def refresh_status(self) -> None:
        app = self.app
        if not app.is_running:  # the once-a-second timer can fire during shutdown
            return
        state, status = app.state, app.query_one(StatusLine)
        conn = state.connection
        status.state = conn.state
        status.server = conn.server
        status.nick = state.nick
        status.account = conn.account
        status.away = state.away
        status.retry_in = conn.retry_in
        status.lag = app.session.lag if app.session is not None else conn.lag
        status.typing = tuple(state.current_room.typing_now())

    # -- room switching ---------------------------------------------------------

    def switch(self, key: str) -> None:
        """Show the room ``key``; the room left keeps its draft and the reader's place."""
        app, state = self.app, self.app.state
        old = state.rooms.get(self.shown)
        read_before = old.read_until if old is not None else None
        if old is not None:
            old.draft = app.query_one(ChatInput).value
            old.scroll_anchor = app.query_one(MessagePane).reading_place()
        if state.switch(key):
            self.show_current()
        if old is not None and old.read_until != read_before:
            self.mark_read_on_server(old)

    def mark_read_on_server(self, room: Room) -> None:
        """Tell the server how far the reader got (draft/read-marker), so their other
        clients and their next start agree."""
        session = self.app.session
        if (
            session is None
            or not session.connected
            or not session.read_markers
            or room.is_server
            or room.read_until is None
        ):
            return
        stamp = format_server_time(room.read_until)
        session.submit(commands.Send(f"MARKREAD {room.name} timestamp={stamp}"))

    def maybe_load_older(self) -> None:
        """Ask for older lines when the reader sits at the top of a room that has more."""
        app = self.app
        room = app.state.current_room
        pane = app.query_one(MessagePane)
        session = app.session
        if (
            session is None
            or not session.connected
            or not session.has_history
            or room.is_server
            or (room.is_channel and not room.joined)
            or room.loading_history
            or room.history_exhausted
            or pane.scroll_y > 0
        ):
            return
        oldest = room.oldest
        room.loading_history = True
        pane.set_banner(self.banner(room))
        before = oldest.msgid if oldest is not None and oldest.msgid else None
        app.run_worker(session.load_older(room.name, before, app.post_message), group="history")
