"""What the handlers remember per server beyond the chat model.

Nick history for WHOWAS, failed OPER attempts by address, and the most users seen for
LUSERS. Kept beside the server (looked up by it) rather than on it, so that handlers
can own their state; a server that is gone takes its records with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from chat_server.throttle import FailureThrottle
from chat_server.whowas import NickHistory

if TYPE_CHECKING:
    from chat_server.server import Server


@dataclass(slots=True)
class HandlerRecords:
    """One server's records (see the module docstring)."""

    whowas: NickHistory = field(default_factory=NickHistory)
    oper_failures: FailureThrottle = field(default_factory=lambda: FailureThrottle("OPER"))
    max_local_users: int = 0
    max_global_users: int = 0


_BY_SERVER: WeakKeyDictionary[Server, HandlerRecords] = WeakKeyDictionary()


def handler_records(server: Server) -> HandlerRecords:
    """The records of ``server``, created on first use."""
    records = _BY_SERVER.get(server)
    if records is None:
        records = _BY_SERVER[server] = HandlerRecords()
    return records
