"""Apply IRC messages to the client's rooms: one small handler per command.

``ChatState.apply`` is the only place where protocol messages change what the user
sees. It returns an ``Update`` naming what changed, so the UI redraws only that.
No Textual and no I/O here: tests feed it ``Message`` objects directly.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chat_protocol import Message, casefold, is_channel
from chat_protocol import numerics as n
from chat_protocol.servertime import parse_datetime
from chat_tui.formatting import mentions
from chat_tui.ignore import IgnoreList
from chat_tui.model import (
    SERVER_ROOM,
    TYPING_ACTIVE_SECONDS,
    TYPING_PAUSED_SECONDS,
    ChatLine,
    LineKind,
    Room,
    parse_server_time,
)
from chat_tui.notify import Alert


@dataclass
class Update:
    """What one applied message changed; the app refreshes only these parts."""

    appended: set[str] = field(default_factory=set)  # room keys with lines at the end
    reordered: set[str] = field(default_factory=set)  # room keys with lines inserted above
    sidebar: bool = False
    members: set[str] = field(default_factory=set)
    topic: set[str] = field(default_factory=set)
    rewritten: set[str] = field(default_factory=set)  # room keys with a line changed in place
    status: bool = False
    room_list: bool = False
    focus: str | None = None  # a room key the user should now look at
    toasts: list[str] = field(default_factory=list)
    give_back: Unsent | None = None  # typed text the server refused, for the input again
    alerts: list[Alert] = field(default_factory=list)  # mentions and DMs, for the bell
    chosen: bool = False  # the user joined or left a room (``ChatState.chosen`` changed)

    def merge(self, other: Update) -> None:
        self.appended |= other.appended
        self.reordered |= other.reordered
        self.sidebar |= other.sidebar
        self.members |= other.members
        self.topic |= other.topic
        self.rewritten |= other.rewritten
        self.status |= other.status
        self.room_list |= other.room_list
        self.focus = other.focus or self.focus
        self.toasts.extend(other.toasts)
        self.give_back = other.give_back or self.give_back
        self.alerts.extend(other.alerts)
        self.chosen |= other.chosen


@dataclass(frozen=True, slots=True)
class Unsent:
    """A line the user typed in room ``room`` (a key) that went to ``target``."""

    room: str
    target: str
    typed: str


@dataclass(slots=True)
class ListEntry:
    """One row of the /list screen."""

    name: str
    users: int
    topic: str


@dataclass
class Connection:
    """What the status line shows about the link to the server."""

    state: str = "connecting"  # connecting | connected | offline
    server: str = ""
    network: str = ""
    lag: float | None = None
    retry_in: float | None = None
    away: bool = False
    away_message: str = ""  # what /away said; set again after a reconnect
    account: str | None = None  # the account the server says we are logged in to
    reason: str = ""
    attempts: int = 0  # failed attempts since the connection dropped


Handler = Callable[["ChatState", Message, bool, Update], None]
# Commands whose sender can be ignored; the silenced ones are dropped altogether, the
# others change the member list without a line in the room.
SILENCED = frozenset({"PRIVMSG", "NOTICE", "TAGMSG", "INVITE"})
IGNORABLE = SILENCED | {"JOIN", "PART", "QUIT", "NICK"}
HANDLERS: dict[str, Handler] = {}


def handles(*commands: str) -> Callable[[Handler], Handler]:
    """Register a handler for IRC commands or numerics."""

    def register(func: Handler) -> Handler:
        for command in commands:
            HANDLERS[command] = func
        return func

    return register


class ChatState:
    """All rooms, the current room, and the connection, as the user sees them."""

    def __init__(
        self,
        nick: str = "",
        server_name: str = "server",
        highlight_words: list[str] | None = None,
        ignore: list[str] | None = None,
    ) -> None:
        self.nick = nick
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
        self.prefixes: dict[str, str] = {"o": "@", "v": "+"}  # mode letter -> prefix char
        self.bot_flag: str | None = None
        self.room_list: list[ListEntry] = []
        self.room_list_done = True
        self.focus_on_join: set[str] = set()
        self.names_requested: set[str] = set()
        self.who_requested: set[str] = set()
        self._pending_names: dict[str, dict[str, str]] = {}
        # Lines sent to a channel and not yet echoed, oldest first: a "cannot send"
        # refusal gives the oldest back (only kept with echo-message, which confirms).
        self.unconfirmed: dict[str, deque[Unsent]] = {}
        self._older = False  # applying a CHATHISTORY BEFORE page
        # The one line that says we are offline, and the key of its room.
        self._offline: tuple[str, ChatLine] | None = None

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
        conn.away = False  # a new connection is not away until the server says so
        self.nick = nick
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
            self._offline = (room.key, line) if retry_in is not None else None
            return update
        key, line = self._offline
        conn.attempts += 1
        tries = "1 attempt" if conn.attempts == 1 else f"{conn.attempts} attempts"
        line.text = f"disconnected — {tries}{when.replace(', retrying', ', next')} ({why})"
        update.rewritten.add(key)
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

    # -- messages ------------------------------------------------------------

    def apply(self, msg: Message, history: bool = False) -> Update:
        """Apply one message from the server; unknown commands are ignored."""
        update = Update()
        handler = HANDLERS.get(msg.command)
        ignored = (
            msg.command in IGNORABLE
            and msg.source is not None
            and not self.is_me(msg.nick)
            and self.ignores.matches(msg.source)
        )
        if ignored and msg.command in SILENCED:
            return update  # not shown, not counted, no alert
        if handler is not None:
            # Joins, parts and the like of an ignored sender still change the member
            # list (it says who is there) but add no line.
            self._hide_events = ignored
            try:
                handler(self, msg, history, update)
            finally:
                self._hide_events = False
        elif msg.command.isdigit() and msg.command[0] in "45":
            _error_numeric(self, msg, history, update)
        return update

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

    def is_me(self, nick: str | None) -> bool:
        return nick is not None and casefold(nick) == casefold(self.nick)

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
        if self._hide_events:
            return
        self.add_line(room, self.line_from(msg, LineKind.EVENT, text), history, u)

    def rooms_with(self, nick: str) -> list[Room]:
        """Rooms where ``nick`` is a member, plus the direct conversation with them."""
        found = [r for r in self.rooms.values() if r.is_channel and r.member(nick)]
        query = self.room(nick)
        if query is not None and query.is_query:
            found.append(query)
        return found


def _conversation(state: ChatState, msg: Message) -> tuple[str, bool]:
    """The room a PRIVMSG/NOTICE/TAGMSG belongs to, and whether it is a server notice."""
    target = msg.param(0)
    sender = msg.nick or ""
    bare = target.lstrip("~@%+")  # STATUSMSG targets such as @#room
    if is_channel(bare):
        return bare, False
    if not sender or ("." in sender and "!" not in (msg.source or "")):
        return SERVER_ROOM, True
    if state.is_me(sender):
        return target, False  # our own message to someone, echoed back
    return sender, False


@handles("PRIVMSG", "NOTICE")
def _privmsg(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    text = msg.param(1)
    name, from_server = _conversation(state, msg)
    if from_server:
        room = state.server_room
    elif msg.command == "NOTICE" and not is_channel(name) and state.room(name) is None:
        room = state.current_room  # a notice from a user does not open a conversation
    else:
        room, created = state.ensure_room(name)
        u.sidebar |= created
    kind = LineKind.MESSAGE if msg.command == "PRIVMSG" else LineKind.NOTICE
    if text.startswith("\x01"):
        ctcp, _, rest = text.strip("\x01").partition(" ")
        if ctcp.upper() != "ACTION":
            return  # other CTCP requests are not chat
        kind, text = LineKind.ACTION, rest
    line = state.line_from(msg, kind, text)
    if line.own and not history and msg.command == "PRIVMSG":
        pending = state.unconfirmed.get(room.key)
        if pending:
            pending.popleft()
    if line.bot and room.is_channel:
        room.bots.add(casefold(line.nick))
    if not history and not line.own:
        room.typing.pop(line.nick, None)
    state.add_line(room, line, history, u)


@handles("TAGMSG")
def _tagmsg(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    typing = msg.tags.get("+typing") or msg.tags.get("+draft/typing")
    nick = msg.nick or ""
    if history or not typing or state.is_me(nick):
        return
    name, _ = _conversation(state, msg)
    room = state.room(name)
    if room is None:
        return
    if typing == "active":
        room.typing[nick] = time.monotonic() + TYPING_ACTIVE_SECONDS
    elif typing == "paused":
        room.typing[nick] = time.monotonic() + TYPING_PAUSED_SECONDS
    else:
        room.typing.pop(nick, None)
    u.status = True


@handles("JOIN")
def _join(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    channel = msg.param(0)
    nick = msg.nick or ""
    room, created = state.ensure_room(channel)
    u.sidebar |= created
    if state.is_me(nick) and not history:
        room.joined = True
        if room.key not in state.chosen:
            state.chosen[room.key] = room.name
            u.chosen = True
        room.members = {}
        room.away = set()
        room.topic = ""  # a (re)join sends the topic again, or none when it has none
        u.topic.add(room.key)
        if room.key in state.focus_on_join or state.current_room.is_server:
            state.focus_on_join.discard(room.key)
            u.focus = room.key
    elif not history:
        room.members.setdefault(nick, "")
        u.members.add(room.key)
    state.event_line(room, msg, f"→ {nick} joined {channel}", history, u)


@handles("PART")
def _part(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(0))
    if room is None:
        return
    nick = msg.nick or ""
    if state.is_me(nick) and not history:
        u.chosen = state.chosen.pop(room.key, None) is not None
        state.remove_room(room.name)
        u.sidebar = True
        u.focus = state.current
        return
    if not history:
        room.remove_member(nick)
        u.members.add(room.key)
    reason = f" ({msg.param(1)})" if msg.param(1) else ""
    state.event_line(room, msg, f"← {nick} left {room.name}{reason}", history, u)


@handles("QUIT")
def _quit(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    nick = msg.nick or ""
    reason = f" ({msg.param(0)})" if msg.param(0) else ""
    for room in state.rooms_with(nick):
        if not history:
            room.remove_member(nick)
            u.members.add(room.key)
        state.event_line(room, msg, f"← {nick} quit{reason}", history, u)


@handles("KICK")
def _kick(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(0))
    if room is None:
        return
    victim = msg.param(1)
    reason = f" ({msg.param(2)})" if msg.param(2) else ""
    if not history:
        room.remove_member(victim)
        u.members.add(room.key)
        if state.is_me(victim):
            room.joined = False
            u.chosen = state.chosen.pop(room.key, None) is not None
            u.toasts.append(f"You were removed from {room.name} by {msg.nick}{reason}")
    state.event_line(room, msg, f"← {msg.nick} removed {victim}{reason}", history, u)


@handles("NICK")
def _nick(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    old, new = msg.nick or "", msg.param(0)
    if history:
        return
    if state.is_me(old):
        state.nick = new
        u.status = True
    for room in state.rooms_with(old):
        name = room.member(old)
        if name is not None:
            room.members[new] = room.members.pop(name)
            u.members.add(room.key)
        state.event_line(room, msg, f"{old} is now known as {new}", history, u)
    query = state.room(old)
    if query is not None and query.is_query and state.room(new) is None:
        del state.rooms[query.key]
        query.name = new
        state.rooms[query.key] = query
        if state.current == casefold(old):
            state.current = query.key
        u.sidebar = True


@handles("TOPIC")
def _topic(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(0))
    if room is None:
        return
    if not history:
        room.topic = msg.param(1)
        u.topic.add(room.key)
    state.event_line(room, msg, f"{msg.nick} set the topic: {msg.param(1)}", history, u)


@handles(n.RPL_TOPIC)
def _rpl_topic(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room, _ = state.ensure_room(msg.param(1))
    room.topic = msg.param(2)
    u.topic.add(room.key)


@handles(n.RPL_NOTOPIC)
def _rpl_notopic(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(1))
    if room is not None:
        room.topic = ""
        u.topic.add(room.key)


@handles("MODE")
def _mode(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    target = msg.param(0)
    room = state.room(target)
    if room is None or not room.is_channel:
        return
    modes, args = msg.param(1), msg.params[2:]
    if not history:
        adding = True
        arg_index = 0
        for ch in modes:
            if ch in "+-":
                adding = ch == "+"
            elif ch in state.prefixes and arg_index < len(args):
                name = room.member(args[arg_index]) or args[arg_index]
                arg_index += 1
                prefix = state.prefixes[ch]
                current = room.members.get(name, "").replace(prefix, "")
                room.members[name] = current + prefix if adding else current
                u.members.add(room.key)
            elif ch in "bkleIfjqLh" and arg_index < len(args):
                arg_index += 1  # modes with an argument we do not track
    state.event_line(room, msg, f"{msg.nick} set mode {' '.join(msg.params[1:])}", history, u)


@handles("AWAY")
def _away(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    nick = casefold(msg.nick or "")
    for room in state.rooms_with(msg.nick or ""):
        if msg.param(0):
            room.away.add(nick)
        else:
            room.away.discard(nick)
        u.members.add(room.key)


@handles(n.RPL_WELCOME)
def _welcome(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    state.nick = msg.param(0) or state.nick
    u.status = True
    _server_text(state, msg, history, u)


@handles(n.RPL_ISUPPORT)
def _isupport(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    for token in msg.params[1:-1]:
        key, _, value = token.partition("=")
        if key == "PREFIX" and value.startswith("("):
            letters, _, chars = value[1:].partition(")")
            state.prefixes = dict(zip(letters, chars, strict=False))
        elif key == "BOT":
            state.bot_flag = value or "B"
        elif key == "NETWORK" and value:
            state.connection.network = value
            u.sidebar = u.status = True


@handles(
    n.RPL_YOURHOST, n.RPL_CREATED, n.RPL_MOTDSTART, n.RPL_MOTD, n.RPL_ENDOFMOTD,
    n.RPL_LUSERCLIENT, n.RPL_LUSEROP, n.RPL_LUSERUNKNOWN, n.RPL_LUSERCHANNELS,
    n.RPL_LUSERME, n.RPL_LOCALUSERS, n.RPL_GLOBALUSERS, n.ERR_NOMOTD, "ERROR",
)  # fmt: skip
def _server_text(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    kind = LineKind.ERROR if msg.command == "ERROR" else LineKind.INFO
    text = msg.params[-1] if msg.params else ""
    # "3 :operator(s) online": the count is a middle parameter. Where the text repeats
    # it ("Current local users 2, max 5") it is not said twice.
    said = set(re.findall(r"\w+", text))
    numbers = [p for p in msg.params[1:-1] if p not in said] if msg.command.isdigit() else []
    text = " ".join([*numbers, text])
    line = ChatLine(parse_server_time(msg.tags.get("time")), kind, "", text)
    state.add_line(state.server_room, line, True, u)


@handles(n.RPL_NAMREPLY)
def _names(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    channel = casefold(msg.param(2))
    pending = state._pending_names.setdefault(channel, {})
    prefix_chars = "".join(state.prefixes.values())
    for entry in msg.param(3).split():
        stripped = entry.lstrip(prefix_chars)
        prefixes = entry[: len(entry) - len(stripped)]
        pending[stripped.split("!", 1)[0]] = prefixes


@handles(n.RPL_ENDOFNAMES)
def _end_names(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    key = casefold(msg.param(1))
    names = state._pending_names.pop(key, {})
    room = state.rooms.get(key)
    if room is None:
        return
    room.members = names
    u.members.add(key)
    if key in state.names_requested:
        state.names_requested.discard(key)
        listed = " ".join(p + nick for p, nick in room.sorted_members())
        u.merge(state.note(f"{room.name} has {len(names)} members: {listed}", room=room))


@handles(n.RPL_WHOREPLY)
def _who(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    channel, user, host, nick, flags = (msg.param(i) for i in (1, 2, 3, 5, 6))
    room = state.room(channel)
    if room is not None:
        folded = casefold(nick)
        if state.bot_flag and state.bot_flag in flags:
            room.bots.add(folded)
        (room.away.add if "G" in flags else room.away.discard)(folded)
        u.members.add(room.key)
    if casefold(channel) in state.who_requested or casefold(nick) in state.who_requested:
        real = msg.param(7).partition(" ")[2]
        away = " (away)" if "G" in flags else ""
        u.merge(state.note(f"{nick} is {user}@{host} — {real}{away}"))


@handles(n.RPL_ENDOFWHO)
def _end_who(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if casefold(msg.param(1)) in state.who_requested:
        state.who_requested.discard(casefold(msg.param(1)))
        u.merge(state.note(f"End of who for {msg.param(1)}"))


@handles(n.RPL_LISTSTART)
def _list_start(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    state.room_list = []
    state.room_list_done = False
    u.room_list = True


@handles(n.RPL_LIST)
def _list(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if state.room_list_done:  # servers may skip 321
        state.room_list = []
        state.room_list_done = False
    users = int(msg.param(2)) if msg.param(2).isdigit() else 0
    state.room_list.append(ListEntry(msg.param(1), users, msg.param(3)))
    u.room_list = True


@handles(n.RPL_LISTEND)
def _list_end(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    state.room_list_done = True
    u.room_list = True


@handles(n.RPL_NOWAWAY, n.RPL_UNAWAY)
def _own_away(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    state.connection.away = msg.command == n.RPL_NOWAWAY
    if not state.connection.away:
        state.connection.away_message = ""
    u.status = True
    u.merge(state.note(msg.param(1)))


@handles(
    n.RPL_AWAY, n.RPL_WHOISUSER, n.RPL_WHOISSERVER, n.RPL_WHOISCHANNELS,
    n.RPL_WHOISBOT, n.RPL_WHOISOPERATOR, n.RPL_UMODEIS, n.RPL_CHANNELMODEIS,
    n.RPL_BANLIST, n.RPL_ENDOFBANLIST,
)  # fmt: skip
def _informative(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    detail = " ".join(p for p in msg.params[1:-1] if p)
    text = f"{detail}: {msg.params[-1]}" if detail else msg.params[-1]
    u.merge(state.note(text))


def duration(seconds: int) -> str:
    """``3725`` → ``1h 2m 5s``; days for long idles."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{unit}" for v, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    return " ".join([*parts, f"{secs}s"] if secs or not parts else parts)


