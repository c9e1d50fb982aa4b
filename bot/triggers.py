"""When the bot speaks: addressed in a room, a reply to its own line, or any direct
message — never to bots.

Loops between bots are prevented here, at the door: a message from a bot (``bot``
message tag, or a nick seen with ``+B``), from the bot itself, or sent as a NOTICE
(which by IRC convention must never be answered automatically) is not a request.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass

from chat_protocol import Message
from chat_protocol.casemap import casefold, is_channel

# After the nick: ':' or ',' (with optional space), or just whitespace for '@nick'.
_PUNCT = ":,"


@dataclass(frozen=True, slots=True)
class Request:
    """Something someone asked the bot: where to answer, who asked, and the text."""

    asker: str
    target: str  # the room, or the asker's nick for a direct message
    text: str
    msgid: str | None = None
    reply_to: str | None = None  # the bot's own line this one replies to (+draft/reply)

    @property
    def in_room(self) -> bool:
        return is_channel(self.target)

    @property
    def prefix(self) -> str:
        """How a reply begins: the asker's nick in a room, nothing in a private chat."""
        return f"{self.asker}: " if self.in_room else ""


def addressed_text(text: str, nick: str) -> str | None:
    """The text after ``nick:``, ``nick,`` or ``@nick`` at the start, else None.

    ``bot: hi``, ``Bot, hi``, ``@bot hi`` and ``@bot: hi`` all address ``bot``;
    ``bots: hi``, ``robot: hi`` and ``bot hi`` do not (the nick must be a whole word
    followed by punctuation, or be @-mentioned).
    """
    text = text.lstrip()
    at = text.startswith("@")
    if at:
        text = text[1:]
    if len(text) < len(nick) or casefold(text[: len(nick)]) != casefold(nick):
        return None
    rest = text[len(nick) :]
    if rest and rest[0] in _PUNCT:
        return rest[1:].strip()
    if at and (not rest or rest[0].isspace()):
        return rest.strip()
    return None


def _is_bot_sender(msg: Message, bot_nicks: Iterable[str]) -> bool:
    if "bot" in msg.tags or "draft/bot" in msg.tags:
        return True
    sender = casefold(msg.nick or "")
    return any(casefold(n) == sender for n in bot_nicks)


def request_from(
    msg: Message,
    own_nick: str,
    bot_nicks: Iterable[str] = (),
    own_msgids: Container[str] = (),
) -> Request | None:
    """The Request in ``msg``, or None when the bot should stay silent.

    In a room the bot must be addressed, or the message must be a reply (``+draft/reply``
    tag) to one of the bot's own lines, whose msgids are ``own_msgids``.
    """
    if msg.command != "PRIVMSG" or len(msg.params) < 2 or not msg.nick:
        return None
    sender = msg.nick
    if casefold(sender) == casefold(own_nick) or _is_bot_sender(msg, bot_nicks):
        return None
    target, text = msg.params[0], msg.params[1]
    if text.startswith("\x01"):
        return None  # CTCP (VERSION, PING, even ACTION) is never a question for the model
    msgid = msg.tags.get("msgid")
    replied = msg.tags.get("+draft/reply") or msg.tags.get("+reply")
    reply_to = replied if replied and replied in own_msgids else None
    if is_channel(target):
        question = addressed_text(text, own_nick)
        if question is None:
            if reply_to is None:
                return None
            question = text.strip()
        return Request(sender, target, question, msgid, reply_to)
    if casefold(target) != casefold(own_nick):
        return None
    return Request(sender, sender, text.strip(), msgid, reply_to)
