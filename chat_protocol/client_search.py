"""SEARCH (``soju.im/search``) on the client side: the query line and reading its answer.

``SEARCH in=#room;text=some words;from=nick;after=<time>;before=<time>;limit=N``: the
attributes are escaped like message-tag values, every one is optional, and the answer
is the matching messages (oldest first, with their time and msgid) inside one
``soju.im/search`` batch, or a ``FAIL SEARCH`` when the server refuses the query.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat_protocol.client_history import history_only
from chat_protocol.message import Message, format_tags

SEARCH_CAP = "soju.im/search"
SEARCH_BATCH = "soju.im/search"


class SearchFailed(Exception):
    """The server refused or could not run a search; the text says why."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to look for. ``target`` None searches every conversation we may read."""

    text: str = ""
    target: str | None = None
    sender: str | None = None
    after: str | None = None  # server-time, exclusive
    before: str | None = None  # server-time, exclusive
    limit: int | None = None

    def to_message(self) -> Message:
        """The SEARCH line; ValueError when there is nothing to search for."""
        if not (self.text.split() or self.sender or self.target):
            raise ValueError("nothing to search for: give words, a sender or a target")
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must not be negative")
        attrs = {
            "in": self.target or "",
            "from": self.sender or "",
            "text": " ".join(self.text.split()),
            "after": self.after or "",
            "before": self.before or "",
            "limit": "" if self.limit is None else str(self.limit),
        }
        return Message("SEARCH", [format_tags({k: v for k, v in attrs.items() if v})])


def search_results(reply: list[Message]) -> list[Message]:
    """The found messages of a SEARCH reply (oldest first); SearchFailed on a refusal."""
    for msg in reply:
        if msg.command == "FAIL" or (msg.command.isdigit() and msg.command[0] in "45"):
            raise SearchFailed(msg.params[-1] if msg.params else msg.command)
    return history_only(reply)
