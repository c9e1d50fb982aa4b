"""The bot's view of its connection: the part of the IRC client it uses, and the
questions about it that event handling, built-ins and answers all ask (is this nick
me? who is a bot? in which room was this asked?).
"""

from __future__ import annotations

from typing import Protocol

from bot.triggers import Request
from chat_protocol import Message
from chat_protocol.casemap import casefold
from chat_protocol.client_types import ChannelState


class ChatLink(Protocol):
    """The part of ``chat_protocol.client.IRCClient`` the worker uses."""

    @property
    def nick(self) -> str: ...

    @property
    def caps(self) -> set[str]: ...

    @property
    def channels(self) -> dict[str, ChannelState]: ...

    async def privmsg(
        self, target: str, text: str, *, tags: dict[str, str] | None = None
    ) -> None: ...

    async def notice(self, target: str, text: str) -> None: ...

    async def tagmsg(self, target: str, tags: dict[str, str]) -> None: ...

    async def join(self, channel: str, key: str | None = None) -> None: ...

    async def send(self, msg: Message | str) -> None: ...

    async def request(self, msg: Message | str, timeout: float = 10.0) -> list[Message]: ...

    async def history_latest(self, target: str, limit: int = 100) -> list[Message]: ...


def is_me(link: ChatLink, nick: str | None) -> bool:
    """Whether ``nick`` is the bot's own nick now."""
    return nick is not None and casefold(nick) == casefold(link.nick)


def known_bots(link: ChatLink) -> set[str]:
    """Every nick marked +B in the rooms the bot is in."""
    bots: set[str] = set()
    for state in link.channels.values():
        bots.update(state.bots)
    return bots


def room_of(link: ChatLink, request: Request) -> ChannelState | None:
    """The room ``request`` was asked in; None for a private chat."""
    return link.channels.get(casefold(request.target)) if request.in_room else None
