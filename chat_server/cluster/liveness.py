"""When a node may declare others dead, and how often it repeats that Redis is away.

Split from the link (redis_link.py) because both are pure bookkeeping: they hold times,
never a connection, and are tested without Redis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("chat_server.cluster")

REMINDER_FIRST = 60.0  # an outage is logged once, then again after 1, 2, 4 ... minutes
REMINDER_MAX = 600.0


@dataclass(slots=True)
class Outage:
    """When the link went down and when to say again that it still is (logs stay few)."""

    since: float
    next_reminder: float
    interval: float = REMINDER_FIRST

    def reminder_due(self, now: float) -> bool:
        """Whether to say again that Redis is still away (then twice as long till next)."""
        if now < self.next_reminder:
            return False
        self.interval = min(self.interval * 2, REMINDER_MAX)
        self.next_reminder = now + self.interval
        return True


@dataclass(slots=True)
class Liveness:
    """When this node may declare others dead: only after ``grace`` seconds of steady
    contact with Redis.

    Contact starts over at every (re)connection, when Redis's ``run_id`` changes (a
    restart or a failover to another instance, even behind a proxy that kept our
    connection) and when two of our heartbeats are further apart than ``stall``
    seconds: then Redis, or this process, stood still, and the others' presence keys
    may have expired without their fault. ``stall`` is below what it takes a
    heartbeat key to expire (ttl minus one heartbeat), so no such pause goes unseen.
    """

    grace: float
    stall: float
    since: float | None = None  # start of the current steady contact; None = none
    last_beat: float | None = None
    run_id: str | None = None

    def restart(self, now: float) -> None:
        self.since = now
        self.last_beat = None

    def lost(self) -> None:
        self.since = None
        self.last_beat = None

    def beat(self, now: float, run_id: str | None) -> bool:
        """A heartbeat succeeded at ``now``; True when the node may reap."""
        if run_id is not None and self.run_id is not None and run_id != self.run_id:
            log.warning("cluster: redis restarted or failed over (new run_id); grace period")
            self.since = now
        if run_id is not None:
            self.run_id = run_id
        if self.last_beat is not None and now - self.last_beat > self.stall:
            log.info(
                "cluster: %.1f s between heartbeats (redis or this node stalled); grace period",
                now - self.last_beat,
            )
            self.since = now
        self.last_beat = now
        return self.since is not None and now - self.since >= self.grace
