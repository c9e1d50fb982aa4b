"""What arrives from the connection worker, applied to the state and the screen.

The worker (``ChatApp.run_connection``) posts ``ClientEvent`` for protocol events, and
the history workers post ``HistoryLoaded``, ``AroundLoaded`` and ``TargetsLoaded``; the
app's handlers hand each to ``ConnectionEvents``. A worker can post its last messages
while the app shuts down; by the time they are handled the widgets are gone, so every
handler here checks ``is_running`` first.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from chat_protocol import Message
from chat_protocol.client_types import (
    AccountChanged,
    Connected,
    Disconnected,
    Event,
    LoginFailed,
    NickFallback,
    NickReclaimed,
    Received,
)
from chat_tui import commands
from chat_tui.messages import (
    AccountRegistered,
    AroundLoaded,
    HistoryLoaded,
    SendFailed,
    TargetsLoaded,
)
from chat_tui.model import ChatLine, LineKind, parse_server_time
from chat_tui.widgets.chat_input import ChatInput

if TYPE_CHECKING:
    from chat_tui.app import ChatApp

READ_MARKER_CAP = "draft/read-marker"
CUT_NOTE = "⋯ more messages here were not loaded ⋯"


def login_failed_text(event: LoginFailed) -> str:
    """One line: whose login failed, how (mechanism, numeric), why, and what now."""
    where = ", ".join(part for part in (event.mechanism, event.numeric) if part)
    how = f" ({where})" if where else ""
    then = "going on without it" if event.continuing else "not connecting without it"
    return f"login as {event.account} failed{how}: {event.reason} — {then}"


def acked(msg: Message, cap: str) -> bool:
    """Whether ``msg`` is a ``CAP ACK`` that grants ``cap``."""
    return msg.command == "CAP" and msg.param(1).upper() == "ACK" and cap in msg.params[-1].split()


class ConnectionEvents:
    """Applies connection events and loaded history to ``app``'s state and view."""

    def __init__(self, app: ChatApp) -> None:
        self.app = app
        self._targets_asked = False  # direct conversations are reopened once per run

    def client_event(self, event: Event) -> None:
        """A protocol event: a message, (re)connected, disconnected, another nick."""
        app = self.app
        if not app.is_running:
            return
        state, session, view = app.state, app.session, app.view
        if isinstance(event, Received):
            app.apply_message(event.message, event.history)
            if acked(event.message, READ_MARKER_CAP) and state.connection.state == "connected":
                self.ask_read_markers()  # granted later on (CAP NEW)
        elif isinstance(event, Connected):
            view.refresh(state.connected(str(event.server), event.nick))
            away = state.connection.away_message
            if away and session is not None:
                session.submit(commands.Send(f"AWAY :{away}"))  # the server forgot it
            if session is not None and session.read_markers:
                self.ask_read_markers()
            if session is not None and session.has_history and not self._targets_asked:
                self._targets_asked = True
                app.run_worker(session.load_targets(app.post_message), group="history")
        elif isinstance(event, Disconnected):
            view.refresh(state.disconnected(event.reason, event.retry_in))
        elif isinstance(event, NickFallback):
            text = f"nick {event.wanted} is taken; you are {event.got}"
            view.refresh(state.note(text))
            app.notify(text, title="Nick in use")
        elif isinstance(event, NickReclaimed):
            text = f"you are {event.nick} again (were {event.fallback})"
            view.refresh(state.note(text))
            app.notify(text, title="Nick back")
        elif isinstance(event, LoginFailed):
            text = login_failed_text(event)
            view.refresh(state.note(text, LineKind.ERROR, state.server_room))
            app.notify(text, title="Login failed", severity="error", timeout=10)
        elif isinstance(event, AccountChanged):
            state.connection.account = event.account
            said = f"logged in as {event.account}" if event.account else "logged out"
            view.refresh(state.note(said, room=state.server_room))
        view.refresh_status()

    def ask_read_markers(self) -> None:
        """Ask where the reader's other clients got to in each room."""
        session = self.app.session
        assert session is not None
        for room in self.app.state.ordered_rooms():
            if not room.is_server:
                session.submit(commands.Send(f"MARKREAD {room.name}"))

    def history_loaded(self, message: HistoryLoaded) -> None:
        """Older lines of a room arrived (or none: the room's history is all here)."""
        app = self.app
        room = app.state.room(message.room)
        if room is None or not app.is_running:
            return
        room.loading_history = False
        if message.failed:
            app.notify(f"history for {room.name}: {message.failed}", severity="warning")
        elif not message.messages:
            room.history_exhausted = True
        update = app.state.apply_older(message.messages)
        update.reordered.add(room.key)
        app.view.refresh(update)

    def targets_loaded(self, message: TargetsLoaded) -> None:
        """The direct conversations of the last days: back in the sidebar."""
        if self.app.is_running:
            self.app.view.refresh(self.app.state.open_conversations(message.targets))

    def around_loaded(self, message: AroundLoaded) -> None:
        """The lines around a search result arrived: put them in, show the result."""
        app = self.app
        room = app.state.room(message.room)
        if room is None or not app.is_running:
            return
        if message.failed:
            app.notify(f"{room.name}: {message.failed}", severity="warning")
        update = app.state.apply_older(message.messages)
        update.reordered.add(room.key)
        if message.cut and message.messages:  # not all the lines up to the loaded ones came
            after = parse_server_time(message.messages[-1].tags.get("time"))
            gap = ChatLine(after + timedelta(microseconds=1), LineKind.INFO, "", CUT_NOTE)
            app.state.add_line(room, gap, True, update)
        app.view.refresh(update)
        app.search_jumps.show_found(room, message.msgid, None)

    def account_registered(self, message: AccountRegistered) -> None:
        """The answer to /register: one line in the server tab (and a toast)."""
        app = self.app
        if not app.is_running:
            return
        reply = message.reply
        if reply is None:
            text, ok = f"/register: no answer ({message.failed})", False
        elif reply.ok:
            text, ok = f"registered account {reply.account}: {reply.text}", True
        else:
            text, ok = f"/register: {reply.code} — {reply.text}", False
        kind = LineKind.INFO if ok else LineKind.ERROR
        app.view.refresh(app.state.note(text, kind, app.state.server_room))
        app.notify(text, title="Account", severity="information" if ok else "error")

    def send_failed(self, message: SendFailed) -> None:
        """A line did not go out: back into the input (if empty), the reason in the room."""
        app = self.app
        if not app.is_running:
            return
        chat_input = app.query_one(ChatInput)
        if message.text and not chat_input.value:
            chat_input.value = message.text
            chat_input.cursor_position = len(message.text)
        app.view.refresh(app.state.note(message.error, LineKind.ERROR))
