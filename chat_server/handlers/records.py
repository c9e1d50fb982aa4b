"""What the handlers remember per server beyond the chat model.

Nick history for WHOWAS, failed OPER and SASL attempts and accounts created by
address, the most users seen for LUSERS, and who MONITORs whom: one record the server
owns as ``server.records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_server.monitor import MonitorIndex
from chat_server.throttle import FailureThrottle
from chat_server.whowas import NickHistory


@dataclass(slots=True)
class HandlerRecords:
    """One server's records (see the module docstring)."""

    whowas: NickHistory = field(default_factory=NickHistory)
    oper_failures: FailureThrottle = field(default_factory=lambda: FailureThrottle("OPER"))
    # SASL logins that failed (a few free, then a growing wait per address)
    login_failures: FailureThrottle = field(default_factory=lambda: FailureThrottle("SASL login"))
    # Accounts created by REGISTER: each counts, so one address makes at most a few
    # an hour (each costs a scrypt hash and a row), with a growing wait after.
    registrations: FailureThrottle = field(
        default_factory=lambda: FailureThrottle(
            "REGISTER (accounts created)", free_failures=5, base_delay=60.0
        )
    )
    max_local_users: int = 0
    max_global_users: int = 0
    monitors: MonitorIndex = field(default_factory=MonitorIndex)  # MONITOR (presence.py)
