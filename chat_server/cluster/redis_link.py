"""All Redis I/O of a node, on two threads, so that the selectors loop never waits on it.

The loop talks to the link through a queue of requests; the link answers through a
deque plus one byte on a socketpair whose read end the loop watches (``add_reader``).

- The command thread connects (and reconnects, with backoff), runs requests in
  pipelined batches, refreshes this node's presence key, reaps nodes whose presence
  expired and tells the loop which other nodes are live (``("nodes", [...])``). Every
  connection starts with ``("up",)``; the loop answers with a resync request carrying
  its local state.
- Liveness (see liveness.py): a node reaps others only after it has itself been in
  steady contact with Redis for the grace period, so an outage of Redis (all presence
  keys expire together) or its restart (all keys gone) kills nobody. The process's
  generation (see scripts.py) keeps a duplicate or replaced process from acting for
  the node; such a process is told ``("refused", why)`` and the server stops.
- Each resync also sets the node's *fence* (generation and link epoch): a publish
  still in flight on a lost connection that Redis runs after the resync is refused,
  so whatever was not in the stream before our sync entry never will be (see
  inflight.py for what the sender is told).
- The reader thread (event_reader.py) reads the event stream and the shards the loop
  follows between a resync and the next loss of the link, resuming from the last
  position it handed over.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

from chat_server.cluster.event_reader import EventReader
from chat_server.cluster.liveness import REMINDER_FIRST, Liveness, Outage
from chat_server.cluster.mailbox import Mailbox
from chat_server.cluster.script_runner import ScriptRunner
from chat_server.cluster.scripts import (
    DUPLICATE,
    EVENTS,
    FENCED,
    LAST_ID,
    SCRIPTS,
    SHARDS,
    STALE,
)
from chat_server.cluster.staging import NodeIdentity, load_history, stage_and_resync
from chat_server.cluster.stats import LinkStats

__all__ = ["Liveness", "RedisLink", "Refused", "Request", "fence_of", "safe_url"]

log = logging.getLogger("chat_server.cluster")

MAX_BATCH = 512


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return urlunsplit(parts._replace(netloc=user + netloc))
    except ValueError:
        return "<unparsable redis URL>"


def fence_of(generation: str, epoch: int) -> str:
    """The fence a resync sets and every later publish carries (see scripts.py)."""
    return f"{generation}:{epoch}"


class Refused(Exception):
    """Redis will not let this process act for its node id (duplicate or replaced)."""


@dataclass(slots=True)
class Request:
    """One thing for Redis to do; ``token`` 0 means nobody waits for the answer."""

    kind: str  # a script of scripts.py; resync's args: users, claims, rooms (staging.py)
    epoch: int
    args: list[Any] = field(default_factory=list)
    token: int = 0


class RedisLink:
    """The two Redis threads of a node and the wakeup channel back to its loop."""

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        ttl: float = 3.0,
        grace: float = 10.0,
        history_max: int = 1000,
        stream_keep: float = 600.0,
        preload: bool = True,
        shards: int = 16,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.generation = secrets.token_hex(8)  # this process's claim on the node id
        self.heartbeat = ttl / 3
        self.ttl_ms = int(ttl * 1000)
        self.grace = max(grace, ttl)
        # a pause longer than ttl - heartbeat can expire others' keys; notice it earlier
        self.liveness = Liveness(self.grace, stall=1.5 * self.heartbeat)
        self.refused: str | None = None  # why Redis refused this process its node id
        self._registered = False  # this process has been the node (resynced) before
        self.history_max = history_max
        # Whether a node starting empty reads every conversation's newest messages from
        # Redis: not with PostgreSQL, where a room's history is loaded at its first JOIN.
        self.preload = preload
        self.keep_ms = int(stream_keep * 1000)  # how much of the event stream Redis keeps
        self.shard_count = shards  # room messages go to this many streams (shards.py)
        self.stats = LinkStats()
        self.mailbox = Mailbox()  # what the threads post for the loop
        self.rsock = self.mailbox.rsock
        self._post = self.mailbox.post
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._epoch = 0  # bumped on every loss of the link; the loop keeps the same count
        self.reader = EventReader(
            self._connect, self._post, self._stopping, history_max, shards, self.stats
        )
        self._live: list[str] | None = None  # other nodes last reported live to the loop
        self.scripts = ScriptRunner()
        self._threads: list[threading.Thread] = []
        self._outage: Outage | None = None  # set by the command thread while unreachable

    # -- loop side -------------------------------------------------------------------

    def start(self) -> None:
        for target, name in (
            (self._command_main, "redis-commands"),
            (self.reader.run, "redis-reader"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, request: Request) -> None:
        self._requests.put(request)

    def drain(self) -> list[tuple[Any, ...]]:
        """What the threads posted since the last call (called when ``rsock`` is readable)."""
        return self.mailbox.drain()

    def stop(self, leave: bool = True) -> None:
        """Stop the threads; with ``leave``, free our nicks at once instead of by expiry."""
        self._stopping.set()
        self.reader.wake()
        if leave and self._outage is None and self.refused is None:
            try:
                client = redis.Redis.from_url(
                    self.url, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
                )
                reason = "Server shutting down"
                args = (self.node_id, reason, "1", self.generation)
                client.eval(SCRIPTS["reap"], 0, *args)
                client.close()
            except (RedisError, OSError, ValueError) as exc:
                log.warning("cluster: could not leave cleanly (%s); our nicks free on expiry", exc)
        elif leave:
            log.info("cluster: redis unreachable at shutdown; our nicks there free on expiry")
        for thread in self._threads:
            thread.join(timeout=1.0)
        self.mailbox.close()

    # -- thread side -----------------------------------------------------------------

    def _connect(self, timeout: float) -> redis.Redis:
        client = redis.Redis.from_url(
            self.url,
            socket_timeout=timeout,
            socket_connect_timeout=2.0,
            decode_responses=True,
            # No silent retries: a retried pipeline could run twice (double messages),
            # and a silent reconnect would hide that Redis restarted empty.
            retry=Retry(NoBackoff(), 0),
        )
        client.ping()
        return client

    def _command_main(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                client = self._connect(timeout=2.0)
                self.scripts.load(client)
            except Exception as exc:  # whatever it is, this thread must go on retrying
                self._unreachable(exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            if self._outage is not None:
                down = time.monotonic() - self._outage.since
                log.info("cluster: redis at %s reachable again after %.0f s", self.where, down)
                self._outage = None
            log.info("cluster: connected to redis at %s as node %s", self.where, self.node_id)
            self.stats.connects += 1
            self._post(("up",))
            try:
                self._serve(client)
            except Refused as exc:
                self.refused = str(exc)
                self._stopping.set()
                self._post(("refused", str(exc)))
            except (RedisError, OSError) as exc:
                if not self._stopping.is_set():
                    self._unreachable(exc)
            finally:
                self.liveness.lost()
                with contextlib.suppress(Exception):
                    client.close()

    @property
    def where(self) -> str:
        return safe_url(self.url)

    def _unreachable(self, exc: Exception) -> None:
        """One failed attempt. The loop hears of an outage once (it logs and tells the
        clients); here a long outage is recalled at growing intervals, never per retry."""
        reason = _reason(exc)
        now = time.monotonic()
        outage = self._outage
        if outage is None:
            self._outage = Outage(now, now + REMINDER_FIRST)
            log.debug("cluster: redis at %s: %s", self.where, reason)
            self._lost(reason)
        elif outage.reminder_due(now):
            log.warning(
                "cluster: redis at %s still unreachable after %.0f s (%s); retrying",
                self.where,
                now - outage.since,
                reason,
            )

    def _lost(self, reason: str) -> None:
        """Pause the reader, tell the loop, and fail whatever was asked before now."""
        self.reader.pause()
        self._epoch += 1
        self._live = None  # report the live nodes again once the link is back
        self._post(("down", reason))

    def _serve(self, client: redis.Redis) -> None:
        synced = False
        next_beat = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            if synced and now >= next_beat:
                next_beat = now + self.heartbeat
                if not self._beat(client):
                    synced = False
                    self._post(("resync-needed",))
            try:
                first = self._requests.get(timeout=max(0.01, next_beat - now) if synced else 0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._requests.get_nowait())
                except queue.Empty:
                    break
            pending: list[Request] = []
            for request in batch:
                if request.epoch != self._epoch:
                    if request.token:  # never sent: certainly not run
                        self._post(("reply", request.token, None, "link lost", False))
                elif request.kind == "resync":
                    self._run_batch(client, pending)
                    pending = []
                    self._register(client, request)
                    synced = True
                    next_beat = 0.0
                else:
                    pending.append(request)
            self._run_batch(client, pending)

    def _beat(self, client: redis.Redis) -> bool:
        """Refresh our presence, then (in steady contact only) reap the silent nodes.
        False when this node must register again (reaped, or Redis lost its data)."""
        pipe = client.pipeline(transaction=False)
        args = (self.node_id, self.generation, self.ttl_ms, self.keep_ms, self.shard_count)
        pipe.evalsha(self.scripts.sha("heartbeat"), 0, *args)
        pipe.info("server")
        pipe.xinfo_stream(EVENTS)  # for STATS and the lag log line
        pipe.get(LAST_ID)
        status, info, stream, newest = pipe.execute(raise_on_error=False)
        if isinstance(status, NoScriptError):  # Redis restarted or failed over
            self.scripts.load(client, again=True)
            status = client.evalsha(self.scripts.sha("heartbeat"), 0, *args)
        if isinstance(status, Exception):
            raise status
        if not isinstance(info, dict):  # INFO renamed away: no run_id, the rest holds
            info = {}
        if isinstance(stream, dict):
            first, last = stream.get("first-entry"), stream.get("last-generated-id")
            length, read = int(stream.get("length", 0)), self.reader.read_upto()
            newest = newest if isinstance(newest, str) else None
            self.stats.saw_stream(length, first[0] if first else None, last, newest, read)
        if status == -1:
            raise Refused(self._taken_over())
        may_reap = self.liveness.beat(time.monotonic(), info.get("run_id"))
        if not status:
            log.warning("cluster: this node was declared dead; resynchronising")
            return False
        self._reap_dead(client, may_reap)
        return True

    def _taken_over(self) -> str:
        return (
            f"node id {self.node_id} was taken over by another process while this one"
            " was cut off from redis; stopping"
        )

    def _register(self, client: redis.Redis, request: Request) -> None:
        """Resync; while another process's heartbeat for our node id is live, wait.

        A live heartbeat may be the last one of a process that just died (a restart
        after ``kill -9``): it expires within the ttl. One still there after a ttl and
        a heartbeat more was refreshed, so another process runs as this node: refused.
        """
        deadline = time.monotonic() + self.ttl_ms / 1000 + self.heartbeat
        while True:
            try:
                self._resync(client, request)
                return
            except ResponseError as exc:
                text = str(exc)
                if SHARDS + " " in text:  # (a pipeline's error names the command first)
                    why = text[text.index(SHARDS + " ") + len(SHARDS) + 1 :]
                    raise Refused(f"{why}: give every node the same --cluster-shards") from None
                if DUPLICATE not in str(exc) or self._stopping.is_set():
                    raise
                if time.monotonic() > deadline and self._registered:
                    raise Refused(self._taken_over()) from None  # we were this node before
                if time.monotonic() > deadline:
                    raise Refused(
                        f"node id {self.node_id} is in use by another running process"
                        " (its heartbeat in redis is live); give this one another --node-id"
                    ) from None
                self._stopping.wait(self.heartbeat / 2)

    def _run_batch(self, client: redis.Redis, batch: list[Request]) -> None:
        if not batch:
            return
        try:
            results = self.scripts.run(client, [(r.kind, r.args) for r in batch])
        except RedisError as exc:
            for request in batch:
                if request.token:  # sent, answer lost: Redis may have run it, or may yet
                    self._post(("reply", request.token, None, str(exc), True))
            raise
        stale = False
        for request, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                text = str(result)
                this_stale = STALE in text
                stale = stale or this_stale
                if FENCED in text:  # queued before an outage, refused after it: expected
                    log.debug("cluster: %s refused by the fence: %s", request.kind, text)
                elif not this_stale:
                    log.error("cluster: %s failed in redis: %s", request.kind, result)
                if request.token:
                    self._post(("reply", request.token, None, text, False))
            elif request.token:
                self._post(("reply", request.token, result, None, False))
        if stale:
            raise Refused(self._taken_over())

    def _resync(self, client: redis.Redis, request: Request) -> None:
        """Register this node's whole state, atomically, and take a snapshot of the rest
        (see staging.py); the reader then resumes where it was."""
        started = time.monotonic()
        last = self.reader.pause()  # it drops anything it read before this
        me = NodeIdentity(
            self.node_id,
            self.generation,
            fence_of(self.generation, request.epoch),
            self.ttl_ms,
            self.shard_count,
        )
        sha = self.scripts.sha("resync")
        result = stage_and_resync(client, self._connect, sha, me, request.args)
        sync_id = result[0]
        history = None
        if last is None and self.preload:
            history = load_history(client, sync_id, self.history_max)
        took = (time.monotonic() - started) * 1000
        self.stats.resyncs += 1
        self.stats.last_resync_ms = took
        self._post(("synced", result, history, took))
        self.liveness.restart(time.monotonic())  # registered: steady contact from here
        self._registered = True
        self._live = None  # the heartbeat right after says which of those nodes are live
        self.reader.resume(sync_id)

    def _reap_dead(self, client: redis.Redis, may_reap: bool) -> None:
        """Reap the nodes whose presence expired (only with ``may_reap``: see
        ``Liveness``); tell the loop which others are live."""
        others = sorted(n for n in _texts(client.smembers("dc:nodes")) if n != self.node_id)
        live: list[str] = []
        if others:
            pipe = client.pipeline(transaction=False)
            for node in others:
                pipe.exists("dc:alive:" + node)
            for node, alive in zip(others, pipe.execute(), strict=True):
                if alive:
                    live.append(node)
                    continue
                if not may_reap:
                    continue
                reason = f"Node {node} went away"
                args = (node, reason, "0", "")
                if self.scripts.call(client, "reap", *args):
                    self.stats.reaps += 1
                    log.warning("cluster: node %s stopped its heartbeat; its users quit", node)
        if live != self._live:
            self._live = live
            self._post(("nodes", live))


def _texts(members: Any) -> list[str]:
    """A set reply as the strings it holds (our clients decode replies; the stubs of
    redis-py cannot know that)."""
    return [str(m) for m in members]


def _reason(exc: Exception) -> str:
    """An exception as a short phrase for a log line (redis-py's own text when it has one)."""
    return str(exc) or type(exc).__name__
