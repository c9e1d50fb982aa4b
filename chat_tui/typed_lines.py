"""What the user types: a line becomes text to say or a /command's effects, carried
out here; a paste of several lines is said line by line (asking first above a few);
typing notifications go out while a message is being written.

Nothing here waits for the network: sending goes through ``ChatSession.submit``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat_tui import commands
from chat_tui.commands import Effect
from chat_tui.model import LineKind
from chat_tui.screens.paste_confirm import PasteConfirm
from chat_tui.screens.room_list import RoomListScreen
from chat_tui.session import Typing
from chat_tui.widgets.chat_input import ChatInput

if TYPE_CHECKING:
    from chat_tui.app import ChatApp

TYPING_RESEND_SECONDS = 3.0
PASTE_ASK_LINES = 3  # a paste of more lines than this asks before it goes out
OFFLINE = "offline — not sent; your text is kept"


class TypedLines:
    """Carries out what is typed into ``app``'s input line."""

    def __init__(self, app: ChatApp) -> None:
        self.app = app
        self._typing_sent_at = 0.0
        self._typing_target = ""

    def submitted(self, line: str) -> None:
        """Enter in the input: remember the line, clear the input, do what it says."""
        if not line.strip():
            return
        chat_input = self.app.query_one(ChatInput)
        if not commands.holds_secret(line):  # Up must not bring a password back
            chat_input.remember(line)
        chat_input.value = ""
        self._typing_sent_at = 0.0
        self.run(line)

    def run(self, line: str) -> None:
        """Do what a typed line (text or /command) says."""
        for effect in commands.run(line, self.app.state):
            self.carry_out(effect, line)

    def carry_out(self, effect: Effect, typed: str = "") -> None:
        """Do what a command asked: queue network sends, open rooms and screens."""
        app = self.app
        state, session, view = app.state, app.session, app.view
        match effect:
            case commands.Note(text, kind):
                view.refresh(state.note(text, kind))
            case commands.OpenRoom(name):
                room, _ = state.ensure_room(name)
                view.switch(room.key)
            case commands.CloseRoom(name):
                state.remove_room(name)
                view.show_current()
            case commands.ShowScreen("help"):
                app.action_help()
            case commands.OpenSearch(text):
                app.open_search(text)
            case commands.CopyMode():
                app.action_copy_mode()
            case commands.ShowScreen("list"):
                app.push_screen(
                    RoomListScreen(state.room_list, state.room_list_done), self._joined_from_list
                )
            case commands.Quit(reason):
                app.quit_with(reason)
            case _ if session is None or not session.connected:
                app.query_one(ChatInput).value = typed
                view.refresh(state.note(OFFLINE, LineKind.ERROR))
            case commands.RegisterAccount(password, email):
                worker = session.register(password, email, app.post_message)
                app.run_worker(worker, group="account")
            case commands.Say(target) if session.echoes:
                state.sent(target, typed or effect.text)
                session.submit(effect)
            case commands.Say() | commands.Send() | commands.Join() | commands.Part():
                session.submit(effect)

    def _joined_from_list(self, name: str | None) -> None:
        if name:
            self.carry_out(commands.run(f"/join {name}", self.app.state)[0])

    def type_in(self, text: str) -> None:
        """Put ``text`` in the input for the user to finish (the palette's "Join a room…")."""
        chat_input = self.app.query_one(ChatInput)
        chat_input.value = text
        chat_input.cursor_position = len(text)
        chat_input.focus()

    def pasted(self, lines: list[str]) -> None:
        """Send every pasted line (Input alone would keep the first); ask above a few."""
        room = self.app.state.current_room
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

        self.app.push_screen(PasteConfirm(room.name, lines), chosen)

    def _send_lines(self, target: str, lines: list[str]) -> None:
        """Say each line as it is (a pasted "/word" is text, not a command)."""
        session = self.app.session
        if session is None or not session.connected:
            self._keep_typed(" ".join(lines), OFFLINE)
            return
        for line in lines:
            session.submit(commands.Say(target, line))

    def _keep_typed(self, text: str, error: str = "") -> None:
        chat_input = self.app.query_one(ChatInput)
        chat_input.value = text
        chat_input.cursor_position = len(text)
        if error:
            self.app.view.refresh(self.app.state.note(error, LineKind.ERROR))

    def changed(self, value: str) -> None:
        """The input changed: tell the room someone is typing (or stopped), at most
        every ``TYPING_RESEND_SECONDS``."""
        app = self.app
        room = app.state.current_room
        session = app.session
        if not app.settings.send_typing or session is None or not session.connected:
            return
        if room.is_server or value.startswith("/"):
            return
        now = time.monotonic()
        if value and now - self._typing_sent_at > TYPING_RESEND_SECONDS:
            self._typing_sent_at = now
            self._typing_target = room.name
            session.submit(Typing(room.name, "active"))
        elif not value and self._typing_sent_at and self._typing_target == room.name:
            self._typing_sent_at = 0.0
            session.submit(Typing(room.name, "done"))
