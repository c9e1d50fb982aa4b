"""Who is in a room and what it is about, read from chat_protocol's ``SessionState``.

The TUI derives none of this itself: members, their prefixes, bots, accounts, away
marks and topics are what the shared protocol state (the one the bot uses too) makes
of the server's messages. This module only puts them in the order the member list
shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat_protocol.client_state import SessionState


@dataclass(frozen=True, slots=True)
class Member:
    """One row of the member list."""

    nick: str
    prefixes: str = ""  # highest rank first, e.g. "@+"
    bot: bool = False
    away: bool = False
    account: str | None = None


class Roster:
    """Read-only questions about the channels in ``irc``."""

    def __init__(self, irc: SessionState) -> None:
        self.irc = irc

    def topic(self, room: str) -> str:
        """The topic of channel ``room``; empty when it has none or we are not in it."""
        channel = self.irc.channel(room)
        return channel.topic if channel is not None else ""

    def members(self, room: str) -> list[Member]:
        """The members of ``room``: ops first, then voiced, then the rest, by name."""
        channel = self.irc.channel(room)
        if channel is None:
            return []
        symbols = self.irc.prefixes()[1]
        rows = [
            Member(
                nick,
                prefixes,
                bot=nick in channel.bots,
                away=self.irc.is_away(nick),
                account=channel.accounts.get(nick),
            )
            for nick, prefixes in channel.members.items()
        ]

        def rank(member: Member) -> tuple[int, str]:
            first = member.prefixes[:1]
            place = symbols.find(first) if first else -1
            return (place if place >= 0 else len(symbols), self.irc.casefold(member.nick))

        return sorted(rows, key=rank)

    def channels_with(self, nick: str) -> list[str]:
        """The names of our channels that ``nick`` is in."""
        folded = self.irc.casefold(nick)
        return [
            channel.name
            for channel in self.irc.channels.values()
            if any(self.irc.casefold(member) == folded for member in channel.members)
        ]

    def is_away(self, nick: str) -> bool:
        return self.irc.is_away(nick)
