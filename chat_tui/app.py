"""The chat-tui application: layout, key bindings, and wiring between state and widgets.

Protocol events arrive as ``ClientEvent`` messages from one long-lived worker; they
change ``ChatState``, and the ``Update`` it returns says which widgets to redraw.
Handlers never await the network: sending goes through ``ChatSession.submit``.
"""

from __future__ import annotations

import contextlib
import os
from datetime import tzinfo
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Footer, Input

from chat_protocol import Message
from chat_protocol.client_types import NotConnected
from chat_tui import commands
from chat_tui.commands import Effect
from chat_tui.config import Settings
from chat_tui.connection_events import CUT_NOTE as CUT_NOTE  # where tests look for it
from chat_tui.connection_events import ConnectionEvents
from chat_tui.keymap import (
    COMMAND_PALETTE_KEY,
    bindings,
    copy_mode_hint,
    key_help,
    read_alt_digits,
)
from chat_tui.messages import (
    AccountRegistered,
    AroundLoaded,
    ClientEvent,
    HistoryLoaded,
    SendFailed,
    TargetsLoaded,
)
from chat_tui.model import LineKind, Room, format_server_time
from chat_tui.notify import Notifier
from chat_tui.palette import ChatCommands
from chat_tui.remembered import RememberedRooms
from chat_tui.room_view import RoomView
from chat_tui.screens.help import HelpScreen
from chat_tui.screens.room_switcher import RoomSwitcher
from chat_tui.search import SearchAnswer, SearchResult, TypedQuery, find
from chat_tui.search_jumps import SearchJumps
from chat_tui.selection import copied_text
from chat_tui.session import ChatSession
from chat_tui.state import ChatState
from chat_tui.terminal import TerminalWatch
from chat_tui.typed_lines import TypedLines
from chat_tui.widgets.chat_input import ChatInput
from chat_tui.widgets.member_list import MemberList
from chat_tui.widgets.message_pane import MessagePane
from chat_tui.widgets.room_sidebar import RoomEntry, RoomSidebar
from chat_tui.widgets.status_line import StatusLine
from chat_tui.widgets.topic_line import TopicLine

# Layout by terminal width: below NARROW_WIDTH the columns get narrower and the member
# list hides (F2 still shows it); from WIDE_WIDTH on, the columns have their full width.
NARROW_WIDTH = 80
WIDE_WIDTH = 100
ROOM_ACTIONS = {"step_room", "jump_room", "next_unread", "switch_room", "toggle_members"}
# Not while a dialog is open:
DIALOG_ACTIONS = {"scroll_pane", "room_list", "help", "search", "copy_mode"}
COPIED_NOTE_SECONDS = 4.0


