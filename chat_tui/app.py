"""The chat-tui application: layout, key bindings, and wiring between state and widgets.

Protocol events arrive as ``ClientEvent`` messages from one long-lived worker; they
change ``ChatState``, and the ``Update`` it returns says which widgets to redraw.
Handlers never await the network: sending goes through ``ChatSession.submit``.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import timedelta, tzinfo
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input

from chat_protocol import Message, casefold
from chat_protocol.client_types import (
    Connected,
    Disconnected,
    NickFallback,
    NotConnected,
    Received,
)
from chat_tui import commands
from chat_tui.commands import Effect
from chat_tui.config import Settings
from chat_tui.keymap import COMMAND_PALETTE_KEY, bindings, key_help, read_alt_digits
from chat_tui.messages import AroundLoaded, ClientEvent, HistoryLoaded, SendFailed, TargetsLoaded
from chat_tui.model import ChatLine, LineKind, Room, format_server_time, parse_server_time
from chat_tui.notify import Notifier
from chat_tui.palette import ChatCommands
from chat_tui.remembered import RememberedRooms
from chat_tui.screens.help import HelpScreen
from chat_tui.screens.paste_confirm import PasteConfirm
from chat_tui.screens.room_list import RoomListScreen
from chat_tui.screens.room_switcher import RoomSwitcher
from chat_tui.screens.search import SearchScreen
from chat_tui.search import SearchAnswer, SearchResult, TypedQuery, find
from chat_tui.session import ChatSession, Typing
from chat_tui.state import ChatState, Unsent, Update
from chat_tui.widgets.chat_input import ChatInput
from chat_tui.widgets.member_list import MemberList
from chat_tui.widgets.message_pane import MessagePane
from chat_tui.widgets.room_sidebar import RoomEntry, RoomSidebar
from chat_tui.widgets.status_line import StatusLine
from chat_tui.widgets.topic_line import TopicLine

TYPING_RESEND_SECONDS = 3.0
# Layout by terminal width: below NARROW_WIDTH the columns get narrower and the member
# list hides (F2 still shows it); from WIDE_WIDTH on, the columns have their full width.
NARROW_WIDTH = 80
WIDE_WIDTH = 100
READ_MARKER_CAP = "draft/read-marker"
PASTE_ASK_LINES = 3  # a paste of more lines than this asks before it goes out
ROOM_ACTIONS = {"step_room", "jump_room", "next_unread", "switch_room", "toggle_members"}
CUT_NOTE = "⋯ more messages here were not loaded ⋯"
DIALOG_ACTIONS = {"scroll_pane", "room_list", "help", "search"}  # not while a dialog is open


def _acked(msg: Message, cap: str) -> bool:
    """Whether ``msg`` is a ``CAP ACK`` that grants ``cap``."""
    return msg.command == "CAP" and msg.param(1).upper() == "ACK" and cap in msg.params[-1].split()


class ChatApp(App[None]):
    """A full-screen IRC client; ``session`` None runs without a network (tests, demos)."""

    CSS_PATH = Path(__file__).with_name("chat_tui.tcss")
    TITLE = "distchat"
    COMMAND_PALETTE_BINDING = COMMAND_PALETTE_KEY
    COMMANDS = App.COMMANDS | {ChatCommands}
    BINDINGS = bindings()

    def __init__(
        self,
        settings: Settings,
        session: ChatSession | None = None,
        tz: tzinfo | None = None,
        remembered: RememberedRooms | None = None,
    ) -> None:
        super().__init__()
        self.remembered = remembered  # where the rooms the user is in are kept
        read_alt_digits()  # Alt+1..9 go to rooms in xterm-like terminals too
        self.settings = settings
        self.session = session
        self.tz = tz
        network = str(settings.servers[0]) if settings.servers else "local"
        self.state = ChatState(settings.nick, network, settings.highlight_words, settings.ignore)
        self.notifier = Notifier(
            self._write_terminal,
            bell=settings.bell,
            desktop=settings.notify,
            tmux=bool(os.environ.get("TMUX")),
        )
        self._typing_sent_at = 0.0
        self._typing_target = ""
        # Whether to show the member list, wide and narrow (F2 flips the one in use).
        self._members_wide = settings.show_members
        self._members_narrow = False
        # The key of the room the pane and the input show; ``state.current`` can move
        # without the UI (our own PART removes the room), and then the two must agree.
        self._shown = self.state.current
        # What the last search looked for, and whether in all rooms: offered again.
        self._search_words = ""
        self._search_all_rooms = False
        self._targets_asked = False  # direct conversations are reopened once per run

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield RoomSidebar(id="sidebar")
            with Vertical(id="centre"):
                yield TopicLine(id="topic")
                yield MessagePane(tz=self.tz, id="pane")
                yield ChatInput(placeholder="type a message, /help for commands", id="input")
            yield MemberList(id="members")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.theme = self.settings.theme
        self.update_keymap(self.settings.keybindings)
        self.query_one(MessagePane).timestamp_format = self.settings.timestamp_format
        self._fit_width(self.size.width)
        self.query_one(ChatInput).focus()
        self._show_current()
        self._refresh_status()
        self.set_interval(1.0, self._refresh_status)
        for warning in self.settings.warnings:  # stderr is hidden behind the full screen
            self.state.note(warning, LineKind.ERROR, self.state.server_room)
            self.notify(warning, title="Config", severity="warning", timeout=10)
        if self.session is not None:
            self.state.note(f"connecting to {', '.join(map(str, self.settings.servers))}…")
            self._show_current()
            self.run_connection()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_width(event.size.width)

    @property
    def narrow(self) -> bool:
        return self.size.width < NARROW_WIDTH

    @property
    def members_shown(self) -> bool:
        """Whether the member list is on screen at the current width."""
        return self._members_narrow if self.narrow else self._members_wide

    def _fit_width(self, width: int) -> None:
        """Column widths and member list for a terminal ``width`` columns wide."""
        narrow = width < NARROW_WIDTH
        self.set_class(narrow, "-narrow")
        self.set_class(not narrow and width < WIDE_WIDTH, "-medium")
        shown = self._members_narrow if narrow else self._members_wide
        self.set_class(not shown, "-hide-members")

    @work(exclusive=True, group="irc")
    async def run_connection(self) -> None:
        """The one long-lived worker of the connection: events become messages."""
        assert self.session is not None
        await self.session.run(self.post_message)

    # -- events from the connection -------------------------------------------

    # A worker can post its last messages while the app shuts down; by the time they
    # are handled the widgets are gone, so the handlers below (and the status timer)
    # check ``is_running``.

    def on_client_event(self, message: ClientEvent) -> None:
        if not self.is_running:
            return
        event = message.event
        state = self.state
        if isinstance(event, Received):
            self.apply_message(event.message, event.history)
            if _acked(event.message, READ_MARKER_CAP) and state.connection.state == "connected":
                self._ask_read_markers()  # granted later on (CAP NEW)
        elif isinstance(event, Connected):
            self._refresh(state.connected(str(event.server), event.nick))
            away = state.connection.away_message
            if away and self.session is not None:
                self.session.submit(commands.Send(f"AWAY :{away}"))  # the server forgot it
            if self.session is not None and self.session.read_markers:
                self._ask_read_markers()
            if self.session is not None and self.session.has_history and not self._targets_asked:
                self._targets_asked = True
                self.run_worker(self.session.load_targets(self.post_message), group="history")
        elif isinstance(event, Disconnected):
            self._refresh(state.disconnected(event.reason, event.retry_in))
        elif isinstance(event, NickFallback):
            text = f"nick {event.wanted} is taken; you are {event.got}"
            state.nick = event.got
            self._refresh(state.note(text))
            self.notify(text, title="Nick in use")
        self._refresh_status()

    def _ask_read_markers(self) -> None:
        """Ask where the reader's other clients got to in each room."""
        assert self.session is not None
        for room in self.state.ordered_rooms():
            if not room.is_server:
                self.session.submit(commands.Send(f"MARKREAD {room.name}"))

    def apply_message(self, msg: Message, history: bool = False) -> None:
        """Apply one IRC message and redraw what it changed (also used by tests)."""
        self._refresh(self.state.apply(msg, history))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        room = self.state.room(message.room)
        if room is None or not self.is_running:
            return
        room.loading_history = False
        if message.failed:
            self.notify(f"history for {room.name}: {message.failed}", severity="warning")
        elif not message.messages:
            room.history_exhausted = True
        update = self.state.apply_older(message.messages)
        update.reordered.add(room.key)
        self._refresh(update)

    def on_targets_loaded(self, message: TargetsLoaded) -> None:
        if self.is_running:
            self._refresh(self.state.open_conversations(message.targets))

    def on_around_loaded(self, message: AroundLoaded) -> None:
        """The lines around a search result arrived: put them in, show the result."""
        room = self.state.room(message.room)
        if room is None or not self.is_running:
            return
        if message.failed:
            self.notify(f"{room.name}: {message.failed}", severity="warning")
        update = self.state.apply_older(message.messages)
        update.reordered.add(room.key)
        if message.cut and message.messages:  # not all the lines up to the loaded ones came
            after = parse_server_time(message.messages[-1].tags.get("time"))
            gap = ChatLine(after + timedelta(microseconds=1), LineKind.INFO, "", CUT_NOTE)
            self.state.add_line(room, gap, True, update)
        self._refresh(update)
        self._show_found(room, message.msgid, None)

    def on_send_failed(self, message: SendFailed) -> None:
        if not self.is_running:
            return
        chat_input = self.query_one(ChatInput)
        if message.text and not chat_input.value:
            chat_input.value = message.text
            chat_input.cursor_position = len(message.text)
        self._refresh(self.state.note(message.error, LineKind.ERROR))

    # -- redrawing --------------------------------------------------------------

    def _refresh(self, update: Update) -> None:
        state = self.state
        if update.focus and update.focus in state.rooms and update.focus != state.current:
            self._switch(update.focus)
        elif state.current != self._shown:
            # The state moved on by itself (our PART, a closed or renamed conversation):
            # show the room the input now belongs to, or typing goes somewhere unseen.
            # Text typed meanwhile stays in the input, in plain view of where it will go.
            chat_input = self.query_one(ChatInput)
            typed = chat_input.value
            self._show_current()
            if typed and not chat_input.value:
                chat_input.value = typed
                chat_input.cursor_position = len(typed)
        current = state.current
        pane = self.query_one(MessagePane)
        if current in update.reordered:
            pane.reload(banner=self._banner(state.current_room))
            self._maybe_load_older()
        elif current in update.appended:
            pane.sync()
        if current in update.rewritten:
            pane.redraw()
        if current in update.members:
            self._refresh_members()
        if current in update.topic:
            self._refresh_topic()
        if update.sidebar or update.appended or update.reordered:
            self._refresh_sidebar()
        if update.status:
            self._refresh_status()
        if update.room_list and isinstance(self.screen, RoomListScreen):
            self.screen.update_entries(state.room_list, state.room_list_done)
        for toast in update.toasts:
            self.notify(toast)
        for alert in update.alerts:
            shown = casefold(alert.room) == self._shown and self.screen is self.screen_stack[0]
            self.notifier.alert(alert, in_view=shown and self.app_focus)
        if update.give_back is not None:
            self._give_back(update.give_back)
        if update.chosen and self.remembered is not None:
            self.remembered.save(list(state.chosen.values()))

    def _write_terminal(self, data: str) -> None:
        """Write escape sequences (bell, notifications) straight to the terminal."""
        if self._driver is not None and not self.is_headless:
            self._driver.write(data)

    def _give_back(self, unsent: Unsent) -> None:
        """Put a refused line back where it was typed, unless something new is there."""
        room = self.state.rooms.get(unsent.room)
        if room is None:
            return
        if room.key == self._shown:
            chat_input = self.query_one(ChatInput)
            if not chat_input.value:
                chat_input.value = unsent.typed
                chat_input.cursor_position = len(unsent.typed)
        elif not room.draft:
            room.draft = unsent.typed

    def _banner(self, room: Room) -> str:
        if room.is_server:
            return ""
        if room.loading_history:
            return "loading older messages…"
        if room.history_exhausted:
            return "— beginning of the conversation —"
        if self.session is not None and self.session.connected and not self.session.has_history:
            return "— this server keeps no history —"
        return ""

    def _show_current(self) -> None:
        room = self.state.current_room
        self._shown = self.state.current
        self.query_one(MessagePane).show(
            room.lines, room.scroll_anchor, self._banner(room), room.marker
        )
        chat_input = self.query_one(ChatInput)
        chat_input.value = room.draft
        chat_input.cursor_position = len(room.draft)
        self._refresh_topic()
        self._refresh_members()
        self._refresh_sidebar()
        self._refresh_status()
        self._maybe_load_older()

    def _refresh_topic(self) -> None:
        room = self.state.current_room
        topic = self.query_one(TopicLine)
        topic.room = self.state.connection.network if room.is_server else room.name
        if room.is_query:
            topic.topic = f"direct conversation with {room.name}"
        else:
            topic.topic = room.topic

    def _refresh_members(self) -> None:
        room = self.state.current_room
        self.query_one(MemberList).set_members(room.sorted_members(), room.bots, room.away)
        chat_input = self.query_one(ChatInput)
        chat_input.nicks = [nick for _, nick in room.sorted_members() if nick != self.state.nick]
        chat_input.rooms = [r.name for r in self.state.ordered_rooms() if r.is_channel]

    def _refresh_sidebar(self) -> None:
        self.query_one(RoomSidebar).set_rooms(self.room_entries(), self.state.current)

    def room_entries(self) -> list[RoomEntry]:
        state = self.state
        return [
            RoomEntry(
                room.key,
                state.connection.network if room.is_server else room.name,
                room.unread,
                room.mentions,
                room.joined or not room.is_channel,
            )
            for room in state.ordered_rooms()
        ]

    def _refresh_status(self) -> None:
        if not self.is_running:  # the once-a-second timer can fire during shutdown
            return
        state, status = self.state, self.query_one(StatusLine)
        conn = state.connection
        status.state = conn.state
        status.server = conn.server
        status.nick = state.nick
        status.away = conn.away
        status.retry_in = conn.retry_in
        status.lag = self.session.lag if self.session is not None else conn.lag
        status.typing = tuple(state.current_room.typing_now())

    # -- room switching ---------------------------------------------------------

    def _switch(self, key: str) -> None:
        state = self.state
        old = state.rooms.get(self._shown)
        read_before = old.read_until if old is not None else None
        if old is not None:
            old.draft = self.query_one(ChatInput).value
            old.scroll_anchor = self.query_one(MessagePane).anchor()
        if state.switch(key):
            self._show_current()
        if old is not None and old.read_until != read_before:
            self._mark_read_on_server(old)

    def _mark_read_on_server(self, room: Room) -> None:
        """Tell the server how far the reader got (draft/read-marker), so their other
        clients and their next start agree."""
        session = self.session
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

    def _maybe_load_older(self) -> None:
        """Ask for older lines when the reader sits at the top of a room that has more."""
        room = self.state.current_room
        pane = self.query_one(MessagePane)
        if (
            self.session is None
            or not self.session.connected
            or not self.session.has_history
            or room.is_server
            or (room.is_channel and not room.joined)
            or room.loading_history
            or room.history_exhausted
            or pane.scroll_y > 0
        ):
            return
        oldest = room.oldest
        room.loading_history = True
        pane.set_banner(self._banner(room))
        before = oldest.msgid if oldest is not None and oldest.msgid else None
        self.run_worker(
            self.session.load_older(room.name, before, self.post_message), group="history"
        )

    @on(MessagePane.NearTop)
    def _near_top(self) -> None:
        self._maybe_load_older()

    @on(RoomSidebar.Selected)
    def _sidebar_selected(self, message: RoomSidebar.Selected) -> None:
        self._switch(message.key)

    # -- input ----------------------------------------------------------------

    @on(Input.Submitted, "#input")
    def _submitted(self, event: Input.Submitted) -> None:
        chat_input = self.query_one(ChatInput)
        line = event.value
        if not line.strip():
            return
        chat_input.remember(line)
        chat_input.value = ""
        self._typing_sent_at = 0.0
        self.run_line(line)

    def run_line(self, line: str) -> None:
        """Do what a typed line (text or /command) says."""
        for effect in commands.run(line, self.state):
            self.carry_out(effect, line)

    def type_in_input(self, text: str) -> None:
        """Put ``text`` in the input for the user to finish (the palette's "Join a room…")."""
        chat_input = self.query_one(ChatInput)
        chat_input.value = text
        chat_input.cursor_position = len(text)
        chat_input.focus()

    @on(ChatInput.PastedLines)
    def _pasted(self, message: ChatInput.PastedLines) -> None:
        """Send every pasted line (Input alone would keep the first); ask above a few."""
        lines = message.lines
        room = self.state.current_room
        if room.is_server:
            self._keep_typed(" ".join(lines), "pasting needs a room or conversation")
            return
        if len(lines) <= PASTE_ASK_LINES:
            self._send_lines(room.name, lines)
            return

        def chosen(choice: str | None) -> None:
            if choice == "lines":
                self._send_lines(room.name, lines)
            elif choice == "one":
                self._send_lines(room.name, [" ".join(line.strip() for line in lines)])
            else:
                self._keep_typed(" ".join(lines))

        self.push_screen(PasteConfirm(room.name, lines), chosen)

    def _send_lines(self, target: str, lines: list[str]) -> None:
        """Say each line as it is (a pasted "/word" is text, not a command)."""
        if self.session is None or not self.session.connected:
            self._keep_typed(" ".join(lines), "offline — not sent; your text is kept")
            return
        for line in lines:
            self.session.submit(commands.Say(target, line))

    def _keep_typed(self, text: str, error: str = "") -> None:
        chat_input = self.query_one(ChatInput)
        chat_input.value = text
        chat_input.cursor_position = len(text)
        if error:
            self._refresh(self.state.note(error, LineKind.ERROR))

    def carry_out(self, effect: Effect, typed: str = "") -> None:
        """Do what a command asked: queue network sends, open rooms and screens."""
        state = self.state
        match effect:
            case commands.Note(text, kind):
                self._refresh(state.note(text, kind))
            case commands.OpenRoom(name):
                room, _ = state.ensure_room(name)
                self._switch(room.key)
            case commands.CloseRoom(name):
                state.remove_room(name)
                self._show_current()
            case commands.ShowScreen("help"):
                self.action_help()
            case commands.OpenSearch(text):
                self.open_search(text)
            case commands.ShowScreen("list"):
                self.push_screen(
                    RoomListScreen(state.room_list, state.room_list_done), self._joined_from_list
                )
            case commands.Quit(reason):
                self.quit_with(reason)
            case _ if self.session is None or not self.session.connected:
                self.query_one(ChatInput).value = typed
                self._refresh(state.note("offline — not sent; your text is kept", LineKind.ERROR))
            case commands.Say(target) if self.session.echoes:
                state.sent(target, typed or effect.text)
                self.session.submit(effect)
            case commands.Say() | commands.Send() | commands.Join() | commands.Part():
                self.session.submit(effect)

    def _joined_from_list(self, name: str | None) -> None:
        if name:
            self.carry_out(commands.run(f"/join {name}", self.state)[0])

    @on(Input.Changed, "#input")
    def _typing(self, event: Input.Changed) -> None:
        room = self.state.current_room
        if not self.settings.send_typing or self.session is None or not self.session.connected:
            return
        if room.is_server or event.value.startswith("/"):
            return
        now = time.monotonic()
        if event.value and now - self._typing_sent_at > TYPING_RESEND_SECONDS:
            self._typing_sent_at = now
            self._typing_target = room.name
            self.session.submit(Typing(room.name, "active"))
        elif not event.value and self._typing_sent_at and self._typing_target == room.name:
            self._typing_sent_at = 0.0
            self.session.submit(Typing(room.name, "done"))

    # -- actions ----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Room keys do nothing while a dialog (room list, switcher, help) is open.
        if action in ROOM_ACTIONS or action in DIALOG_ACTIONS:
            return self.screen is self.screen_stack[0]
        return True

    def switch_to(self, key: str) -> None:
        self._switch(key)

    def action_mark_all_read(self) -> None:
        for room in self.state.mark_all_read():
            self._mark_read_on_server(room)
        self._refresh_sidebar()

    def action_step_room(self, delta: int) -> None:
        self._switch(self.state.step(delta))

    def action_jump_room(self, number: int) -> None:
        rooms = self.state.ordered_rooms()
        if 0 < number <= len(rooms):
            self._switch(rooms[number - 1].key)

    def action_next_unread(self) -> None:
        key = self.state.next_unread()
        if key is None:
            self.bell()
        else:
            self._switch(key)

    def action_switch_room(self) -> None:
        def chosen(key: str | None) -> None:
            if key:
                self._switch(key)

        self.push_screen(RoomSwitcher(self.room_entries(), self.state.current), chosen)

    def action_toggle_members(self) -> None:
        if self.narrow:
            self._members_narrow = not self._members_narrow
        else:
            self._members_wide = not self._members_wide
        self._fit_width(self.size.width)

    def action_room_list(self) -> None:
        for effect in commands.run("/list", self.state):
            self.carry_out(effect)

    def action_search(self) -> None:
        self.open_search(self._search_words)

    # -- search -------------------------------------------------------------------

    def open_search(self, words: str) -> None:
        """The search screen over the current room (or all rooms); ``words``, when given,
        are filled in and searched at once."""
        room = None if self.state.current_room.is_server else self.state.current_room.name
        screen = SearchScreen(self._find, room, words, self._search_all_rooms, self.tz)

        def chosen(result: SearchResult | None) -> None:
            if screen.searched is not None:
                self._search_words = screen.searched[0]
            if room is not None:
                self._search_all_rooms = screen.all_rooms
            if result is not None:
                self.go_to_result(result)

        self.push_screen(screen, chosen)

    async def _find(self, query: TypedQuery, room: str | None) -> SearchAnswer:
        return await find(self.session, self.state, query, room)

    def go_to_result(self, result: SearchResult) -> None:
        """Show the room of ``result`` with the message highlighted; lines around it are
        fetched from the server's history when they are not loaded."""
        room, _ = self.state.ensure_room(result.room)
        self._switch(room.key)
        if self._show_found(room, result.msgid, result.seq):
            return
        session = self.session
        if result.msgid is None or session is None or not session.has_history:
            self.notify("that message is no longer loaded here", severity="warning")
            return
        oldest = room.oldest
        if oldest is None or oldest.msgid is None:  # nothing from the server here yet
            fill, until = True, None
        else:  # older than what is loaded: join the two, or the reader sees no hole
            fill, until = result.time < oldest.time, oldest.msgid
        load = session.load_around(
            room.name, result.msgid, self.post_message, fill=fill, until=until
        )
        self.run_worker(load, group="history")

    def _show_found(self, room: Room, msgid: str | None, seq: int | None) -> bool:
        """Highlight the line in the pane if ``room`` is shown and the line is loaded."""
        line = room.find(msgid, seq)
        if line is None or room.key != self._shown:
            return False
        self.query_one(MessagePane).show_found(line.seq)
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_help()))

    def key_help(self) -> list[tuple[str, str]]:
        """(keys, description) for every app binding, as rebound by the config."""
        return key_help(self.settings.keybindings)

    def action_scroll_pane(self, direction: int) -> None:
        self.query_one(MessagePane).page(direction)

    async def action_quit(self) -> None:
        self.quit_with("Leaving")

    def quit_with(self, reason: str) -> None:
        """Say goodbye to the server (in a worker), then exit."""
        if self.session is None:
            self.exit()
            return

        room = self.state.current_room
        read_before = room.read_until
        room.leave_view()
        marker = room.read_until != read_before and self.session.read_markers

        async def goodbye() -> None:
            assert self.session is not None
            if marker and room.read_until is not None and self.session.connected:
                stamp = format_server_time(room.read_until)
                with contextlib.suppress(NotConnected, OSError, ValueError):
                    await self.session.client.send(f"MARKREAD {room.name} timestamp={stamp}")
            await self.session.close(reason)
            self.exit()

        self.run_worker(goodbye(), group="quit", exclusive=True)
