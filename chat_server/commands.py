"""The command table: one small handler per IRC command, found by name."""

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
    min_params: int
    registered: bool
    free: bool  # does not cost a flood-control token (PING/PONG)


COMMANDS: dict[str, CommandSpec] = {}


def command(
    name: str, *, min_params: int = 0, registered: bool = True, free: bool = False
) -> Callable[[HandlerFunc], HandlerFunc]:
    """Register ``func`` as the handler of ``name``."""

    def register(func: HandlerFunc) -> HandlerFunc:
        COMMANDS[name] = CommandSpec(name, func, min_params, registered, free)
        return func

    return register


def load_handlers() -> None:
    """Import the handler modules so that their decorators fill the table."""
    from chat_server.handlers import (  # noqa: F401
        channels,
        chathistory,
        messaging,
        modes,
        operators,
        queries,
        registration,
    )
