"""What each IRC message shows: one small handler per command, found through a table.

``talk`` has what people say (messages, notices, typing, invitations), ``rooms`` who
comes and goes and what rooms are about, ``replies`` the server's answers and errors.
Each handler adds lines to ``ChatState`` rooms and notes in the ``Update`` what to
redraw; none keeps membership or topics (chat_protocol's state does).
"""

from __future__ import annotations

from chat_tui.incoming import replies, rooms, talk
from chat_tui.incoming.table import HANDLERS, Handler

__all__ = ["HANDLERS", "Handler", "handler_for", "replies", "rooms", "talk"]


def handler_for(command: str) -> Handler | None:
    """The handler of ``command``; 4xx/5xx numerics without one of their own are errors."""
    handler = HANDLERS.get(command)
    if handler is None and command.isdigit() and command[0] in "45":
        return replies.error_numeric
    return handler
