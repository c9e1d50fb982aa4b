"""The reader thread of a node's link: the event stream in order, and any gap in it.

The stream keeps ``cluster_stream_keep`` seconds of events (scripts.py trims it by
time). A node that was cut off longer, or fell that far behind, resumes after entries
that are gone. Nothing in ``XREAD`` says so, so the reader checks whenever it starts
again at a position (after every resync) and whenever the next entry is more than a
second newer than the last one read: if the entry it last read is still in the stream,
nothing after it was trimmed (trimming removes the oldest first). If it is gone, the
loop hears of a ``Gap`` before the entries after it, with the messages of that time
that the conversations' own histories (``dc:h:<key>``) still hold.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.exceptions import RedisError

from chat_server.cluster.scripts import EVENTS

log = logging.getLogger("chat_server.cluster")

GAP_CHECK_MS = 1000  # a jump of more than this between entries read is looked into
READ_COUNT = 2000


def entry_ms(entry_id: str) -> int:
    """The milliseconds (Redis's clock) of a stream id."""
    return int(entry_id.partition("-")[0])


def id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(slots=True)
class Gap:
    """Events this node never read: those after ``since`` and before ``until``."""

    since: str  # the last entry read before the gap
    until: str  # the first entry read after it
    data_lost: bool  # Redis lost its data (a restart without persistence), not trimmed
    fresh: bool  # found right after a resync: room and user state is already reloaded
    # conversation key -> the gap's messages its history still holds (stream rows)
    history: dict[str, list[Any]] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)  # keys whose history was trimmed too


class EventReader:
    """Reads ``dc:events`` on its own connection and posts entries to the loop.

    It reads only between ``start_at`` (a resync is done) and ``pause`` (a resync or an
    outage begins), and resumes from the last entry it handed over, so a short outage
    loses nothing.
    """

    def __init__(
        self,
        connect: Callable[[float], redis.Redis],
        post: Callable[[tuple[Any, ...]], None],
        stopping: threading.Event,
        history_max: int,
    ) -> None:
        self._connect = connect
        self._post = post
        self._stopping = stopping
        self.history_max = history_max
        self.cond = threading.Condition()
        self._gen = 0  # bumped whenever what was read must be dropped
        self._pos: str | None = None  # where to read next; None = paused
        self._fresh = False  # nothing read since start_at
        self.last_seen: str | None = None  # newest entry handed to the loop

    def pause(self) -> str | None:
        """Stop reading and drop what is being read; returns the last entry handed over."""
        with self.cond:
            self._gen += 1
            self._pos = None
            return self.last_seen

    def start_at(self, pos: str) -> None:
        with self.cond:
            self._pos = pos
            self._fresh = True
            self.cond.notify_all()

    def read_upto(self) -> str | None:
        """The newest entry handed over while reading; None while paused."""
        return self.last_seen if self._pos is not None else None

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def run(self) -> None:
        client: redis.Redis | None = None
        while not self._stopping.is_set():
            with self.cond:
                self.cond.wait_for(
                    lambda: self._stopping.is_set() or self._pos is not None, timeout=1.0
                )
                gen, pos, fresh = self._gen, self._pos, self._fresh
            if pos is None:
                continue
            try:
                if client is None:
                    client = self._connect(5.0)
                reply: Any = client.xread({EVENTS: pos}, count=READ_COUNT, block=1000)
                if not reply:
                    continue
                entries = reply[0][1]
                first = entries[0][0]
                gap = None
                if fresh or entry_ms(first) - entry_ms(pos) > GAP_CHECK_MS:
                    gap = self._find_gap(client, pos, first, fresh)
            except RedisError as exc:
                log.debug("cluster: reader: %s", exc)
                client = None
                self._stopping.wait(0.2)
                continue
            with self.cond:
                if gen != self._gen:
                    continue  # a resync or an outage began meanwhile; re-read after it
                self._fresh = False
                self._pos = self.last_seen = entries[-1][0]
                if gap is not None:
                    self._post(("gap", gap))
                self._post(("events", entries))

    def _find_gap(self, client: redis.Redis, pos: str, first: str, fresh: bool) -> Gap | None:
        """None when nothing after ``pos`` can be missing; else what is known of the gap."""
        if client.xrange(EVENTS, pos, pos, count=1):
            return None  # still there: nothing newer was trimmed
        info: Any = client.xinfo_stream(EVENTS)
        added, length = info.get("entries-added"), info.get("length")
        # A stream that never lost an entry but lacks ours is a new one (Redis 7 counts
        # every entry ever added; older versions say nothing, and we assume trimming).
        data_lost = added is not None and int(added) <= int(length)
        gap = Gap(pos, first, data_lost, fresh)
        if not data_lost:
            self._gap_history(client, gap)
        return gap

    def _gap_history(self, client: redis.Redis, gap: Gap) -> None:
        """The gap's messages from each conversation's history, and the conversations
        whose history was trimmed past our position (some of theirs are gone)."""
        keys = sorted(str(k) for k in client.smembers("dc:histkeys"))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            name = "dc:h:" + key
            pipe.xrange(name, "(" + gap.since, "(" + gap.until, count=self.history_max)
            pipe.xrange(name, "-", "+", count=1)
            pipe.xlen(name)
        results = pipe.execute()
        since = id_order(gap.since)
        for i, key in enumerate(keys):
            rows, oldest, length = results[3 * i : 3 * i + 3]
            if rows:
                gap.history[key] = rows
            if oldest and id_order(oldest[0][0]) > since and length >= self.history_max:
                gap.gone.append(key)