class ChatApp(App[None]):
    """A full-screen IRC client; ``session`` None runs without a network (tests, demos).

    The app composes the widgets, holds the bindings and hands the work to the parts
    it owns: ``view`` (the room on screen, widgets kept in step with the state),
    ``connection_events`` (what the connection worker posts), ``typed`` (the input
    line and the commands) and ``search_jumps`` (from a search result to its message).
    """

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
        self.terminal = TerminalWatch()  # quit if the terminal goes away (terminal.py)
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
        # Whether to show the member list, wide and narrow (F2 flips the one in use).
        self._members_wide = settings.show_members
        self._members_narrow = False
        self.view = RoomView(self)
        self.connection_events = ConnectionEvents(self)
        self.typed = TypedLines(self)
        self.search_jumps = SearchJumps(self)
        self._note_timer: Timer | None = None

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
        self.set_interval(1.0, self._quit_without_terminal)
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

    def _write_terminal(self, data: str) -> None:
        """Write escape sequences (bell, notifications) straight to the terminal."""
        if self._driver is not None and not self.is_headless:
            self._driver.write(data)

    # -- the connection ---------------------------------------------------------

    @work(exclusive=True, group="irc")
    async def run_connection(self) -> None:
        """The one long-lived worker of the connection: events become messages."""
        assert self.session is not None
        await self.session.run(self.post_message)

    def on_client_event(self, message: ClientEvent) -> None:
        self.connection_events.client_event(message.event)

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        self.connection_events.history_loaded(message)

    def on_targets_loaded(self, message: TargetsLoaded) -> None:
        self.connection_events.targets_loaded(message)

    def on_around_loaded(self, message: AroundLoaded) -> None:
        self.connection_events.around_loaded(message)

    def on_send_failed(self, message: SendFailed) -> None:
        self.connection_events.send_failed(message)

    def on_account_registered(self, message: AccountRegistered) -> None:
        self.connection_events.account_registered(message)

    def apply_message(self, msg: Message, history: bool = False) -> None:
        """Apply one IRC message and redraw what it changed (also used by tests)."""
        self.view.refresh(self.state.apply(msg, history))

    # -- the view -----------------------------------------------------------------

    def _show_current(self) -> None:
        self.view.show_current()

    def _refresh_status(self) -> None:
        self.view.refresh_status()

    def _quit_without_terminal(self) -> None:
        if self.terminal.gone():
            self.exit(message="chat-tui: the terminal is gone; quitting")

    def _switch(self, key: str) -> None:
        self.view.switch(key)

    def _banner(self, room: Room) -> str:
        return self.view.banner(room)

    def room_entries(self) -> list[RoomEntry]:
        return self.view.room_entries()

    @on(MessagePane.NearTop)
    def _near_top(self) -> None:
        self.view.maybe_load_older()

    @on(RoomSidebar.Selected)
    def _sidebar_selected(self, message: RoomSidebar.Selected) -> None:
        self._switch(message.key)

    # -- input ----------------------------------------------------------------

    @on(Input.Submitted, "#input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.typed.submitted(event.value)

    @on(ChatInput.PastedLines)
    def _pasted(self, message: ChatInput.PastedLines) -> None:
        self.typed.pasted(message.lines)

    @on(Input.Changed, "#input")
    def _typing(self, event: Input.Changed) -> None:
        self.typed.changed(event.value)

    def run_line(self, line: str) -> None:
        """Do what a typed line (text or /command) says."""
        self.typed.run(line)

    def carry_out(self, effect: Effect, typed: str = "") -> None:
        """Do what a command asked: queue network sends, open rooms and screens."""
        self.typed.carry_out(effect, typed)

    def type_in_input(self, text: str) -> None:
        """Put ``text`` in the input for the user to finish (the palette's "Join a room…")."""
        self.typed.type_in(text)

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
            self.view.mark_read_on_server(room)
        self.view.refresh_sidebar()

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
        self.open_search(self.search_jumps.words)

    def open_search(self, words: str) -> None:
        """The search screen over the current room (or all rooms); ``words``, when given,
        are filled in and searched at once."""
        self.search_jumps.open(self._find, words)

    async def _find(self, query: TypedQuery, room: str | None) -> SearchAnswer:
        return await find(self.session, self.state, query, room)

    def go_to_result(self, result: SearchResult) -> None:
        """Show the room of ``result`` with the message highlighted."""
        self.search_jumps.go_to(result)

    # -- copy mode ------------------------------------------------------------------

    def action_copy_mode(self) -> None:
        """Select lines of the pane with the keyboard and copy their text (OSC 52)."""
        pane = self.query_one(MessagePane)
        if pane.selecting:
            return
        if not pane.start_selecting():
            self.bell()
            return
        self._status_note(copy_mode_hint(self.settings.keybindings))

    @on(MessagePane.CopyModeLeft)
    def _copy_mode_left(self, message: MessagePane.CopyModeLeft) -> None:
        if not self.is_running:
            return
        self.query_one(ChatInput).focus()
        if not message.lines:
            self._status_note("")
            return
        self.copy_to_clipboard(copied_text(message.lines))
        count = len(message.lines)
        self._status_note(f"copied {count} line{'s' if count != 1 else ''}", COPIED_NOTE_SECONDS)

    def _status_note(self, text: str, seconds: float | None = None) -> None:
        """Show ``text`` in the status line (for ``seconds``, or until replaced)."""
        if self._note_timer is not None:
            self._note_timer.stop()
            self._note_timer = None
        self.query_one(StatusLine).note = text
        if seconds is not None:
            self._note_timer = self.set_timer(seconds, lambda: self._status_note(""))

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
