"""The client's rooms as the user sees them: lines, unread counts, the current room.

``ChatState.apply`` is the only place where protocol messages change what the user
sees. It returns an ``Update`` naming what changed, so the UI redraws only that. One
small handler per command (``chat_tui.incoming``) says what a message shows; who is in
a room, its topic and modes are chat_protocol's ``SessionState`` (read through
``roster``), fed here in the order the user sees the messages. No Textual and no I/O
here: tests feed it ``Message`` objects directly.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chat_protocol import Message, casefold, is_channel
from chat_protocol.client_state import SessionState
from chat_tui.formatting import mentions
from chat_tui.ignore import IgnoreList
from chat_tui.incoming import handler_for
from chat_tui.model import SERVER_ROOM, ChatLine, LineKind, ListEntry, Room, parse_server_time
from chat_tui.notify import Alert
from chat_tui.roster import Roster
from chat_tui.update import Unsent, Update

__all__ = ["ChatState", "Connection", "ListEntry", "Unsent", "Update"]

# Commands whose sender can be ignored; the silenced ones are dropped altogether, the
# others change the member list without a line in the room.
SILENCED = frozenset({"PRIVMSG", "NOTICE", "TAGMSG", "INVITE"})
IGNORABLE = SILENCED | {"JOIN", "PART", "QUIT", "NICK"}
# Commands that concern every room their sender is in.
EVERYWHERE = frozenset({"QUIT", "NICK"})


@dataclass
class Connection:
    """What the status line shows about the link to the server."""

    state: str = "connecting"  # connecting | connected | offline
    server: str = ""
    network: str = ""  # what to call the server until it names its network
    lag: float | None = None
    retry_in: float | None = None
    away_message: str = ""  # what /away said; set again after a reconnect
    account: str | None = None  # the account the server says we are logged in to
    reason: str = ""
    attempts: int = 0  # failed attempts since the connection dropped


@dataclass(slots=True)
class OfflineLine:
    """The one line that says we are offline, and the key of its room."""

    room: str
    line: ChatLine


class ChatState:
    """All rooms, the current room, and the connection, as the user sees them."""

    def __init__(
        self,
        nick: str = "",
        server_name: str = "server",
        highlight_words: list[str] | None = None,
        ignore: list[str] | None = None,
    ) -> None:
        # What the server said about the session (nick, ISUPPORT, channels, members,
        # topics, modes, away), applied in the order the user sees it: the
        # connection's own copy runs ahead of the screen, so a QUIT shown now would
        # find its sender gone from every room there already.
        self.irc = SessionState(nick)
        self.roster = Roster(self.irc)
        self._irc_stale = False  # a new connection starts from scratch
        # Words that count as a mention of the reader, besides their nick.
        self.highlight_words = list(highlight_words or [])
        self.ignores = IgnoreList(ignore or [])
        self._hide_events = False  # applying a JOIN/PART/... of an ignored sender
        # The rooms the user is in by their choice, in join order (key -> name): kept
        # through a lost connection, remembered for the next start.
        self.chosen: dict[str, str] = {}
        self.rooms: dict[str, Room] = {}
        self.server_room = Room(SERVER_ROOM)
        self.rooms[casefold(SERVER_ROOM)] = self.server_room
        self.current: str = self.server_room.key
        self.connection = Connection(network=server_name)
        self.room_list: list[ListEntry] = []
        self.room_list_done = True
        self.focus_on_join: set[str] = set()
        self.names_requested: set[str] = set()
        self.who_requested: set[str] = set()
        # Lines sent to a channel and not yet echoed, oldest first: a "cannot send"
        # refusal gives the oldest back (only kept with echo-message, which confirms).
        self.unconfirmed: dict[str, deque[Unsent]] = {}
        # The rooms the sender of the message being applied was in before it (for a
        # QUIT or NICK, which the protocol state has applied by then).
        self.sender_rooms: list[Room] = []
        self._older = False  # applying a CHATHISTORY BEFORE page
        self._offline: OfflineLine | None = None

    # -- who we are ------------------------------------------------------------

    @property
    def nick(self) -> str:
        return self.irc.nick

    @property
    def away(self) -> bool:
        """Whether the server has us away."""
        return self.irc.is_away(self.irc.nick)

    @property
    def network(self) -> str:
        """The network's name (ISUPPORT NETWORK), else the server we were told about."""
        return self.irc.isupport.get("NETWORK") or self.connection.network

    def is_me(self, nick: str | None) -> bool:
        return self.irc.is_me(nick)

    # -- rooms ---------------------------------------------------------------

    @property
    def current_room(self) -> Room:
        return self.rooms.get(self.current, self.server_room)

    def room(self, name: str) -> Room | None:
        return self.rooms.get(casefold(name))

    def ensure_room(self, name: str) -> tuple[Room, bool]:
        """The room called ``name``, created when missing; the flag says it is new."""
        key = casefold(name)
        room = self.rooms.get(key)
        if room is not None:
            return room, False
        room = Room(name)
        self.rooms[key] = room
        return room, True

    def remove_room(self, name: str) -> None:
        key = casefold(name)
        if key == self.server_room.key or key not in self.rooms:
            return
        order = self.ordered_rooms()
        index = next(i for i, r in enumerate(order) if r.key == key)
        del self.rooms[key]
        if self.current == key:
            rest = [r for r in order if r.key != key]
            self.current = rest[min(index, len(rest) - 1)].key if rest else self.server_room.key
            self.current_room.enter_view()

    def rename_room(self, room: Room, name: str) -> None:
        """A conversation's other party changed nick: the room follows them."""
        del self.rooms[room.key]
        was_current = self.current == room.key
        room.name = name
        self.rooms[room.key] = room
        if was_current:
            self.current = room.key

    def open_conversations(self, names: list[str]) -> Update:
        """Put direct conversations in the sidebar (``CHATHISTORY TARGETS`` on connect);
        rooms and ignored senders are left out, and their history loads when opened."""
        update = Update()
        for name in names:
            if is_channel(name) or self.is_me(name) or self.ignores.matches(name):
                continue
            _, created = self.ensure_room(name)
            update.sidebar |= created
        return update

    def ordered_rooms(self) -> list[Room]:
        """Sidebar order: channels as joined, then direct conversations, then the server."""
        rooms = [r for r in self.rooms.values() if not r.is_server]
        channels = [r for r in rooms if r.is_channel]
        queries = [r for r in rooms if r.is_query]
        return [*channels, *queries, self.server_room]

    def rooms_with(self, nick: str) -> list[Room]:
        """Rooms where ``nick`` is a member, plus the direct conversation with them."""
        found = [r for name in self.roster.channels_with(nick) if (r := self.room(name))]
        query = self.room(nick)
        if query is not None and query.is_query:
            found.append(query)
        return found

    def switch(self, key: str) -> bool:
        """Make ``key`` the current room and mark it read; False when there is no such room."""
        key = casefold(key)
        if key not in self.rooms:
            return False
        if key != self.current:
            self.current_room.leave_view()
            self.current = key
            self.current_room.enter_view()
        self.current_room.mark_read()
        return True

    def mark_all_read(self) -> list[Room]:
        """Every room read up to its newest line; returns the rooms that had unread lines."""
        changed = [r for r in self.rooms.values() if r.unread or r.mentions]
        for room in changed:
            room.mark_read()
            room.leave_view()  # read up to the newest line, for the marker and MARKREAD
        return changed

    def step(self, delta: int) -> str:
        """The key of the room ``delta`` places from the current one, wrapping around."""
        order = self.ordered_rooms()
        keys = [r.key for r in order]
        index = keys.index(self.current) if self.current in keys else 0
        return keys[(index + delta) % len(keys)]

    def next_unread(self) -> str | None:
        """The room to jump to with Alt+A: rooms with mentions first, then any unread."""
        order = self.ordered_rooms()
        keys = [r.key for r in order]
        start = keys.index(self.current) if self.current in keys else 0
        rotated = order[start + 1 :] + order[: start + 1]
        for room in rotated:
            if room.mentions and room.key != self.current:
                return room.key
        for room in rotated:
            if room.unread and room.key != self.current:
                return room.key
        return None

    def sent(self, target: str, typed: str) -> None:
        """Remember a line the user typed until the server echoes it."""
        if is_channel(target):
            queue = self.unconfirmed.setdefault(casefold(target), deque(maxlen=20))
            queue.append(Unsent(self.current, target, typed))

    # -- the connection ------------------------------------------------------

    def connected(self, server: str, nick: str) -> Update:
        """Registered (again): what the server knows starts from scratch."""
        conn = self.connection
        conn.state, conn.server, conn.retry_in, conn.attempts = "connected", server, None, 0
        self.irc.nick = nick
        self._offline = None
        update = self.note(f"connected to {server} as {nick}")
        update.status = True
        return update

    def disconnected(self, reason: str, retry_in: float | None) -> Update:
        """The connection dropped or an attempt failed: one line says so, and later
        attempts update that line instead of adding one each (a night offline would
        otherwise fill the room with them)."""
        conn = self.connection
        conn.state, conn.retry_in, conn.reason = "offline", retry_in, reason
        conn.account = None  # a new connection logs in again
        # Who is where stays on screen while offline; the next connection's first line
        # starts the protocol state afresh, as the connection itself does.
        self._irc_stale = True
        update = Update(sidebar=True, status=True)
        for room in self.rooms.values():
            if not room.is_server and room.joined:
                room.gap_since = room.newest_server_time or datetime.now(UTC)
            room.joined = room.is_server or room.is_query
            room.loading_history = False
        # "127.0.0.1:6667: Connect call failed ('127.0.0.1', 6667)": the status line has
        # the server; the room line keeps it short enough for one row (but whole: "TLS
        # certificate not trusted: unable to get local issuer certificate").
        why = reason.split(": ", 1)[-1] if ": " in reason else reason
        why = re.sub(r" \(.*\)$", "", why)
        when = f", retrying in {retry_in:.0f}s" if retry_in else ""
        if self._offline is None or retry_in is None:
            conn.attempts = 0
            room = self.current_room
            line = ChatLine(datetime.now(UTC), LineKind.ERROR, "", f"disconnected ({why}){when}")
            self.add_line(room, line, True, update)
            self._offline = OfflineLine(room.key, line) if retry_in is not None else None
            return update
        conn.attempts += 1
        tries = "1 attempt" if conn.attempts == 1 else f"{conn.attempts} attempts"
        self._offline.line.text = (
            f"disconnected — {tries}{when.replace(', retrying', ', next')} ({why})"
        )
        update.rewritten.add(self._offline.room)
        return update

    # -- lines ---------------------------------------------------------------

    def add_line(self, room: Room, line: ChatLine, history: bool, update: Update) -> None:
        """Put a line in a room and count it as unread when the user is elsewhere."""
        where = room.add(line, older=self._older)
        if where is None:
            return
        (update.appended if where == "append" else update.reordered).add(room.key)
        if (
            not history
            and line.counts_as_unread
            and not room.is_server
            and (line.mention or room.is_query)
        ):
            update.alerts.append(Alert(room.name, line.nick, line.text, room.is_query))
        if room.key == self.current or not line.counts_as_unread:
            return
        if history and (room.gap_since is None or line.time <= room.gap_since):
            return  # history the reader had seen, or older than anything they saw
        if room.read_until is not None and line.time <= room.read_until:
            return  # read on another of the reader's clients
        if room.read_until is None:  # the first news here: the marker goes above it
            room.read_until = line.time - timedelta(microseconds=1)
        room.unread += 1
        if line.mention or room.is_query:
            room.mentions += 1
        update.sidebar = True

    def note(self, text: str, kind: LineKind = LineKind.INFO, room: Room | None = None) -> Update:
        """Show a client-side line (help, errors) in ``room`` or the current room."""
        update = Update()
        target = room or self.current_room
        line = ChatLine(datetime.now(UTC), kind, "", text)
        self.add_line(target, line, True, update)
        return update

    def line_from(self, msg: Message, kind: LineKind, text: str) -> ChatLine:
        nick = msg.nick or ""
        own = self.is_me(nick)
        return ChatLine(
            time=parse_server_time(msg.tags.get("time")),
            kind=kind,
            nick=nick,
            text=text,
            msgid=msg.tags.get("msgid"),
            mention=not own and kind != LineKind.EVENT and self.mentioned(text),
            own=own,
            bot="bot" in msg.tags,
        )

    def mentioned(self, text: str) -> bool:
        """Whether ``text`` names the reader's nick or one of their highlight words."""
        return any(mentions(text, word) for word in (self.nick, *self.highlight_words))

    def event_line(self, room: Room, msg: Message, text: str, history: bool, u: Update) -> None:
        """A dimmed line (joins, parts, modes) unless its sender is ignored."""
        if self._hide_events:
            return
        self.add_line(room, self.line_from(msg, LineKind.EVENT, text), history, u)

    # -- messages ------------------------------------------------------------

    def apply(self, msg: Message, history: bool = False) -> Update:
        """Apply one message from the server; unknown commands are ignored."""
        update = Update()
        nick = msg.nick or ""
        self.sender_rooms = self.rooms_with(nick) if msg.command in EVERYWHERE else []
        if not history:  # history is the past: it says nothing about who is here now
            self._follow_server(msg)
        ignored = (
            msg.command in IGNORABLE
            and msg.source is not None
            and not self.is_me(nick)
            and self.ignores.matches(msg.source)
        )
        if ignored and msg.command in SILENCED:
            return update  # not shown, not counted, no alert
        handler = handler_for(msg.command)
        if handler is not None:
            # Joins, parts and the like of an ignored sender still change the member
            # list (it says who is there) but add no line.
            self._hide_events = ignored
            try:
                handler(self, msg, history, update)
            finally:
                self._hide_events = False
        return update

    def _follow_server(self, msg: Message) -> None:
        if self._irc_stale:
            self._irc_stale = False
            self.irc.reset_connection()
        self.irc.apply(msg)

    def apply_older(self, messages: list[Message]) -> Update:
        """Apply a page of older history (oldest first, as the server sends it)."""
        update = Update()
        self._older = True
        try:
            for msg in reversed(messages):
                update.merge(self.apply(msg, history=True))
        finally:
            self._older = False
        return update
