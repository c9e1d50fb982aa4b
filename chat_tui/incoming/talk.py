"""What people say: messages, notices, typing, invitations, and how far we read."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat_protocol import Message, is_channel
from chat_protocol.servertime import parse_datetime
from chat_tui.incoming.table import handles
from chat_tui.model import SERVER_ROOM, TYPING_ACTIVE_SECONDS, TYPING_PAUSED_SECONDS, LineKind
from chat_tui.notify import Alert
from chat_tui.update import Update

if TYPE_CHECKING:
    from chat_tui.state import ChatState


def conversation(state: ChatState, msg: Message) -> tuple[str, bool]:
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
    name, from_server = conversation(state, msg)
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
        u.members.add(room.key)  # the protocol state now knows the sender for a bot
    if not history and not line.own:
        room.typing.pop(line.nick, None)
    state.add_line(room, line, history, u)


@handles("TAGMSG")
def _tagmsg(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    typing = msg.tags.get("+typing") or msg.tags.get("+draft/typing")
    nick = msg.nick or ""
    if history or not typing or state.is_me(nick):
        return
    name, _ = conversation(state, msg)
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


@handles("INVITE")
def _invite(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if history or not state.is_me(msg.param(0)):
        return
    room = msg.param(1)
    u.merge(state.note(f"{msg.nick} invites you to {room} — /join {room} to go there"))
    u.alerts.append(Alert(room, msg.nick or "", f"invites you to {room}"))


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
