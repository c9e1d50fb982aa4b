"""How each received message changes a client's ``SessionState``: one rule per command
or numeric (``HANDLERS``), kept apart from the state they change so that each reads on
its own. ``SessionState.apply`` picks the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chat_protocol import numerics as n
from chat_protocol.client_types import Batch, ChannelState
from chat_protocol.message import Message

if TYPE_CHECKING:
    from chat_protocol.client_state import SessionState


def unescape_isupport(value: str) -> str:
    """Undo the ``\\xHH`` escapes ISUPPORT values may carry."""
    if "\\x" not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        if value.startswith("\\x", i) and i + 4 <= len(value):
            try:
                out.append(chr(int(value[i + 2 : i + 4], 16)))
                i += 4
                continue
            except ValueError:
                pass
        out.append(value[i])
        i += 1
    return "".join(out)


def cap_values(text: str) -> dict[str, str]:
    """``sasl=PLAIN,SCRAM-SHA-256 batch`` (a CAP LS/NEW list) as {name: value}."""
    return dict((item.partition("=")[0], item.partition("=")[2]) for item in text.split())


def _on_welcome(state: SessionState, msg: Message) -> None:
    if msg.params:
        state.nick = msg.params[0]


def _on_isupport(state: SessionState, msg: Message) -> None:
    for token in msg.params[1:-1]:
        if token.startswith("-"):
            state.isupport.pop(token[1:].upper(), None)
        else:
            key, _, value = token.partition("=")
            state.isupport[key.upper()] = unescape_isupport(value)


def _on_cap(state: SessionState, msg: Message) -> None:
    sub = msg.param(1).upper()
    names = msg.params[-1].split() if len(msg.params) >= 3 else []
    if sub == "ACK":
        for name in names:
            if name.startswith("-"):
                state.caps.discard(name[1:])
            else:
                state.caps.add(name)
    elif sub == "DEL":
        state.caps.difference_update(names)
        for name in names:
            state.offered.pop(name, None)
    if sub in ("LS", "NEW") and len(msg.params) >= 3:
        state.offered.update(cap_values(msg.params[-1]))


def _on_logged_in(state: SessionState, msg: Message) -> None:
    # 900 <nick> <nick!user@host> <account> :You are now logged in as <account>
    state.account = msg.param(2) or None
    if "!" in msg.param(1):
        state.source = msg.param(1)


def _on_logged_out(state: SessionState, msg: Message) -> None:
    state.account = None


def _on_account(state: SessionState, msg: Message) -> None:
    # account-notify: ACCOUNT <account|*>, from whoever logged in or out
    account = msg.param(0)
    if state.is_me(msg.nick):
        state.account = account if account and account != "*" else None
    if msg.nick:
        state.note_account(msg.nick, account)


def _on_join(state: SessionState, msg: Message) -> None:
    name = msg.param(0)
    folded = state.casefold(name)
    nick = msg.nick or ""
    if state.is_me(nick):
        state.channels[folded] = ChannelState(name)
        if msg.source and "!" in msg.source:
            state.source = msg.source
        return
    chan = state.channels.get(folded)
    if chan is not None and state.member_key(chan, nick) is None:
        chan.members[nick] = ""
    if chan is not None and len(msg.params) >= 3:  # extended-join: JOIN #chan account :real
        state.note_account(nick, msg.params[1])


def _on_part(state: SessionState, msg: Message) -> None:
    folded = state.casefold(msg.param(0))
    nick = msg.param(1) if msg.command == "KICK" else (msg.nick or "")
    if state.is_me(nick):
        state.channels.pop(folded, None)
        state.forget_away_of_strangers()
        return
    chan = state.channels.get(folded)
    if chan is not None:
        state.remove_member(chan, nick)
        if not state.shares_channel(nick):
            state.away.discard(state.casefold(nick))


def _on_quit(state: SessionState, msg: Message) -> None:
    for chan in state.channels.values():
        state.remove_member(chan, msg.nick or "")
    state.away.discard(state.casefold(msg.nick or ""))


def _on_nick(state: SessionState, msg: Message) -> None:
    old, new = msg.nick or "", msg.param(0)
    if state.is_me(old):
        state.nick = new
        if state.source:
            state.source = new + state.source[len(old) :]
    for chan in state.channels.values():
        key = state.member_key(chan, old)
        if key is not None:
            chan.members[new] = chan.members.pop(key)
            if key in chan.accounts:
                chan.accounts[new] = chan.accounts.pop(key)
        if key in chan.bots:
            chan.bots.discard(key)
            chan.bots.add(new)
    if state.casefold(old) in state.away:
        state.away.discard(state.casefold(old))
        state.away.add(state.casefold(new))


def _on_mode(state: SessionState, msg: Message) -> None:
    chan = state.channels.get(state.casefold(msg.param(0)))
    if chan is not None and len(msg.params) >= 2:
        state.apply_channel_modes(chan, msg.params[1], msg.params[2:])


def _on_channel_mode_is(state: SessionState, msg: Message) -> None:
    chan = state.channels.get(state.casefold(msg.param(1)))
    if chan is not None and len(msg.params) >= 3:
        chan.modes = ""
        state.apply_channel_modes(chan, msg.params[2], msg.params[3:])


def _on_topic(state: SessionState, msg: Message) -> None:
    # TOPIC #chan :text, 332 me #chan :text, 331 me #chan :No topic is set
    index = 0 if msg.command == "TOPIC" else 1
    chan = state.channels.get(state.casefold(msg.param(index)))
    if chan is not None:
        chan.topic = "" if msg.command == n.RPL_NOTOPIC else msg.param(index + 1)


def _on_names(state: SessionState, msg: Message) -> None:
    # 353 me <=|*|@> #chan :entries
    folded = state.casefold(msg.param(2))
    pending = state._names.setdefault(folded, {})
    for entry in msg.param(3).split():
        nick, prefixes = state.split_names_entry(entry)
        if nick:
            pending[nick] = prefixes


def _on_end_of_names(state: SessionState, msg: Message) -> None:
    folded = state.casefold(msg.param(1))
    pending = state._names.pop(folded, None)
    chan = state.channels.get(folded)
    if chan is not None and pending is not None:
        chan.members = pending
        chan.bots = {b for b in chan.bots if b in pending}
        chan.accounts = {k: v for k, v in chan.accounts.items() if k in pending}
        state.forget_away_of_strangers()


def _on_who_reply(state: SessionState, msg: Message) -> None:
    # 352 me #chan user host server nick flags :hops realname; flags start H (here) or G
    nick, flags = msg.param(5), msg.param(6)
    chan = state.channels.get(state.casefold(msg.param(1)))
    bot_flag = state.isupport.get("BOT", "")
    if chan is not None and bot_flag and bot_flag in flags[1:]:
        key = state.member_key(chan, nick)
        if key is not None:
            chan.bots.add(key)
    if flags[:1] in ("H", "G"):
        state.note_away(nick, flags[0] == "G")


def _on_away(state: SessionState, msg: Message) -> None:
    # away-notify: AWAY :message (gone) or AWAY (back), from whoever changed
    if msg.nick:
        state.note_away(msg.nick, bool(msg.param(0)))


def _on_own_away(state: SessionState, msg: Message) -> None:
    # 306 me :You have been marked as being away / 305 me :You are no longer ...
    state.note_away(state.nick, msg.command == n.RPL_NOWAWAY)


def _on_batch(state: SessionState, msg: Message) -> None:
    ref = msg.param(0)
    if ref.startswith("+") and len(msg.params) >= 2:
        parent = msg.tags.get("batch")
        state.batches[ref[1:]] = Batch(ref[1:], msg.params[1], msg.params[2:], msg.tags, parent)
    elif ref.startswith("-"):
        state.batches.pop(ref[1:], None)


HANDLERS: dict[str, Callable[[SessionState, Message], None]] = {
    n.RPL_WELCOME: _on_welcome,
    n.RPL_ISUPPORT: _on_isupport,
    "CAP": _on_cap,
    "JOIN": _on_join,
    "PART": _on_part,
    "KICK": _on_part,
    "QUIT": _on_quit,
    "NICK": _on_nick,
    "MODE": _on_mode,
    n.RPL_CHANNELMODEIS: _on_channel_mode_is,
    "TOPIC": _on_topic,
    n.RPL_TOPIC: _on_topic,
    n.RPL_NOTOPIC: _on_topic,
    n.RPL_NAMREPLY: _on_names,
    n.RPL_ENDOFNAMES: _on_end_of_names,
    n.RPL_WHOREPLY: _on_who_reply,
    "AWAY": _on_away,
    n.RPL_NOWAWAY: _on_own_away,
    n.RPL_UNAWAY: _on_own_away,
    "BATCH": _on_batch,
    n.RPL_LOGGEDIN: _on_logged_in,
    n.RPL_LOGGEDOUT: _on_logged_out,
    "ACCOUNT": _on_account,
}
