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
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perf.connection import Client

MAX_BURST = 1000  # bound on catch-up sends per sender per loop turn


def phase_us(rank: int, total: int, interval_us: int) -> int:
    """Offset of the ``rank``-th of ``total`` senders within one sending interval."""
    return interval_us * rank // max(1, total)


class RateSchedule:
    """A heap of (due time, sender) at ``interval_us`` per sender.

    Phases are spread evenly over the whole run, not per process (as wrk2 spreads its
    connections): the sender of rank ``k`` among all ``total`` senders of the run, in
    whichever worker it lives, first sends at ``start + k * interval / total``. So the
    run's senders take turns one ``interval / total`` apart and the offered load is as
    steady within a second as over the run. (Each process seeding one random generator
    alike made sender k of every process fire at the same moment: a "steady" 200 msg/s
    swung ±35 % within each second.)
    """

    def __init__(
        self,
        senders: list[Client],
        interval_us: int,
        start_us: int,
        end_us: int,
        rank: Mapping[int, int],
        total: int,
    ) -> None:
        self.interval_us = max(1, interval_us)
        self.end_us = end_us
        self.heap: list[tuple[int, int, Client]] = [
            (start_us + phase_us(rank[c.index], total, self.interval_us), c.index, c)
            for c in senders
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
