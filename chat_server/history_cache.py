"""The newest messages of one conversation in memory, for appends at line rate.

Appends come a run at a time (the lines of one read, see history_writer.Run), and a
run is kept as it came: no message object is built for it until a query looks at the
conversation (:meth:`TargetCache.entries`). A busy room that nobody queries costs one
deque append per run and, once full, one pop per run at the old end. Queries then see
entries, ``((ms, seq), StoredMessage)`` in key order.

There is no msgid index: keeping one cost a dict insert and delete per message, and
msgid lookups are rare (CHATHISTORY references). The server's msgids end in
``-<seq in hex>``, so :meth:`TargetCache.find` bisects by that sequence first and scans
only for foreign msgids.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import deque
from functools import partial
from itertools import accumulate, islice, pairwise, repeat, takewhile
from operator import ge, itemgetter

from chat_server.history_model import Entry, Key, StoredMessage
from chat_server.history_writer import Run, run_size

SEQ_SUFFIX = re.compile(r"-([0-9a-f]{1,15})", re.ASCII)

# What an append pushed out of a cache: entries, and runs that left whole.
Evicted = tuple[list[Entry], list[Run]]

_texts = itemgetter(8)  # a run's texts


def _entry_key(entry: Entry) -> Key:
    return entry[0]


def _entry_seq(entry: Entry) -> int:
    return entry[0][1]


def run_entries(run: Run) -> list[Entry]:
    """The entries of a run, built with C iterators (no Python frame per message)."""
    seq, time_ms, target, source, command, recipient, tags, msgids, texts = run
    fields = zip(
        msgids,
        repeat(time_ms / 1000),
        repeat(target),
        repeat(source),
        repeat(command),
        repeat(recipient),
        texts,
        repeat(tags),
    )
    # tuple.__new__ skips the NamedTuple's Python-level __new__: 4x cheaper.
    messages = map(tuple.__new__, repeat(StoredMessage), fields)
    keys = zip(repeat(time_ms), range(seq, seq + len(texts)))
    return list(zip(keys, messages, strict=True))


class TargetCache:
    """The newest messages of one conversation, in key order.

    Held as ``items`` (entries, the older part) followed by ``runs`` (appended since the
    last query, not yet made entries). Invariant once ``loaded``: the cache holds every
    message of the conversation whose key is >= its first key (a contiguous newest
    slice); ``complete`` means it holds every message there is. Before ``loaded`` (a
    conversation not yet queried since start) it holds only what was appended since
    start and queries must load it first.
    """

    __slots__ = ("cap", "complete", "items", "loaded", "run_count", "runs", "seq_ordered", "slack")

    def __init__(self, cap: int, *, loaded: bool, complete: bool) -> None:
        self.cap = cap
        # Up to this many over cap between trims, so the oldest leave in groups.
        self.slack = cap // 16
        self.items: deque[Entry] = deque()
        self.runs: deque[Run] = deque()
        self.run_count = 0  # messages in runs
        self.loaded = loaded
        self.complete = complete
        # Whether sequences rise along the items too (they do unless an entry had to
        # be inserted out of place): then the newest evicted has the highest sequence.
        self.seq_ordered = True

    def __len__(self) -> int:
        return len(self.items) + self.run_count

    def entries(self) -> deque[Entry]:
        """Every cached message as an entry, in key order (for queries)."""
        runs = self.runs
        if runs:
            items = self.items
            for run in runs:
                items.extend(run_entries(run))
            runs.clear()
            self.run_count = 0
        return self.items

    def add_run(self, run: Run) -> Evicted | None:
        """Append a run newer than everything cached (else it is inserted as entries);
        returns what did not stay, as entries and as whole runs, or None when all did
        (the usual answer, so it allocates nothing)."""
        runs = self.runs
        if runs:
            newest = runs[-1]
            last: Key | None = (newest[1], newest[0] + len(newest[8]) - 1)
        else:
            last = self.items[-1][0] if self.items else None
        if last is not None and (run[1], run[0]) < last:  # a clock step back: rare
            return self.extend(run_entries(run))
        runs.append(run)
        self.run_count += len(run[8])  # run_size(), without the call: once per read
        if len(self.items) + self.run_count - self.cap <= self.slack:
            return None
        return self._trim()

    def extend(self, entries: list[Entry]) -> Evicted | None:
        """Insert entries in key order (among themselves they are in key order already);
        returns what did not stay, as :meth:`add_run` does."""
        items = self.entries()
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
        trimmed = self._trim()
        if trimmed is None:
            return (left, []) if left else None
        return left + trimmed[0], trimmed[1]

    def _trim(self) -> Evicted | None:
        """Drop the oldest down to ``cap``: entries one by one, runs only whole (a run
        bigger than what must go stays, so the cache is never under ``cap``).

        Runs leave ``slack`` messages at a time; how many runs that is comes from C
        iterators over their sizes, not a Python step per run."""
        over = len(self) - self.cap
        if over <= self.slack:
            return None
        self.complete = False
        items = self.items
        n = min(over, len(items))
        popleft = items.popleft
        left = [popleft() for _ in range(n)] if n else []
        over -= n
        gone: list[Run] = []
        runs = self.runs
        if over and runs:  # items is empty now: runs are the oldest
            # Running totals of the oldest runs' sizes while they fit in `over`: the
            # walk stops at the first run that does not.
            ends = list(takewhile(partial(ge, over), accumulate(map(len, map(_texts, runs)))))
            k = len(ends)
            if k:
                pop = runs.popleft
                gone = [pop() for _ in range(k)]
                self.run_count -= ends[k - 1]
        return left, gone

    def top_seq(self, left: list[Entry], gone: list[Run]) -> int:
        """The highest sequence among what :meth:`add_run`/:meth:`extend` returned."""
        top = -1
        if left:
            top = left[-1][0][1] if self.seq_ordered else max(e[0][1] for e in left)
        if gone:  # runs are appended in sequence order
            top = max(top, gone[-1][0] + run_size(gone[-1]) - 1)
        return top

    def fill(self, entries: list[Entry]) -> None:
        """Set the contents from entries sorted by key (a load from disk)."""
        self.items = deque(entries)
        self.runs.clear()
        self.run_count = 0
        self.seq_ordered = all(a[0][1] < b[0][1] for a, b in pairwise(entries))

    def find(self, msgid: str) -> Key | None:
        """The key of the cached message with this msgid."""
        items = self.entries()
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
        items = self.entries()
        i = 0 if lo is None else bisect_right(items, lo, key=_entry_key)
        j = len(items) if hi is None else bisect_left(items, hi, key=_entry_key)
        return i, max(i, j)

    def slice(self, i: int, j: int) -> list[Entry]:
        """entries()[i:j], walking from whichever end is nearer."""
        items = self.entries()
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
        items = self.entries()
        return lo is not None and bool(items) and lo >= items[0][0]
