"""The table from IRC command (or numeric) to the handler that shows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chat_protocol import Message
from chat_tui.update import Update

if TYPE_CHECKING:
    from chat_tui.state import ChatState

# (state, message, whether it is history, what it changed)
Handler = Callable[["ChatState", Message, bool, Update], None]
HANDLERS: dict[str, Handler] = {}


def handles(*commands: str) -> Callable[[Handler], Handler]:
    """Register a handler for IRC commands or numerics."""

    def register(func: Handler) -> Handler:
        for command in commands:
            HANDLERS[command] = func
        return func

    return register
