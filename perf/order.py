"""Whether all members of a room saw the room's messages in one and the same order.

``perf.sequence`` checks each (sender, room) stream on its own: loss, duplicates, order.
It cannot see how different senders' messages were interleaved. A server that gives one
member A's message before B's and another member B's before A's loses nothing and keeps
every stream in order, yet the two read different conversations. One order per room for
all members is what a cluster of nodes promises; this module checks it.

Each worker logs, a whole receive batch at a time (numpy columns, nothing per line),
which receiver got which message (sender id and sequence number), in arrival order. Past
``LOG_CAP`` entries it keeps only the messages of every other time slot, then every
fourth, and so on: slots of the *scheduled* send time every message carries, so that
every receiver keeps the same messages, and a kept slot keeps everything sent in it by
any sender — the near-simultaneous sends that can race.

The coordinator compares, room by room, each receiver's order with a reference
receiver's (the one that logged the most) on the messages both logged: a receiver cut
early, or one whose worker kept fewer slots, is compared on what it shares with the
reference. A disagreement is a place where a receiver's order steps back in the
reference's order; one swapped pair is one disagreement. Receivers are compared with the
reference only, not with each other, so a message the reference never got is not
compared at all (it is counted as lost anyway). Not logged: a sender's own messages
coming back (echo-message), and payloads relayed to a room their sender does not speak
in (``perf.receive``'s strays, counted line by line).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

SEQ_BITS = 39  # a message's key: sender id (< 2**24) above, sequence number below
SEQ_MASK = (1 << SEQ_BITS) - 1
SLOT_SHIFT = 14  # time slots of 2**14 µs (16 ms) of scheduled send time
LOG_CAP = 1 << 17  # entries a worker logs (3 MiB) before it keeps fewer slots
MAX_STRIDE = 1 << 32  # thinning stops here (a log whose messages share one slot)
EXAMPLES = 3


def message_key(sender: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """One int64 per message: equal keys are the same message at every receiver."""
    return (sender << SEQ_BITS) | seq


def describe(key: int) -> str:
    return f"sender {key >> SEQ_BITS} #{key & SEQ_MASK}"


@dataclass(slots=True)
class ArrivalOrders:
    """One worker's log as sent to the coordinator: per (room, receiver id) the keys of
    the messages it got, in arrival order, from 1 in ``stride`` time slots."""

    stride: int
    orders: dict[tuple[str, int], np.ndarray]


class ArrivalLog:
    """Deliveries of one worker in arrival order, bounded by thinning out time slots."""

    def __init__(self, cap: int = LOG_CAP) -> None:
        self.cap = cap
        self.stride = 1
        self.kept = 0
        # Per logged batch: receiver slots, message keys, scheduled send times.
        self._slots: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._sched: list[np.ndarray] = []

    def add(
        self, slots: np.ndarray, sender: np.ndarray, seq: np.ndarray, sched: np.ndarray
    ) -> None:
        """One batch: receiver slot, sender, sequence number and scheduled time per
        delivery, in arrival order (the arrays are kept, not copied)."""
        if self.stride > 1 and len(sched):
            low, high = int(sched.min()) >> SLOT_SHIFT, int(sched.max()) >> SLOT_SHIFT
            if low == high:  # the usual batch: a few ms of sends, one slot, kept or not
                if low & (self.stride - 1):
                    return
            else:
                keep = ((sched >> SLOT_SHIFT) & (self.stride - 1)) == 0
                slots, sender, seq, sched = slots[keep], sender[keep], seq[keep], sched[keep]
        if not len(slots):
            return
        self._slots.append(slots)
        self._keys.append(message_key(sender, seq))
        self._sched.append(sched)
        self.kept += len(slots)
        if self.kept > self.cap:
            self._thin()

    def _merge(self) -> None:
        """One array per column (what ``_thin`` and ``export`` work on)."""
        for parts in (self._slots, self._keys, self._sched):
            if len(parts) != 1:
                parts[:] = [np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)]

    def _thin(self) -> None:
        """Keep every other slot of those kept, until the log fits its cap again."""
        self._merge()
        (slots,), (keys,), (sched,) = self._slots, self._keys, self._sched
        while len(keys) > self.cap and self.stride < MAX_STRIDE:
            self.stride *= 2
            keep = ((sched >> SLOT_SHIFT) & (self.stride - 1)) == 0
            slots, keys, sched = slots[keep], keys[keep], sched[keep]
        self._slots, self._keys, self._sched = [slots], [keys], [sched]
        self.kept = len(keys)
        if self.kept > self.cap:  # no slots left to drop: grow rather than merge per batch
            self.cap = 2 * self.kept

    def export(
        self, receiver_of_slot: np.ndarray, room_of_sender: np.ndarray, room_names: list[str]
    ) -> ArrivalOrders:
        """The log per (room, receiver id); a receiver's room is its sender's room."""
        self._merge()
        (slots,), (keys,) = self._slots, self._keys
        orders: dict[tuple[str, int], np.ndarray] = {}
        if len(keys):
            group = slots * len(room_names) + room_of_sender[keys >> SEQ_BITS]
            by = np.argsort(group, kind="stable")  # keeps each receiver's arrival order
            group, keys = group[by], keys[by]
            cuts = np.flatnonzero(group[1:] != group[:-1]) + 1
            for part, g in zip(np.split(keys, cuts), group[np.r_[0, cuts]].tolist(), strict=True):
                slot, room = divmod(g, len(room_names))
                orders[(room_names[room], int(receiver_of_slot[slot]))] = part
        return ArrivalOrders(self.stride, orders)


@dataclass(slots=True)
class OrderCheck:
    """What the comparison found, for summary.json (``as_dict``)."""

    rooms: int = 0  # rooms where two or more receivers were compared
    receivers: int = 0  # receivers compared with their room's reference
    compared: int = 0  # their deliveries that the reference got too
    disagreements: int = 0  # steps back in the reference's order
    receivers_disagreeing: int = 0
    rooms_disagreeing: int = 0
    stride: int = 1  # 1 in this many time slots compared (1: every message)
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def first_arrivals(keys: np.ndarray) -> np.ndarray:
    """``keys`` without repeats, each where it first arrived (a duplicate is counted as
    such elsewhere; its second copy says nothing about order)."""
    _, first = np.unique(keys, return_index=True)
    if len(first) == len(keys):
        return keys
    return keys[np.sort(first)]


def compare_orders(logs: Iterable[ArrivalOrders]) -> OrderCheck:
    """Compare every room's receivers with the room's reference receiver."""
    check = OrderCheck()
    rooms: dict[str, list[tuple[int, np.ndarray]]] = {}
    for log in logs:
        check.stride = max(check.stride, log.stride)
        for (room, receiver), keys in log.orders.items():
            rooms.setdefault(room, []).append((receiver, first_arrivals(keys)))
    for room, got in sorted(rooms.items()):
        if len(got) < 2:
            continue
        got.sort(key=lambda rk: (-len(rk[1]), rk[0]))
        ref_id, ref = got[0]
        if not len(ref):
            continue
        check.rooms += 1
        rank = np.argsort(ref, kind="stable")
        ref_sorted = ref[rank]
        bad_receivers = 0
        for receiver, keys in got[1:]:
            pos = np.minimum(np.searchsorted(ref_sorted, keys), len(ref_sorted) - 1)
            found = ref_sorted[pos] == keys
            ranks = rank[pos[found]]
            check.receivers += 1
            check.compared += len(ranks)
            back = np.flatnonzero(ranks[1:] < ranks[:-1])
            if not len(back):
                continue
            bad_receivers += 1
            check.disagreements += len(back)
            if len(check.examples) < EXAMPLES:
                common = keys[found]
                i = int(back[0])
                check.examples.append(
                    f"{room}: receiver {receiver} got {describe(int(common[i]))} before "
                    f"{describe(int(common[i + 1]))}, receiver {ref_id} the other way round"
                )
        check.receivers_disagreeing += bad_receivers
        check.rooms_disagreeing += bool(bad_receivers)
    return check
