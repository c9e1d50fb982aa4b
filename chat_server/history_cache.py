"""The newest messages of one conversation in memory, for appends at line rate.

Appends come a run at a time (all the lines of one read), so the cost that matters is
per run: one ``extend`` and one trim. There is no msgid index: keeping one cost a dict
insert and delete per message, and msgid lookups are rare (CHATHISTORY references).
The server's msgids end in ``-<seq in hex>``, so :meth:`TargetCache.find` bisects by
that sequence first and scans only for foreign msgids.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import deque
from itertools import islice, pairwise

from chat_server.history_model import Entry, Key

SEQ_SUFFIX = re.compile(r"-([0-9a-f]{1,15})", re.ASCII)


def _entry_key(entry: Entry) -> Key:
    return entry[0]


def _entry_seq(entry: Entry) -> int:
    return entry[0][1]


class TargetCache:
    """The newest messages of one conversation, sorted by key.

    Invariant once ``loaded``: the cache holds every message of the conversation whose
    key is >= its first key (a contiguous newest slice); ``complete`` means it holds
    every message there is. Before ``loaded`` (a conversation not yet queried since
    start) it holds only what was appended since start and queries must load it first.
    """

    __slots__ = ("cap", "complete", "items", "loaded", "seq_ordered", "slack")

    def __init__(self, cap: int, *, loaded: bool, complete: bool) -> None:
        self.cap = cap
        self.slack = cap // 16
        self.items: deque[Entry] = deque()
        self.loaded = loaded
        self.complete = complete
        # Whether sequences rise along the items too (they do unless an entry had to
        # be inserted out of place): then the newest evicted has the highest sequence.
        self.seq_ordered = True

    def extend(self, entries: list[Entry]) -> list[Entry]:
        """Insert in key order; return the entries that did not stay (evicted or too old).

        ``entries`` are in key order among themselves (one sender's run of lines). The
        cache may hold up to ``slack`` entries over ``cap`` between trims, so that the
        oldest leave in groups rather than one per append.
        """
        items = self.items
        left: list[Entry] = []
        if not items or entries[0][0] > items[-1][0]:
            items.extend(entries)
        else:  # a clock step back or a late message: rare, O(n) each is fine
            self.seq_ordered = False
            for entry in entries:
                if not self.complete and entry[0] < items[0][0]:
                    left.append(entry)  # older than the slice we hold: not ours to keep
                else:
                    items.insert(bisect_right(items, entry[0], key=_entry_key), entry)
        over = len(items) - self.cap
        if over > self.slack:
            self.complete = False
            popleft = items.popleft
            left += [popleft() for _ in range(over)]
        return left

    def fill(self, entries: list[Entry]) -> None:
        """Set the contents from entries sorted by key (a load from disk)."""
        self.items = deque(entries)
        self.seq_ordered = all(a[0][1] < b[0][1] for a, b in pairwise(entries))

    def top_seq(self, entries: list[Entry]) -> int:
        """The highest sequence among ``entries``, evicted from this cache."""
        return entries[-1][0][1] if self.seq_ordered else max(e[0][1] for e in entries)

    def find(self, msgid: str) -> Key | None:
        """The key of the cached message with this msgid."""
        items = self.items
        suffix = SEQ_SUFFIX.search(msgid)
        if suffix is not None and suffix.end() == len(msgid) and items:
            # Sequences rise with keys except after a clock step back; then the scan.
            seq = int(suffix.group(1), 16)
            i = bisect_left(items, seq, key=_entry_seq)
            if i < len(items) and items[i][1].msgid == msgid:
                return items[i][0]
        for key, msg in reversed(items):
            if msg.msgid == msgid:
                return key
        return None

    def bounds(self, lo: Key | None, hi: Key | None) -> tuple[int, int]:
        """Index range [i, j) of the cached entries with lo < key < hi."""
        items = self.items
        i = 0 if lo is None else bisect_right(items, lo, key=_entry_key)
        j = len(items) if hi is None else bisect_left(items, hi, key=_entry_key)
        return i, max(i, j)

    def slice(self, i: int, j: int) -> list[Entry]:
        """items[i:j] for a deque, walking from whichever end is nearer."""
        items = self.items
        n = len(items)
        if i >= j:
            return []
        if i < n - j:
            return list(islice(items, i, j))
        tail = list(islice(reversed(items), n - j, n - i))
        tail.reverse()
        return tail

    def covers_above(self, lo: Key | None) -> bool:
        """True when every message with key > lo is in the cache."""
        if self.complete:
            return True
        return lo is not None and bool(self.items) and lo >= self.items[0][0]