@handles(n.RPL_WHOISIDLE)
def _whois_idle(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    """``<nick> <seconds> [<signon>] :seconds idle, signon time`` in words."""
    nick, idle, signon = msg.param(1), msg.param(2), msg.param(3)
    if not idle.isdigit():
        _informative(state, msg, history, u)
        return
    text = f"{nick} has been idle {duration(int(idle))}"
    if signon.isdigit() and len(msg.params) > 4:
        when = datetime.fromtimestamp(int(signon), UTC).astimezone()
        text += f", signed on {when:%Y-%m-%d %H:%M}"
    u.merge(state.note(text))


@handles("MARKREAD")
def _markread(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    """draft/read-marker: ``MARKREAD <target> timestamp=<time>`` (or ``*``: unknown)."""
    room = state.room(msg.param(0))
    ref = msg.param(1)
    if room is None or not ref.startswith("timestamp="):
        return
    try:
        until = parse_datetime(ref.removeprefix("timestamp="))
    except ValueError:
        return
    if room.key == state.current:
        room.read_until = max(until, room.read_until or until)  # this visit's marker stays
    elif room.read_elsewhere(until):
        u.sidebar = True


@handles("FAIL", "WARN", "NOTE")
def _standard_reply(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if msg.param(0) == "CHATHISTORY":
        return  # the history loader sees the empty result and stops asking
    kind = LineKind.ERROR if msg.command == "FAIL" else LineKind.INFO
    u.merge(state.note(f"{msg.param(0)}: {msg.params[-1]}", kind))


def _error_numeric(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    """4xx/5xx: one red line in the room the user is looking at."""
    if msg.command == n.ERR_NICKNAMEINUSE and state.connection.state != "connected":
        return  # the connection picks another nick and reports it as a NickFallback
    detail = " ".join(p for p in msg.params[1:-1] if p)
    text = f"{detail}: {msg.params[-1]}" if detail else msg.params[-1]
    if msg.command == n.ERR_CANNOTSENDTOCHAN:
        pending = state.unconfirmed.get(casefold(msg.param(1)))
        if pending:
            u.give_back = pending.popleft()
            text += " — your text is back in the input"
    # "#ops: You're not channel operator" goes to #ops, where the /kick was typed; an
    # error that names no room of ours goes where the reader is looking.
    rooms = (state.room(p) for p in msg.params[1:-1] if is_channel(p))
    room = next((r for r in rooms if r is not None), None)
    u.merge(state.note(text, LineKind.ERROR, room))


@handles(n.RPL_INVITING)
def _inviting(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    """``341 <me> <nick> <room>``: our /invite went out."""
    nick, name = msg.param(1), msg.param(2)
    u.merge(state.note(f"invited {nick} to {name}", room=state.room(name)))


@handles("INVITE")
def _invite(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if history or not state.is_me(msg.param(0)):
        return
    room = msg.param(1)
    u.merge(state.note(f"{msg.nick} invites you to {room} — /join {room} to go there"))
    u.alerts.append(Alert(room, msg.nick or "", f"invites you to {room}"))
