"""Textual messages that carry connection events into the UI."""

from __future__ import annotations

from textual.message import Message

from chat_protocol import Message as IRCMessage
from chat_protocol.client_account import RegisterReply
from chat_protocol.client_types import Event


class ClientEvent(Message):
    """One event from the IRC connection, delivered on the UI's message queue."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class SendFailed(Message):
    """An outgoing line could not be sent; ``text`` is what the user typed, to keep."""

    def __init__(self, text: str, error: str) -> None:
        super().__init__()
        self.text = text
        self.error = error


class HistoryLoaded(Message):
    """Older messages for ``room`` arrived (empty: there are no more)."""

    def __init__(self, room: str, messages: list[IRCMessage], failed: str = "") -> None:
        super().__init__()
        self.room = room
        self.messages = messages
        self.failed = failed


class AroundLoaded(Message):
    """The lines around ``msgid`` in ``room`` arrived (a search result to show);
    ``cut``: the lines between them and the loaded ones did not all fit."""

    def __init__(
        self,
        room: str,
        msgid: str,
        messages: list[IRCMessage],
        cut: bool = False,
        failed: str = "",
    ) -> None:
        super().__init__()
        self.room = room
        self.msgid = msgid
        self.messages = messages
        self.cut = cut
        self.failed = failed


class TargetsLoaded(Message):
    """The conversations with recent messages (``CHATHISTORY TARGETS``): their names."""

    def __init__(self, targets: list[str]) -> None:
        super().__init__()
        self.targets = targets


class AccountRegistered(Message):
    """The server's answer to /register (``reply``), or ``failed``: why none came."""

    def __init__(self, reply: RegisterReply | None, failed: str = "") -> None:
        super().__init__()
        self.reply = reply
        self.failed = failed
