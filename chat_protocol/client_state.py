"""What a client knows about its session, updated from the messages it receives.

No I/O here: ``SessionState.apply`` takes one parsed message and updates nick, caps,
ISUPPORT, the account we are logged in to, channels (members, prefixes, accounts,
topic, modes, bots), who is away, open batches and the last message seen per channel.
The connection code in ``client.py`` decides what to send; this module only remembers
(the rule for each command is in ``client_updates.py``), so every rule can be
unit-tested with plain messages. A program that shows events
later than the connection applies them (chat-tui) keeps its own ``SessionState`` fed
in the order it shows them, and so asks it about the moment it is showing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from chat_protocol.casemap import casefold, is_channel
from chat_protocol.client_types import Batch, ChannelState
from chat_protocol.client_updates import HANDLERS
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
        handler = HANDLERS.get(msg.command)
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

    def member_key(self, chan: ChannelState, nick: str) -> str | None:
        if nick in chan.members:
            return nick
        folded = self.casefold(nick)
        return next((k for k in chan.members if self.casefold(k) == folded), None)

    def remove_member(self, chan: ChannelState, nick: str) -> None:
        key = self.member_key(chan, nick)
        if key is not None:
            del chan.members[key]
            chan.accounts.pop(key, None)
        chan.bots = {b for b in chan.bots if self.casefold(b) != self.casefold(nick)}

    def shares_channel(self, nick: str) -> bool:
        """Whether ``nick`` is in one of our channels."""
        return any(self.member_key(chan, nick) is not None for chan in self.channels.values())

    def note_away(self, nick: str, away: bool) -> None:
        """``nick`` is away (or back); remembered only for us and people we see."""
        folded = self.casefold(nick)
        if not away:
            self.away.discard(folded)
        elif self.is_me(nick) or self.shares_channel(nick):
            self.away.add(folded)

    def forget_away_of_strangers(self) -> None:
        """Drop the away marks of people no channel of ours has any more."""
        members = {self.casefold(n) for chan in self.channels.values() for n in chan.members}
        me = self.casefold(self.nick)
        self.away = {n for n in self.away if n == me or n in members}

    def note_account(self, nick: str, account: str) -> None:
        """``nick`` is logged in to ``account`` (``*``: to none), in every shared channel."""
        for chan in self.channels.values():
            key = self.member_key(chan, nick)
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
            key = self.member_key(chan, nick)
            if key is not None:
                chan.bots.add(key)

    def _sort_prefixes(self, prefixes: str) -> str:
        symbols = self.prefixes()[1]
        return "".join(sorted(set(prefixes), key=lambda c: symbols.find(c)))

    def split_names_entry(self, entry: str) -> tuple[str, str]:
        symbols = self.prefixes()[1]
        i = 0
        while i < len(entry) and entry[i] in symbols:
            i += 1
        nick = entry[i:].split("!", 1)[0]
        return nick, self._sort_prefixes(entry[:i])

    def apply_channel_modes(self, chan: ChannelState, modes: str, args: list[str]) -> None:
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
                key = self.member_key(chan, nick)
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
