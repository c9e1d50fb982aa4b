"""What one entry of the command table says: handler, parameters needed, flood cost.

Separate from the table (commands.py), which imports every handler module: a handler
module that needs these types imports them from here without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_protocol.message import Message
    from chat_server.model import User
    from chat_server.server import Server

HandlerFunc = Callable[["Server", "User", "Message"], None]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """How to dispatch a command: its handler, how many params it needs, and when."""

    name: str
    func: HandlerFunc
    min_params: int = 0
    registered: bool = True  # only after registration (else 451)
    cost: int = 1  # flood-control tokens a line of it takes (every line takes at least 1)
