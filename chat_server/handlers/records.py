"""What the handlers remember per server beyond the chat model.

Nick history for WHOWAS, failed OPER attempts by address, and the most users seen for
LUSERS: one record the server owns as ``server.records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_server.throttle import FailureThrottle
from chat_server.whowas import NickHistory


@dataclass(slots=True)
class HandlerRecords:
    """One server's records (see the module docstring)."""

    whowas: NickHistory = field(default_factory=NickHistory)
    oper_failures: FailureThrottle = field(default_factory=lambda: FailureThrottle("OPER"))
    max_local_users: int = 0
    max_global_users: int = 0
