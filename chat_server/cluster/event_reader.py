"""The reader thread of a node's link: the event stream and the node's message shards,
read as one stream in one order, and any gap in them.

A node reads ``dc:events`` (state events, direct messages) and the shards of its rooms
(``dc:m:<n>``, see shards.py) with one ``XREAD`` of all of them. Every entry of every
stream takes its id from one counter (scripts.py), so ids are unique and increasing
across streams, and one XREAD is atomic: when no stream of a reply came back full
(``READ_COUNT``), every stream read is complete up to the newest id of the reply; when
some did, only up to the oldest last id among those. The reader hands the loop the
entries up to that *watermark*, merged in id order, and reads every stream from the
watermark next time (what lay beyond it is read again). So the loop sees one order of
events, as when there was one stream, filtered to the streams this node reads.

The loop decides which shards are read (subscriptions.py). A shard added for a room
that just got a local member is read from the loop's last applied position, not from
the reader's newer one: ``follow(rewind=...)`` restarts every stream from there, and
the loop drops the batches it was handed since (they carry the older rewind count).

Gaps. The streams keep ``cluster_stream_keep`` seconds (scripts.py trims them by time),
so a node cut off longer, or that far behind, resumes after entries that are gone.
Every entry carries its stream's ordinal ``q`` (1, 2, 3, ...): a jump means entries of
that stream are missing, and a ``q`` that went back means Redis lost its data. Reads
after a start, a rewind or an idle wait also take each stream's count (``dc:seq``) and
the newest id given out (``dc:lastid``) in the same MULTI, which finds streams that lost
their newest entries too, and lets an idle reader move its watermark on. The loop hears
of a ``Gap`` before the entries after it, with the messages of that time that the
conversations' own histories (``dc:h:<key>``) still hold.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import RedisError

from chat_server.cluster.scripts import EVENTS, LAST_ID, ORDINALS
from chat_server.cluster.shards import keys_of_stream

if TYPE_CHECKING:
    from chat_server.cluster.stats import LinkStats

log = logging.getLogger("chat_server.cluster")

READ_COUNT = 2000  # entries per stream per read
BLOCK_MS = 100  # a read waits this long for news, then looks at its streams again

Entry = tuple[str, dict[str, str]]


def entry_ms(entry_id: str) -> int:
    """The milliseconds (Redis's clock) of a stream id."""
    return int(entry_id.partition("-")[0])


def id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class ReadPosition:
    """How far the streams a node reads were handed to the loop: every entry up to
    ``upto`` (an id, not necessarily of an entry), and the ordinal of the last entry of
    each stream (missing: not known yet)."""

    upto: str
    ordinals: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Batch:
    """Entries for the loop, in id order, from every stream read."""

    entries: list[Entry]
    upto: ReadPosition
    rewinds: int  # the loop applies only batches read since its last rewind


@dataclass(slots=True)
class Gap:
    """Events this node never read: those after ``since`` and before ``until``."""

    since: str  # the position read up to before the gap
    until: str  # the first entry read after it (the newest, when several streams had one)
    data_lost: bool  # Redis lost its data (a restart without persistence), not trimmed
    fresh: bool  # found right after a resync: room and user state is already reloaded
    # stream -> where its missing entries end ('(' + the first entry read after them,
    # or the newest id when none was read after them)
    streams: dict[str, str] = field(default_factory=dict)
    # conversation key -> the gap's messages its history still holds (stream rows)
    history: dict[str, list[Any]] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)  # keys whose history was trimmed too


@dataclass(slots=True)
class _Read:
    """One reply taken apart: what to hand over, and any gap found in it."""

    entries: list[Entry]
    upto: ReadPosition
    complete: bool  # no stream was cut by READ_COUNT
    spans: dict[str, str]
    data_lost: bool


