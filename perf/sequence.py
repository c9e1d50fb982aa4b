"""Per (sender, room) bookkeeping at one receiver: delivered, lost, duplicated, reordered.

Sequence numbers start at 1 per (sender, room). A receiver keeps the highest number seen
and the set of gaps below it; a late arrival that fills a gap is out of order, a number
seen twice is a duplicate. Loss is what is still missing at the end plus the tail the
receiver never saw, so ``delivered + lost == sent`` holds per receiver by construction of
two independent counts — which is exactly what tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

# Index names for the per-stream list the slow path mutates in place (``perf.streams``
# keeps the common in-order case in numpy arrays and replays anomalies through here).
HI, UNIQUE, GAPS, DUPS, REORDERS, ACK = range(6)


def new_state() -> list:
    """A fresh tracker: [highest seq, unique count, gap set, dups, reorders, ack target]."""
    return [0, 0, None, 0, 0, None]


def record_out_of_line(state: list, seq: int) -> None:
    """The slow path for anything but the next expected number."""
    hi = state[HI]
    if seq > hi:
        gaps = state[GAPS]
        if gaps is None:
            gaps = state[GAPS] = set()
        gaps.update(range(hi + 1, seq))
        state[HI] = seq
        state[UNIQUE] += 1
        return
    gaps = state[GAPS]
    if gaps and seq in gaps:
        gaps.discard(seq)
        state[UNIQUE] += 1
        state[REORDERS] += 1
    else:
        state[DUPS] += 1


def observe(state: list, seq: int) -> None:
    """Record one arrival, in order or not."""
    if seq == state[HI] + 1:
        state[HI] = seq
        state[UNIQUE] += 1
    else:
        record_out_of_line(state, seq)


@dataclass(slots=True)
class StreamTally:
    """Receivers' view of one (sender, room) stream, summed over receivers in a worker."""

    receivers: int = 0
    sum_hi: int = 0
    unique: int = 0
    gaps: int = 0
    dups: int = 0
    reorders: int = 0

    def add_state(self, state: list) -> None:
        self.receivers += 1
        self.sum_hi += state[HI]
        self.unique += state[UNIQUE]
        self.gaps += len(state[GAPS]) if state[GAPS] else 0
        self.dups += state[DUPS]
        self.reorders += state[REORDERS]

    def merge(self, other: StreamTally) -> None:
        self.receivers += other.receivers
        self.sum_hi += other.sum_hi
        self.unique += other.unique
        self.gaps += other.gaps
        self.dups += other.dups
        self.reorders += other.reorders

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.receivers, self.sum_hi, self.unique, self.gaps, self.dups, self.reorders)


@dataclass(slots=True)
class Accounting:
    """Totals over all streams: the numbers summary.json reports."""

    expected: int = 0
    delivered: int = 0
    lost: int = 0
    dups: int = 0
    reorders: int = 0
    overrun: int = 0  # receivers saw a seq beyond what was sent: a generator bug; always 0

    @property
    def balanced(self) -> bool:
        return self.expected == self.delivered + self.lost and self.overrun == 0


def account(
    sent: dict[tuple[int, str], int],
    tallies: dict[tuple[int, str], StreamTally],
    receivers_of: dict[tuple[int, str], int],
) -> Accounting:
    """Combine what senders sent with what receivers saw into loss/dup/reorder totals.

    ``receivers_of[(sender, room)]`` is how many joined members other than the sender
    should have received each message of that stream.
    """
    acc = Accounting()
    for key, n_sent in sent.items():
        n_recv = receivers_of.get(key, 0)
        tally = tallies.get(key, StreamTally())
        acc.expected += n_sent * n_recv
        acc.delivered += tally.unique
        acc.dups += tally.dups
        acc.reorders += tally.reorders
        over = max(0, tally.sum_hi - tally.receivers * n_sent)
        acc.overrun += over
        # Gaps below each receiver's high mark, the tail above it, and receivers that
        # saw nothing at all from this stream.
        tail = tally.receivers * n_sent - tally.sum_hi + over
        silent = max(0, n_recv - tally.receivers) * n_sent
        acc.lost += tally.gaps + tail + silent
    for key, tally in tallies.items():
        if key not in sent:  # deliveries from a stream nobody reported sending
            acc.overrun += tally.unique
    return acc
