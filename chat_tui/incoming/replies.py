"""What the server answers: the welcome burst, away and whois replies, standard
replies (FAIL/WARN/NOTE) and error numerics, each as a line where the reader will
see it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chat_protocol import Message, casefold, is_channel
from chat_protocol import numerics as n
from chat_tui.incoming.table import handles
from chat_tui.model import ChatLine, LineKind, parse_server_time
from chat_tui.update import Update

if TYPE_CHECKING:
    from chat_tui.state import ChatState


@handles(n.RPL_WELCOME)
def _welcome(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    u.status = True  # the protocol state took the nick the server gave us
    _server_text(state, msg, history, u)


@handles(n.RPL_ISUPPORT)
def _isupport(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if any(token.startswith("NETWORK=") for token in msg.params[1:-1]):
        u.sidebar = u.status = True  # the server tab is called by the network's name


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


@handles(n.RPL_NOWAWAY, n.RPL_UNAWAY)
def _own_away(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if msg.command == n.RPL_UNAWAY:
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


@handles(n.RPL_INVITING)
def _inviting(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    """``341 <me> <nick> <room>``: our /invite went out."""
    nick, name = msg.param(1), msg.param(2)
    u.merge(state.note(f"invited {nick} to {name}", room=state.room(name)))


@handles("FAIL", "WARN", "NOTE")
def _standard_reply(state: ChatState, msg: Message, history: bool, u: Update) -> None:
    if msg.param(0) == "CHATHISTORY":
        return  # the history loader sees the empty result and stops asking
    kind = LineKind.ERROR if msg.command == "FAIL" else LineKind.INFO
    u.merge(state.note(f"{msg.param(0)}: {msg.params[-1]}", kind))


def error_numeric(state: ChatState, msg: Message, history: bool, u: Update) -> None:
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
