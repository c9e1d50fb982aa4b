"""Who comes and goes, and what rooms are about: joins, parts, quits, kicks, nicks,
topics, modes, away, names, who and the server's room list.

The member lists and topics themselves are chat_protocol's (``ChatState.irc``, which
has applied the message by the time these run); these handlers add the dimmed lines
and say which parts of the screen to redraw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_protocol import Message, casefold
from chat_protocol import numerics as n
from chat_tui.incoming.table import handles
from chat_tui.model import ListEntry
from chat_tui.update import Update

if TYPE_CHECKING:
    from chat_tui.state import ChatState


@handles("JOIN")
def _join(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    channel = msg.param(0)
    nick = msg.nick or ""
    room, created = state.ensure_room(channel)
    u.sidebar |= created
    if not history:
        u.members.add(room.key)
    if state.is_me(nick) and not history:
        room.joined = True
        if room.key not in state.chosen:
            state.chosen[room.key] = room.name
            u.chosen = True
        u.topic.add(room.key)  # a (re)join sends the topic again, or none when it has none
        if room.key in state.focus_on_join or state.current_room.is_server:
            state.focus_on_join.discard(room.key)
            u.focus = room.key
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
        room.stopped_typing(nick)
        u.members.add(room.key)
    reason = f" ({msg.param(1)})" if msg.param(1) else ""
    state.event_line(room, msg, f"← {nick} left {room.name}{reason}", history, u)


@handles("QUIT")
def _quit(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    nick = msg.nick or ""
    reason = f" ({msg.param(0)})" if msg.param(0) else ""
    for room in state.sender_rooms:
        if not history:
            room.stopped_typing(nick)
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
        room.stopped_typing(victim)
        u.members.add(room.key)
        if state.is_me(victim):
            room.joined = False
            u.topic.add(room.key)
            u.chosen = state.chosen.pop(room.key, None) is not None
            u.toasts.append(f"You were removed from {room.name} by {msg.nick}{reason}")
    state.event_line(room, msg, f"← {msg.nick} removed {victim}{reason}", history, u)


@handles("NICK")
def _nick(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    old, new = msg.nick or "", msg.param(0)
    if history:
        return
    if state.is_me(new):  # the protocol state follows our own nick already
        u.status = True
    for room in state.sender_rooms:
        if room.is_channel:
            u.members.add(room.key)
        state.event_line(room, msg, f"{old} is now known as {new}", history, u)
    query = state.room(old)
    if query is not None and query.is_query and state.room(new) is None:
        state.rename_room(query, new)
        u.sidebar = True


@handles("TOPIC")
def _topic(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(0))
    if room is None:
        return
    if not history:
        u.topic.add(room.key)
    state.event_line(room, msg, f"{msg.nick} set the topic: {msg.param(1)}", history, u)


@handles(n.RPL_TOPIC, n.RPL_NOTOPIC)
def _rpl_topic(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(1))
    if room is not None:
        u.topic.add(room.key)


@handles("MODE")
def _mode(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(0))
    if room is None or not room.is_channel:
        return
    if not history:
        u.members.add(room.key)  # +o/-v change prefixes in the member list
    state.event_line(room, msg, f"{msg.nick} set mode {' '.join(msg.params[1:])}", history, u)


@handles("AWAY")
def _away(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    for room in state.rooms_with(msg.nick or ""):
        u.members.add(room.key)


@handles(n.RPL_ENDOFNAMES)
def _end_names(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    room = state.room(msg.param(1))
    if room is None:
        return
    u.members.add(room.key)
    if room.key in state.names_requested:
        state.names_requested.discard(room.key)
        members = state.roster.members(room.name)
        listed = " ".join(m.prefixes + m.nick for m in members)
        u.merge(state.note(f"{room.name} has {len(members)} members: {listed}", room=room))


@handles(n.RPL_WHOREPLY)
def _who(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    channel, user, host, nick, flags = (msg.param(i) for i in (1, 2, 3, 5, 6))
    room = state.room(channel)
    if room is not None:
        u.members.add(room.key)  # bots and away people are marked
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