class EventReader:
    """Reads ``dc:events`` and the followed shards on its own connection, and posts
    their entries to the loop.

    It reads only between ``resume`` (a resync is done) and ``pause`` (a resync or an
    outage begins), and resumes from the last position it handed over, so a short
    outage loses nothing.
    """

    def __init__(
        self,
        connect: Callable[[float], redis.Redis],
        post: Callable[[tuple[Any, ...]], None],
        stopping: threading.Event,
        history_max: int,
        shard_count: int,
        stats: LinkStats,
    ) -> None:
        self._connect = connect
        self._post = post
        self._stopping = stopping
        self.history_max = history_max
        self.shard_count = shard_count
        self.stats = stats
        self.cond = threading.Condition()
        self._gen = 0  # bumped whenever what is being read must be dropped
        self._pos: ReadPosition | None = None  # where to read next; None = paused
        self._check = False  # the next read is a checking one (MULTI with the counts)
        self._resynced = False  # nothing read since the last resync
        self._streams: tuple[str, ...] = (EVENTS,)
        self.rewinds = 0
        self.last: ReadPosition | None = None  # newest position handed to the loop

    # -- the link's and the loop's side ------------------------------------------------

    def pause(self) -> ReadPosition | None:
        """Stop reading and drop what is being read; returns the last position handed over."""
        with self.cond:
            self._gen += 1
            self._pos = None
            return self.last

    def resume(self, sync_id: str) -> None:
        """Read again after a resync: from the last position handed over, or (the first
        time) right after our sync entry."""
        with self.cond:
            self._pos = self.last or ReadPosition(sync_id)
            self._check = self._resynced = True
            self.cond.notify_all()

    def follow(self, streams: tuple[str, ...], rewind: ReadPosition | None) -> int:
        """Read ``streams`` from now on. With ``rewind`` (the loop's last applied
        position), read every stream again from there: a shard just added must be read
        from where the loop stands. Returns the rewind count a batch must carry for the
        loop to apply it."""
        with self.cond:
            self._streams = streams
            if rewind is not None:
                self.rewinds += 1
                self._gen += 1
                self.last = rewind
                if self._pos is not None:
                    self._pos = rewind
                    self._check = True
                self.cond.notify_all()
            return self.rewinds

    def read_upto(self) -> str | None:
        """The newest position handed over while reading; None while paused."""
        last = self.last
        return last.upto if last is not None and self._pos is not None else None

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    # -- the thread --------------------------------------------------------------------

    def run(self) -> None:
        client: redis.Redis | None = None
        while not self._stopping.is_set():
            with self.cond:
                self.cond.wait_for(
                    lambda: self._stopping.is_set() or self._pos is not None, timeout=1.0
                )
                gen, pos, check = self._gen, self._pos, self._check
                streams, rewinds, resynced = self._streams, self.rewinds, self._resynced
            if pos is None:
                continue
            try:
                if client is None:
                    client = self._connect(5.0)
                read = None
                if not check:
                    reply: Any = client.xread(
                        dict.fromkeys(streams, pos.upto), count=READ_COUNT, block=BLOCK_MS
                    )
                    if reply:
                        read = self._take(reply, pos, streams)
                if read is None:  # a start, a rewind, or nothing new for a while
                    read = self._read_checked(client, pos, streams)
                gap = None
                if read.spans or read.data_lost:
                    gap = Gap(pos.upto, _newest(read.spans, read.upto.upto), read.data_lost,
                              resynced, dict(read.spans))  # fmt: skip
                    if not read.data_lost:
                        self._gap_history(client, gap)
            except RedisError as exc:
                log.debug("cluster: reader: %s", exc)
                client = None
                self._stopping.wait(0.2)
                continue
            with self.cond:
                if gen != self._gen:
                    continue  # a resync, an outage or a rewind began meanwhile: read again
                if read.complete:
                    self._check = self._resynced = False
                if not read.entries and gap is None and read.upto == pos:
                    continue
                self._pos = self.last = read.upto
                if gap is not None:
                    self._post(("gap", gap, rewinds))
                self._post(("events", Batch(read.entries, read.upto, rewinds)))

    def _read_checked(
        self, client: redis.Redis, pos: ReadPosition, streams: tuple[str, ...]
    ) -> _Read:
        """A read without waiting, with every stream's count and the newest id given out,
        all at one instant (MULTI)."""
        pipe = client.pipeline(transaction=True)
        pipe.xread(dict.fromkeys(streams, pos.upto), count=READ_COUNT)
        pipe.hmget(ORDINALS, list(streams))
        pipe.get(LAST_ID)
        reply, counts, newest = pipe.execute()
        counted = {s: int(c or 0) for s, c in zip(streams, counts, strict=True)}
        return self._take(reply or [], pos, streams, counted, newest)

    def _take(
        self,
        reply: list[Any],
        pos: ReadPosition,
        streams: tuple[str, ...],
        counts: dict[str, int] | None = None,
        newest: str | None = None,
    ) -> _Read:
        """The reply's entries up to its watermark, in id order, with the gaps they show."""
        by_stream: dict[str, list[Entry]] = {str(name): entries for name, entries in reply}
        cut = [e[-1][0] for e in by_stream.values() if len(e) >= READ_COUNT]
        if cut:
            upto = min(cut, key=id_order)
        elif newest is not None:
            upto = newest
        elif by_stream:
            upto = max((e[-1][0] for e in by_stream.values() if e), key=id_order)
        else:
            upto = pos.upto
        if id_order(upto) < id_order(pos.upto):
            upto = pos.upto  # never back (Redis restarted empty with a clock behind ours)
        limit = id_order(upto)
        ordinals: dict[str, int] = {}
        spans: dict[str, str] = {}
        lost = False
        merged: list[Entry] = []
        sources = 0
        read = self.stats.entries_read
        for name in streams:
            entries = by_stream.get(name) or []
            if cut:
                entries = [e for e in entries if id_order(e[0]) <= limit]
            prev = pos.ordinals.get(name)
            for entry_id, fields in entries:
                q = fields.get("q")
                if q is None:  # written by an older node: no ordinal to check
                    prev = None
                    continue
                if prev is not None and int(q) != prev + 1:
                    lost = lost or int(q) <= prev
                    spans.setdefault(name, "(" + entry_id)
                prev = int(q)
            if counts is not None and not cut:
                # Everything of this stream up to ``upto`` is in hand: its count says
                # whether newer entries than those we got were there (and are gone).
                count = counts.get(name, 0)
                if prev is not None and count < prev:
                    lost = True
                elif prev is not None and count > prev:
                    spans.setdefault(name, upto)
                prev = count
            if prev is not None:
                ordinals[name] = prev
            if entries:
                sources += 1
                merged += entries
                read[name] = read.get(name, 0) + len(entries)
        if sources > 1:
            merged.sort(key=lambda e: id_order(e[0]))
        return _Read(merged, ReadPosition(upto, ordinals), not cut, spans, lost)

    def _gap_history(self, client: redis.Redis, gap: Gap) -> None:
        """The gap's messages from the histories of the conversations of the streams
        that had one, and the conversations whose history was trimmed past our position
        (some of theirs are gone)."""
        every = sorted(str(k) for k in client.smembers("dc:histkeys"))
        keys = [
            (key, end)
            for stream, end in gap.streams.items()
            for key in keys_of_stream(stream, every, self.shard_count)
        ]
        pipe = client.pipeline(transaction=False)
        for key, end in keys:
            name = "dc:h:" + key
            pipe.xrange(name, "(" + gap.since, end, count=self.history_max)
            pipe.xrange(name, "-", "+", count=1)
            pipe.xlen(name)
        results = pipe.execute()
        since = id_order(gap.since)
        for i, (key, _) in enumerate(keys):
            rows, oldest, length = results[3 * i : 3 * i + 3]
            if rows:
                gap.history[key] = rows
            if oldest and id_order(oldest[0][0]) > since and length >= self.history_max:
                gap.gone.append(key)


def _newest(spans: dict[str, str], upto: str) -> str:
    """The newest end of the gap's streams (for the time span a notice names)."""
    ends = [end.lstrip("(") for end in spans.values()] or [upto]
    return max(ends, key=id_order)
