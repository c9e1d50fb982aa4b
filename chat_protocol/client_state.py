"""What a client knows about its session, updated from the messages it receives.

No I/O here: ``SessionState.apply`` takes one parsed message and updates nick, caps,
ISUPPORT, the account we are logged in to, channels (members, prefixes, accounts,
topic, modes, bots), who is away, open batches and the last message seen per channel.
The connection code in ``client.py`` decides what to send; this module only remembers,
so every rule can be unit-tested with plain messages. A program that shows events
later than the connection applies them (chat-tui) keeps its own ``SessionState`` fed
in the order it shows them, and so asks it about the moment it is showing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from chat_protocol import numerics as n
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.client_types import ChannelState
from chat_protocol.message import Message
from chat_protocol.servertime import format_datetime, parse_datetime

# Batches of past messages: replays and pages of history, and search results. What they
# hold is no news about who is here now.
HISTORY_BATCH_TYPES = frozenset({"chathistory", "draft/chathistory", "soju.im/search"})
_TARGETED = frozenset({"PRIVMSG", "NOTICE", "TAGMSG", "JOIN", "PART", "TOPIC", "KICK", "MODE"})
_RFC1459_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")
_STRICT_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\", "abcdefghijklmnopqrstuvwxyz{}|")


def parse_time(value: str | None) -> datetime | None:
    """A ``server-time`` tag as an aware UTC datetime; None when missing or unreadable
    (a peer's odd time must not break ordering, so it is treated as absent)."""
    if not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def format_time(when: datetime) -> str:
    """Format a time the way ``server-time`` and CHATHISTORY want it (naive means UTC)."""
    return format_datetime(when)


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


class SeenIds:
    """A bounded set of msgids, oldest forgotten first, so dedupe never grows forever."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, msgid: str) -> bool:
        """Remember ``msgid``; True when it was new."""
        if msgid in self._ids:
            self._ids.move_to_end(msgid)
            return False
        self._ids[msgid] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, msgid: object) -> bool:
        return msgid in self._ids

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class Batch:
    """An open ``BATCH +id type params`` block; ``tags`` are those of the opening line."""

    id: str
    type: str
    params: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    parent: str | None = None


@dataclass
class LastSeen:
    """Newest message seen in one channel; survives reconnects so gaps can be filled."""

    msgid: str | None = None
    time: str | None = None
    msgid_time: str | None = None  # time of the message ``msgid`` names


def _not_older(new: str, old: str | None) -> bool:
    """True when time ``new`` is at least ``old`` (or either cannot be read)."""
    new_at, old_at = parse_time(new), parse_time(old)
    return new_at is None or old_at is None or new_at >= old_at


class SessionState:
    """Session bookkeeping fed by ``apply``; the client exposes its fields read-only."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.source: str | None = None  # our own nick!user@host once the server shows it
        self.caps: set[str] = set()
        self.offered: dict[str, str] = {}  # what CAP LS/NEW listed: name -> value
        self.account: str | None = None  # the account the server says we are logged in to
        self.isupport: dict[str, str] = {}
        self.channels: dict[str, ChannelState] = {}
        self.batches: dict[str, Batch] = {}
        self.last_seen: dict[str, LastSeen] = {}
        # Folded nicks known to be away (away-notify, WHO flags; us: 305/306). Only
        # people we share a channel with, and ourselves: nobody tells us when anyone
        # else comes back, so their entry would go stale.
        self.away: set[str] = set()
        self._names: dict[str, dict[str, str]] = {}

    # -- naming ------------------------------------------------------------------------

    def casefold(self, name: str) -> str:
        """Fold a name the way the server's CASEMAPPING does (ascii unless told otherwise)."""
        mapping = self.isupport.get("CASEMAPPING", "ascii").lower()
        if mapping == "rfc1459":
            return name.translate(_RFC1459_LOWER)
        if mapping == "strict-rfc1459":
            return name.translate(_STRICT_LOWER)
        return casefold(name)

    def is_me(self, nick: str | None) -> bool:
        return nick is not None and self.casefold(nick) == self.casefold(self.nick)

    def channel(self, name: str) -> ChannelState | None:
        """The joined channel called ``name`` (any case), if any."""
        return self.channels.get(self.casefold(name))

    def is_away(self, nick: str) -> bool:
        """Whether ``nick`` (or we) is known to be away."""
        return self.casefold(nick) in self.away

    def prefixes(self) -> tuple[str, str]:
        """(mode letters, prefix symbols) from ``PREFIX``, highest rank first."""
        value = self.isupport.get("PREFIX", "(ov)@+")
        if value.startswith("(") and ")" in value:
            modes, _, symbols = value[1:].partition(")")
            if len(modes) == len(symbols):
                return modes, symbols
        return "", ""

    def channel_of(self, msg: Message) -> str | None:
        """Folded channel a message belongs to (PRIVMSG/JOIN/... target), if any."""
        if msg.command == "BATCH" and len(msg.params) >= 3 and msg.params[0].startswith("+"):
            target = msg.params[2]
        elif msg.command in _TARGETED and msg.params:
            target = msg.params[0].lstrip(self.prefixes()[1])
        else:
            return None
        return self.casefold(target) if is_channel(target) else None

    # -- batches -----------------------------------------------------------------------

    def batch_chain(self, msg: Message) -> list[Batch]:
        """The open batches enclosing ``msg``, innermost first (``BATCH -id`` is in its own)."""
        chain: list[Batch] = []
        ref = msg.tags.get("batch")
        if msg.command == "BATCH" and msg.param(0).startswith("-"):
            ref = msg.params[0][1:]
        while ref and ref in self.batches and len(chain) < 16:
            batch = self.batches[ref]
            chain.append(batch)
            ref = batch.parent
        return chain

    def is_history(self, msg: Message) -> bool:
        """True inside a history (or search) batch, and for the ``BATCH`` lines that open one."""
        opening = msg.command == "BATCH" and msg.param(0).startswith("+")
        if opening and msg.param(1) in HISTORY_BATCH_TYPES:
            return True
        return any(b.type in HISTORY_BATCH_TYPES for b in self.batch_chain(msg))

    # -- connection lifetime -----------------------------------------------------------

    def reset_connection(self) -> None:
        """Forget what only held for the last connection (``last_seen`` is kept)."""
        self.caps.clear()
        self.offered.clear()
        self.account = None
        self.isupport.clear()
        self.channels.clear()
        self.batches.clear()
        self.away.clear()
        self._names.clear()
        self.source = None

    # -- applying messages -------------------------------------------------------------

    def apply(self, msg: Message) -> None:
        """Update the state from one received message."""
        if msg.command != "BATCH" and self.is_history(msg):
            # Replayed JOIN/PART/NICK describe the past, not who is here now; but a
            # replayed line's bot tag still says that its sender (if here now) is a bot.
            if "bot" in msg.tags or "draft/bot" in msg.tags:
                self._mark_bot(msg)
            self._note_seen(msg)
            return
        handler = _HANDLERS.get(msg.command)
        if handler is not None:
            handler(self, msg)
        if "bot" in msg.tags or "draft/bot" in msg.tags:
            self._mark_bot(msg)
        if "account" in msg.tags and msg.nick:
            self.note_account(msg.nick, msg.tags["account"])
        self._note_seen(msg)

    def _note_seen(self, msg: Message) -> None:
        chan = self.channel_of(msg) if msg.command != "BATCH" else None
        time = msg.tags.get("time")
        msgid = msg.tags.get("msgid")
        if chan is None or (time is None and msgid is None):
            return
        last = self.last_seen.setdefault(chan, LastSeen())
        # Older history (scrollback, replays) never moves a mark back.
        if time is not None and _not_older(time, last.time):
            last.time = time
        if msgid is not None and (time is None or _not_older(time, last.msgid_time)):
            last.msgid, last.msgid_time = msgid, time
        state = self.channels.get(chan)
        if state is not None:
            state.last_msgid, state.last_time = last.msgid, last.time

    def _member_key(self, chan: ChannelState, nick: str) -> str | None:
        if nick in chan.members:
            return nick
        folded = self.casefold(nick)
        return next((k for k in chan.members if self.casefold(k) == folded), None)

    def _remove_member(self, chan: ChannelState, nick: str) -> None:
        key = self._member_key(chan, nick)
        if key is not None:
            del chan.members[key]
            chan.accounts.pop(key, None)
        chan.bots = {b for b in chan.bots if self.casefold(b) != self.casefold(nick)}

    def shares_channel(self, nick: str) -> bool:
        """Whether ``nick`` is in one of our channels."""
        return any(self._member_key(chan, nick) is not None for chan in self.channels.values())

    def note_away(self, nick: str, away: bool) -> None:
        """``nick`` is away (or back); remembered only for us and people we see."""
        folded = self.casefold(nick)
        if not away:
            self.away.discard(folded)
        elif self.is_me(nick) or self.shares_channel(nick):
            self.away.add(folded)

    def _forget_away_of_strangers(self) -> None:
        """Drop the away marks of people no channel of ours has any more."""
        members = {self.casefold(n) for chan in self.channels.values() for n in chan.members}
        me = self.casefold(self.nick)
        self.away = {n for n in self.away if n == me or n in members}

    def note_account(self, nick: str, account: str) -> None:
        """``nick`` is logged in to ``account`` (``*``: to none), in every shared channel."""
        for chan in self.channels.values():
            key = self._member_key(chan, nick)
            if key is None:
                continue
            if account and account != "*":
                chan.accounts[key] = account
            else:
                chan.accounts.pop(key, None)

    def _mark_bot(self, msg: Message) -> None:
        nick = msg.nick
        if not nick:
            return
        for chan in self.channels.values():
            key = self._member_key(chan, nick)
            if key is not None:
                chan.bots.add(key)

    def _sort_prefixes(self, prefixes: str) -> str:
        symbols = self.prefixes()[1]
        return "".join(sorted(set(prefixes), key=lambda c: symbols.find(c)))

    def _split_names_entry(self, entry: str) -> tuple[str, str]:
        symbols = self.prefixes()[1]
        i = 0
        while i < len(entry) and entry[i] in symbols:
            i += 1
        nick = entry[i:].split("!", 1)[0]
        return nick, self._sort_prefixes(entry[:i])

    def _apply_channel_modes(self, chan: ChannelState, modes: str, args: list[str]) -> None:
        prefix_modes, prefix_symbols = self.prefixes()
        groups = [*self.isupport.get("CHANMODES", "beI,k,l,imnpst").split(","), "", "", ""][:4]
        list_modes, always_arg, set_arg, _ = groups
        current = set(chan.modes.lstrip("+"))
        adding = True
        args = list(args)
        for ch in modes:
            if ch in "+-":
                adding = ch == "+"
            elif ch in prefix_modes:
                nick = args.pop(0) if args else ""
                key = self._member_key(chan, nick)
                if key is not None:
                    symbol = prefix_symbols[prefix_modes.index(ch)]
                    have = chan.members[key].replace(symbol, "")
                    chan.members[key] = self._sort_prefixes(have + symbol if adding else have)
            elif ch in list_modes:
                if args:
                    args.pop(0)
            else:
                if (ch in always_arg or (ch in set_arg and adding)) and args:
                    args.pop(0)
                if adding:
                    current.add(ch)
                else:
                    current.discard(ch)
        chan.modes = "+" + "".join(sorted(current)) if current else ""


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
    if chan is not None and state._member_key(chan, nick) is None:
        chan.members[nick] = ""
    if chan is not None and len(msg.params) >= 3:  # extended-join: JOIN #chan account :real
        state.note_account(nick, msg.params[1])


def _on_part(state: SessionState, msg: Message) -> None:
    folded = state.casefold(msg.param(0))
    nick = msg.param(1) if msg.command == "KICK" else (msg.nick or "")
    if state.is_me(nick):
        state.channels.pop(folded, None)
        state._forget_away_of_strangers()
        return
    chan = state.channels.get(folded)
    if chan is not None:
        state._remove_member(chan, nick)
        if not state.shares_channel(nick):
            state.away.discard(state.casefold(nick))


def _on_quit(state: SessionState, msg: Message) -> None:
    for chan in state.channels.values():
        state._remove_member(chan, msg.nick or "")
    state.away.discard(state.casefold(msg.nick or ""))


def _on_nick(state: SessionState, msg: Message) -> None:
    old, new = msg.nick or "", msg.param(0)
    if state.is_me(old):
        state.nick = new
        if state.source:
            state.source = new + state.source[len(old) :]
    for chan in state.channels.values():
        key = state._member_key(chan, old)
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
        state._apply_channel_modes(chan, msg.params[1], msg.params[2:])


def _on_channel_mode_is(state: SessionState, msg: Message) -> None:
    chan = state.channels.get(state.casefold(msg.param(1)))
    if chan is not None and len(msg.params) >= 3:
        chan.modes = ""
        state._apply_channel_modes(chan, msg.params[2], msg.params[3:])


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
        nick, prefixes = state._split_names_entry(entry)
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
        state._forget_away_of_strangers()


def _on_who_reply(state: SessionState, msg: Message) -> None:
    # 352 me #chan user host server nick flags :hops realname; flags start H (here) or G
    nick, flags = msg.param(5), msg.param(6)
    chan = state.channels.get(state.casefold(msg.param(1)))
    bot_flag = state.isupport.get("BOT", "")
    if chan is not None and bot_flag and bot_flag in flags[1:]:
        key = state._member_key(chan, nick)
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


_HANDLERS = {
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
