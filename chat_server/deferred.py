"""A command whose answer comes later (from the history worker), with its label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_server.connection import Connection
    from chat_server.model import User


@dataclass(frozen=True, slots=True)
class Deferred:
    """Who is waiting (the connection, which may close meanwhile) and the label its
    answer must carry (labeled-response), if any."""

    conn: Connection
    user: User
    label: str | None
