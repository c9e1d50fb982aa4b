"""Sequence accounting for every (receiver, sender) stream of one worker, in numpy arrays.

The rules are those of ``perf.sequence`` (highest number seen, gaps below it, late
arrivals that fill a gap are reordered, repeats are duplicates); only the bookkeeping is
batched. A batch of arrivals is grouped by stream with a stable sort, so each stream's
numbers stay in arrival order, and checked against "one more than the previous": when
every stream of the batch is in order — the normal case — the high marks and counts are
updated with a few array operations. Streams with any gap, repeat or reordering in the
batch replay that batch through ``perf.sequence.record_out_of_line`` one arrival at a
time, so rare anomalies are counted exactly the same way as before.
"""

from __future__ import annotations

import numpy as np

from perf.sequence import DUPS, GAPS, HI, REORDERS, UNIQUE, StreamTally, new_state
from perf.sequence import record_out_of_line as _record_out_of_line

SENDER_BITS = 24  # sender ids are below 10**7 < 2**24
_RADIX_LIMIT = 1 << 15  # stream ids fitting int16 sort by numpy's linear-time radix sort
DENSE_LIMIT = 1 << 22  # receivers x senders up to this: a direct table, else sorted keys
NEW = -1  # lookup: a stream not seen before
ECHO = -2  # lookup: the receiver's own message (echo-message)


def stream_key(receiver: np.ndarray | int, sender: np.ndarray | int) -> np.ndarray | int:
    """One integer per (receiver slot, sender id) pair."""
    return (receiver << SENDER_BITS) | sender  # type: ignore[operator]


class StreamTable:
    """High marks and counts per stream; gap sets only for streams that ever had one.

    ``own[slot]`` is the sender id of the receiver in that slot (its own messages are
    echoes, not a stream). Streams are found with one gather from a receivers x senders
    table when that is small, else by binary search in the sorted stream keys.
    """

    def __init__(self, own: list[int], senders: list[int]) -> None:
        self.count = 0
        self.own = np.array(own, dtype=np.int64)
        self.hi = np.zeros(64, dtype=np.int64)
        self.unique = np.zeros(64, dtype=np.int64)
        self.anomalies: dict[int, list] = {}  # stream id -> perf.sequence state (gaps etc.)
        self.owner: list[tuple[int, int]] = []  # stream id -> (receiver slot, sender id)
        self.dense = len(own) * max(1, len(senders)) <= DENSE_LIMIT
        if self.dense:
            self.width = max(1, len(senders))
            self.rank = np.zeros(max(senders, default=0) + 1, dtype=np.int64)
            self.rank[senders] = np.arange(len(senders))
            self.table = np.full(len(own) * self.width, NEW, dtype=np.int64)
            sending = set(senders)
            for slot, sid in enumerate(own):
                if sid in sending:
                    self.table[slot * self.width + self.rank[sid]] = ECHO
        self._keys = np.empty(0, dtype=np.int64)  # sorted (the sparse way)
        self._ids = np.empty(0, dtype=np.int64)  # stream id of each sorted key

    def lookup(self, slots: np.ndarray, senders: np.ndarray) -> np.ndarray:
        """Stream id per arrival, or ``NEW`` / ``ECHO``. Senders must be run senders."""
        if self.dense:
            return self.table.take(slots * self.width + self.rank.take(senders))
        ids = np.full(len(slots), NEW, dtype=np.int64)
        ids[senders == self.own.take(slots)] = ECHO
        if self.count:
            keys = stream_key(slots, senders)
            pos = np.searchsorted(self._keys, keys)
            np.minimum(pos, self.count - 1, out=pos)
            found = self._keys.take(pos) == keys
            ids[found] = self._ids.take(pos[found])
        return ids

    def add(self, receiver: int, sender: int) -> int:
        """Register a new stream; returns its id."""
        sid = self.count
        self.count += 1
        if sid == len(self.hi):
            self.hi = np.concatenate([self.hi, np.zeros_like(self.hi)])
            self.unique = np.concatenate([self.unique, np.zeros_like(self.unique)])
        self.owner.append((receiver, sender))
        if self.dense:
            self.table[receiver * self.width + self.rank[sender]] = sid
            return sid
        key = stream_key(receiver, sender)
        at = int(np.searchsorted(self._keys, key))
        self._keys = np.insert(self._keys, at, key)
        self._ids = np.insert(self._ids, at, sid)
        return sid

    def observe(self, stream: np.ndarray, seq: np.ndarray) -> None:
        """Record arrivals (in arrival order) of known streams."""
        n = len(stream)
        if n == 0:
            return
        if self.count <= _RADIX_LIMIT:
            order = np.argsort(stream.astype(np.int16), kind="stable")
        else:
            order = np.argsort(stream, kind="stable")
        g = stream[order]
        q = seq[order]
        head = np.empty(n, dtype=bool)
        head[0] = True
        np.not_equal(g[1:], g[:-1], out=head[1:])
        prev = np.empty(n, dtype=np.int64)
        prev[1:] = q[:-1]
        heads = head.nonzero()[0]
        prev[heads] = self.hi[g[heads]]
        wrong = q != prev + 1
        if not wrong.any():
            self._commit(g, q, heads)
            return
        odd = np.unique(g[wrong])
        in_odd = np.isin(g, odd)
        keep = ~in_odd
        if keep.any():
            g2, q2 = g[keep], q[keep]
            h2 = np.empty(len(g2), dtype=bool)
            h2[0] = True
            np.not_equal(g2[1:], g2[:-1], out=h2[1:])
            self._commit(g2, q2, h2.nonzero()[0])
        for i in (np.isin(stream, odd)).nonzero()[0].tolist():
            self.observe_one(int(stream[i]), int(seq[i]))

    def _commit(self, g: np.ndarray, q: np.ndarray, heads: np.ndarray) -> None:
        """Every group of ``g`` continues its stream in order: move marks and counts."""
        ends = np.empty_like(heads)
        ends[:-1] = heads[1:]
        ends[-1] = len(g)
        self.hi[g[heads]] = q[ends - 1]
        self.unique[g[heads]] += ends - heads

    def observe_one(self, stream: int, seq: int) -> None:
        """One arrival, any order (the slow path)."""
        hi = int(self.hi[stream])
        if seq == hi + 1:
            self.hi[stream] = seq
            self.unique[stream] += 1
            return
        st = self.anomalies.get(stream)
        if st is None:
            st = self.anomalies[stream] = new_state()
        st[HI] = hi
        st[UNIQUE] = int(self.unique[stream])
        _record_out_of_line(st, seq)
        self.hi[stream] = st[HI]
        self.unique[stream] = st[UNIQUE]

    def tally(self, stream: int) -> StreamTally:
        """This stream as one receiver's contribution to its (sender, room) tally."""
        st = self.anomalies.get(stream)
        return StreamTally(
            receivers=1,
            sum_hi=int(self.hi[stream]),
            unique=int(self.unique[stream]),
            gaps=len(st[GAPS]) if st and st[GAPS] else 0,
            dups=st[DUPS] if st else 0,
            reorders=st[REORDERS] if st else 0,
        )
