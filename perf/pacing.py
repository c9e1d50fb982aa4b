"""When senders send: a fixed schedule (``--rate``) or a window of messages in flight
(``--saturate``).

Rate mode keeps the schedule even when the generator falls behind: late messages go out
in a burst carrying their *scheduled* times, so the delay shows up as latency instead of
silently lowering the offered load (coordinated omission). Saturate mode keeps at most
``window`` messages per sender unacknowledged (by echo-message, or by a co-located
receiver's receipt), so a fast sender cannot just pile up the server's send queues.
"""

from __future__ import annotations

import heapq
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perf.connection import Client

MAX_BURST = 1000  # bound on catch-up sends per sender per loop turn


class RateSchedule:
    """A heap of (due time, sender) at ``interval_us`` per sender, spread by random phase."""

    def __init__(self, senders: list[Client], interval_us: int, start_us: int, end_us: int) -> None:
        self.interval_us = max(1, interval_us)
        self.end_us = end_us
        rng = random.Random(7)
        self.heap: list[tuple[int, int, Client]] = [
            (start_us + rng.randrange(self.interval_us), c.index, c) for c in senders
        ]
        heapq.heapify(self.heap)

    def next_due(self) -> int | None:
        return self.heap[0][0] if self.heap else None

    def due(self, now_us: int) -> dict[Client, list[int]]:
        """Pop everything due by ``now_us``; returns scheduled times per sender."""
        out: dict[Client, list[int]] = {}
        heap = self.heap
        step = self.interval_us
        while heap and heap[0][0] <= now_us:
            t, idx, client = heapq.heappop(heap)
            times = out.setdefault(client, [])
            times.append(t)
            nxt = t + step
            while nxt <= now_us and nxt < self.end_us and len(times) < MAX_BURST:
                times.append(nxt)
                nxt += step
            if nxt < self.end_us:
                heapq.heappush(heap, (nxt, idx, client))
        return out


def window_fill(client: Client, window: int) -> int:
    """How many messages this sender may send now."""
    return max(0, window - client.in_flight)
