"""The history in memory: each conversation's newest messages, under one byte budget.

:class:`TargetCache` holds one conversation. Appends come a run at a time (the lines of
one read, see history_writer.Run), and a run is kept as it came: no message object is
built for it until a query looks at the conversation (:meth:`TargetCache.entries`). A
busy room that nobody queries costs one deque append per run and, once full, one pop per
run at the old end. Queries then see entries, ``((ms, seq), StoredMessage)`` in key order.

:class:`HistoryCache` holds every conversation's cache, least recently used first, and
keeps their estimated size under ``budget`` bytes by dropping whole conversations from
the cold end: a server with many rooms that emptied long ago (or many DM pairs) would
otherwise keep ~0.5 MB per room of long lines forever. A dropped conversation answers
from SQLite (and its spill) like any conversation not queried since start. Busy rooms
are appended to and replayed on join, so they stay at the warm end. It also holds the
spill (messages that left a cache before the writer committed them) and the sequence
watermarks, ``next_seq`` and ``committed_seq``, that appends and queries both read.

There is no msgid index: keeping one cost a dict insert and delete per message, and
msgid lookups are rare (CHATHISTORY references). The server's msgids end in
``-<seq in hex>`` (history_model.msgid_seq), so :meth:`TargetCache.find` bisects by that
sequence. A memory-only store fed someone else's msgids (a cluster node: Redis entry
ids) keeps an ``aliases`` dict of those per conversation instead, bounded like the cache.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import accumulate, chain, islice, repeat, takewhile
from operator import attrgetter, ge, itemgetter, lt
from typing import NamedTuple

from chat_server.history_model import (
    Entry,
    Key,
    StoredMessage,
    entry_key,
    entry_seq,
    msgid_seq,
)
from chat_server.history_writer import (
    Run,
    run_last_seq,
    run_msgids,
    run_seq,
    run_size,
    run_texts,
)

# Estimated bytes a cached message costs beyond its text's length, measured with
# tracemalloc (CPython 3.11): ~345 B as an entry made from a run, ~450 B as a run of one
# line not yet made an entry, ~434 B as an entry loaded from SQLite. 1,000 lines of 150
# characters come to ~0.58 MB, as measured for a room of long lines.
MESSAGE_BYTES = 432
# A TargetCache with its two deques and its place in the dict.
CONVERSATION_BYTES = 1536

_message_text = attrgetter("text")
_entry_message = itemgetter(1)


class Evicted(NamedTuple):
    """What an append pushed out of a cache: entries, runs that left whole, and the
    estimated bytes (texts_bytes) they took."""

    entries: list[Entry]
    runs: list[Run]
    nbytes: int


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


def texts_bytes(texts: list[str]) -> int:
    """Estimated bytes of cached messages with these texts: MESSAGE_BYTES each plus the
    text's length. Joined then measured: 3x cheaper than sum(map(len, ...)) for the
    few lines of a read, and this runs once per read on the hot path."""
    return len(texts) * MESSAGE_BYTES + len("".join(texts))


def entries_bytes(entries: Iterable[Entry]) -> int:
    """:func:`texts_bytes` of cached entries."""
    return texts_bytes(list(map(_message_text, map(_entry_message, entries))))


def runs_bytes(runs: Iterable[Run]) -> int:
    """:func:`texts_bytes` of cached runs."""
    return texts_bytes(list(chain.from_iterable(map(run_texts, runs))))


class TargetCache:
    """The newest messages of one conversation, in key order.

    Held as ``items`` (entries, the older part) followed by ``runs`` (appended since the
    last query, not yet made entries). Invariant once ``loaded``: the cache holds every
    message of the conversation whose key is >= its first key (a contiguous newest
    slice); ``complete`` means it holds every message there is. Before ``loaded`` (a
    conversation not yet queried since start) it holds only what was appended since
    start and queries must load it first. ``nbytes`` is the estimated size of what it
    holds (MESSAGE_BYTES a message plus its text).
    """

    __slots__ = ("aliases", "cap", "complete", "items", "last_key", "loaded", "nbytes",
                 "run_count", "runs", "seq_ordered", "slack")  # fmt: skip

    def __init__(self, cap: int, *, loaded: bool, complete: bool) -> None:
        self.cap = cap
        # Up to this many over cap between trims, so the oldest leave in groups.
        self.slack = cap // 16
        self.items: deque[Entry] = deque()
        self.runs: deque[Run] = deque()
        self.run_count = 0  # messages in runs
        self.nbytes = 0
        self.last_key: Key | None = None  # the newest key held
        self.loaded = loaded
        self.complete = complete
        # Whether sequences rise along the items too (they do unless an entry had to
        # be inserted out of place): then the newest evicted has the highest sequence,
        # and a sequence is found by bisection.
        self.seq_ordered = True
        # msgid -> seq of held messages whose msgid does not end in their own sequence
        # (memory-only stores only; see the module docstring).
        self.aliases: dict[str, int] = {}

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

    def add_run(self, run: Run, nbytes: int) -> Evicted | None:
        """Append a run newer than everything cached (else it is inserted as entries);
        ``nbytes`` is its :func:`texts_bytes`. Returns what did not stay, or None when
        all did (the usual answer, so it allocates nothing)."""
        seq, time_ms, _, _, _, _, _, _, texts = run
        last = self.last_key
        if last is not None and (time_ms, seq) < last:  # a clock step back: rare
            return self.extend(run_entries(run), nbytes)
        n = len(texts)
        self.nbytes += nbytes
        self.runs.append(run)
        self.run_count += n
        self.last_key = (time_ms, seq + n - 1)
        if len(self.items) + self.run_count - self.cap <= self.slack:
            return None
        return self._trim()

    def extend(self, entries: list[Entry], nbytes: int) -> Evicted | None:
        """Insert entries in key order (among themselves they are in key order already);
        ``nbytes`` is their :func:`entries_bytes`. Returns what did not stay, as
        :meth:`add_run` does."""
        items = self.entries()
        left: list[Entry] = []
        self.nbytes += nbytes
        if not items or entry_key(entries[0]) > entry_key(items[-1]):
            items.extend(entries)
        else:  # a clock step back or a late message: rare, O(n) each is fine
            self.seq_ordered = False
            for entry in entries:
                key = entry_key(entry)
                if not self.complete and key < entry_key(items[0]):
                    left.append(entry)  # older than the slice we hold: not ours to keep
                else:
                    items.insert(bisect_right(items, key, key=entry_key), entry)
        if items:
            self.last_key = entry_key(items[-1])
        freed = 0
        if left:
            freed = entries_bytes(left)
            self.nbytes -= freed
            self._forget_aliases(left, ())
        trimmed = self._trim()
        if trimmed is None:
            return Evicted(left, [], freed) if left else None
        return Evicted(left + trimmed.entries, trimmed.runs, freed + trimmed.nbytes)

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
            ends = list(takewhile(partial(ge, over), accumulate(map(len, map(run_texts, runs)))))
            k = len(ends)
            if k:
                pop = runs.popleft
                gone = [pop() for _ in range(k)]
                self.run_count -= ends[k - 1]
        freed = (entries_bytes(left) if left else 0) + (runs_bytes(gone) if gone else 0)
        self.nbytes -= freed
        if self.aliases:
            self._forget_aliases(left, gone)
        return Evicted(left, gone, freed)

    def _forget_aliases(self, entries: Iterable[Entry], runs: Iterable[Run]) -> None:
        """Drop the aliases of messages that left (only if no newer copy took them)."""
        aliases = self.aliases
        if not aliases:
            return
        pairs = [(msg.msgid, seq) for (_, seq), msg in entries]
        for run in runs:
            first = run_seq(run)
            pairs += zip(run_msgids(run), range(first, first + run_size(run)), strict=True)
        for msgid, seq in pairs:
            if aliases.get(msgid) == seq:
                del aliases[msgid]

    def top_seq(self, evicted: Evicted) -> int:
        """The highest sequence among what :meth:`add_run`/:meth:`extend` returned."""
        left, gone, _ = evicted
        top = -1
        if left:
            top = entry_seq(left[-1]) if self.seq_ordered else max(map(entry_seq, left))
        if gone:  # runs are appended in sequence order
            top = max(top, run_last_seq(gone[-1]))
        return top

    def newest_seq(self) -> int:
        """The highest sequence held (-1 when empty)."""
        top = -1
        if self.runs:
            top = run_last_seq(self.runs[-1])
        items = self.items
        if items:
            top = max(top, entry_seq(items[-1]) if self.seq_ordered else max(map(entry_seq, items)))
        return top

    def fill(self, entries: list[Entry]) -> None:
        """Set the contents from entries sorted by key (a load from disk)."""
        self.items = deque(entries)
        self.runs.clear()
        self.run_count = 0
        self.nbytes = entries_bytes(entries)
        self.last_key = entry_key(entries[-1]) if entries else None
        seqs = list(map(entry_seq, entries))
        self.seq_ordered = all(map(lt, seqs, islice(seqs, 1, None)))

    def find(self, seq: int, msgid: str) -> Key | None:
        """The key of the cached message numbered ``seq``, if it carries ``msgid``.

        Sequences rise with keys unless the clock stepped back: then the walk, over at
        most ``cap + slack`` entries in memory."""
        items = self.entries()
        if self.seq_ordered:
            i = bisect_left(items, seq, key=entry_seq)
            if i < len(items):
                key, msg = items[i]
                if key[1] == seq and msg.msgid == msgid:
                    return key
            return None
        for key, msg in items:
            if key[1] == seq:
                return key if msg.msgid == msgid else None
        return None

    def bounds(self, lo: Key | None, hi: Key | None) -> tuple[int, int]:
        """Index range [i, j) of the cached entries with lo < key < hi."""
        items = self.entries()
        i = 0 if lo is None else bisect_right(items, lo, key=entry_key)
        j = len(items) if hi is None else bisect_left(items, hi, key=entry_key)
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
        return lo is not None and bool(items) and lo >= entry_key(items[0])


class HistoryCache:
    """Every conversation's cache under one byte budget, the spill, and the sequences.

    Not thread-safe: the store's lock guards every call. ``persistent`` says whether a
    database stands behind the caches: only then may what leaves a cache be forgotten
    once written (until then it waits in the spill), and only then does ``budget``
    apply (a memory-only store has nowhere else to answer from). ``budget=None`` means
    no bound.
    """

    def __init__(self, cap: int, *, persistent: bool, budget: int | None) -> None:
        if budget is not None and budget < 0:
            raise ValueError("history cache budget must be at least 0 bytes")
        self.cap = cap
        self.persistent = persistent
        self.budget = budget if persistent else None
        # What add() compares with (infinite without a budget): one test on the hot path.
        self._limit: float = float("inf") if self.budget is None else self.budget
        self.nbytes = 0  # estimated, of every cache (CONVERSATION_BYTES each + messages)
        self.dropped = 0  # conversations dropped to stay under the budget
        self.next_seq = 1  # the next sequence an append may have, at the least
        # Every seq <= this is in SQLite or given up for good (set by the writer): what
        # is above it must stay visible from memory.
        self.committed_seq = 0
        self._caches: OrderedDict[str, TargetCache] = OrderedDict()  # coldest first
        # Entries that left a cache before the writer committed them, per target:
        # queries merge them in so nothing appended is ever invisible.
        self._spill: dict[str, list[Entry]] = {}
        self._spill_count = 0
        self._spill_sweep_at = 1024

    def __len__(self) -> int:
        return len(self._caches)

    def __contains__(self, target: str) -> bool:
        return target in self._caches

    def get(self, target: str) -> TargetCache | None:
        """The conversation's cache, if it has one (not counted as a use)."""
        return self._caches.get(target)

    def touch(self, target: str) -> None:
        """Count a use of the conversation: it becomes the last to be dropped."""
        if target in self._caches:
            self._caches.move_to_end(target)

    def keys(self) -> Iterator[str]:
        """Conversations with anything in memory (a cache or a spill)."""
        yield from self._caches
        yield from (key for key in self._spill if key not in self._caches)

    def clear(self) -> None:
        """Forget every cache; what is not written yet goes to the spill."""
        for target, cache in self._caches.items():
            if self.persistent and cache.newest_seq() > self.committed_seq:
                self.spill_add(target, list(cache.entries()))
        self._caches.clear()
        self.nbytes = 0

    def add(self, target: str, run: Run, entry: Entry | None = None) -> None:
        """Cache ``run`` (``entry``, when given, is its one message as is): the append
        path, once per read. Raises ValueError for a sequence below next_seq."""
        first, _, _, _, _, _, _, _, texts = run
        if first < self.next_seq:
            raise ValueError(f"history seq {first} is below next_seq {self.next_seq}")
        n = len(texts)
        self.next_seq = first + n
        caches = self._caches
        cache = caches.get(target)
        if cache is None:
            # Nothing to load when memory-only; otherwise older history may be on
            # disk and the first query loads it.
            memory = not self.persistent
            cache = caches[target] = TargetCache(self.cap, loaded=memory, complete=memory)
            self.nbytes += CONVERSATION_BYTES
        else:
            caches.move_to_end(target)
        nbytes = n * MESSAGE_BYTES + len("".join(texts))  # texts_bytes(), inlined: hot path
        self.nbytes += nbytes
        if entry is None:
            evicted = cache.add_run(run, nbytes)
        else:
            _, msg = entry
            if not self.persistent and msgid_seq(msg.msgid) != first:
                cache.aliases[msg.msgid] = first
            evicted = cache.extend([entry], nbytes)
        if evicted is not None:
            self.nbytes -= evicted.nbytes
            if self.persistent and cache.top_seq(evicted) > self.committed_seq:
                left, gone, _ = evicted
                for old in gone:
                    left += run_entries(old)
                self.spill_add(target, left)
        if self.nbytes > self._limit:
            self._shrink()

    def replace(self, target: str, cache: TargetCache) -> None:
        """Put a freshly loaded cache in place of the conversation's old one (if any)."""
        old = self._caches.get(target)
        if old is None:
            self.nbytes += CONVERSATION_BYTES
        else:
            self.nbytes -= old.nbytes
        self.nbytes += cache.nbytes
        self._caches[target] = cache
        self._caches.move_to_end(target)
        if self.nbytes > self._limit:
            self._shrink()

    def _shrink(self) -> None:
        """Drop the least recently used conversations until within the budget; the
        most recent one always stays (it is the one being used). What a dropped cache
        held that is not written yet goes to the spill, so it stays visible."""
        caches = self._caches
        while self.nbytes > self._limit and len(caches) > 1:
            target, cache = caches.popitem(last=False)
            self.nbytes -= cache.nbytes + CONVERSATION_BYTES
            self.dropped += 1
            if cache.newest_seq() > self.committed_seq:
                self.spill_add(target, list(cache.entries()))

    # -- the spill ------------------------------------------------------------------------

    def spill_add(self, target: str, left: list[Entry]) -> None:
        """Keep what left ``target``'s cache and is not committed yet."""
        done = self.committed_seq
        kept = [e for e in left if entry_seq(e) > done]
        if not kept:
            return
        self._spill.setdefault(target, []).extend(kept)
        self._spill_count += len(kept)
        if self._spill_count >= self._spill_sweep_at:
            self._spill_sweep()

    def _spill_sweep(self) -> None:
        """Forget spilled entries the writer has committed; amortised O(1) per append."""
        done = self.committed_seq
        total = 0
        for target in list(self._spill):
            kept = [e for e in self._spill[target] if entry_seq(e) > done]
            if kept:
                self._spill[target] = kept
                total += len(kept)
            else:
                del self._spill[target]
        self._spill_count = total
        self._spill_sweep_at = max(1024, 2 * total)

    def spill_of(self, target: str, done: int) -> list[Entry]:
        """The target's spilled entries not committed as of ``done``, dropping the rest.

        ``done`` must be the committed sequence read *before* the SQL query whose result
        this completes: the writer may commit more in between, and those rows are in
        neither that result nor (if filtered by a newer value) this list.
        """
        spilled = self._spill.get(target)
        if not spilled:
            return []
        kept = [e for e in spilled if entry_seq(e) > done]
        if len(kept) < len(spilled):
            self._spill_count -= len(spilled) - len(kept)
            if kept:
                self._spill[target] = kept
            else:
                del self._spill[target]
        return kept
