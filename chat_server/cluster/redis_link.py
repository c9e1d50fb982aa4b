"""All Redis I/O of a node, on two threads, so that the selectors loop never waits on it.

The loop talks to the link through a queue of requests; the link answers through a
deque plus one byte on a socketpair whose read end the loop watches (``add_reader``).

- The command thread connects (and reconnects, with backoff), runs requests in
  pipelined batches, refreshes this node's presence key, reaps nodes whose presence
  expired and tells the loop which other nodes are live (``("nodes", [...])``). Every
  connection starts with ``("up",)``; the loop answers with a resync request carrying
  its local state.
- Liveness (see ``Liveness``): a node reaps others only after it has itself been in
  steady contact with Redis for the grace period, so an outage of Redis (all presence
  keys expire together) or its restart (all keys gone) kills nobody. The process's
  generation (see scripts.py) keeps a duplicate or replaced process from acting for
  the node; such a process is told ``("refused", why)`` and the server stops.
- The reader thread blocks on ``XREAD`` of the event stream and hands entries to the
  loop in stream order. It only reads between a resync and the next loss of the link,
  and resumes from the last entry it handed over, so a short outage loses nothing.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from chat_server.cluster.scripts import DUPLICATE, EVENTS, SCRIPTS, STALE, SYNC_PART

log = logging.getLogger("chat_server.cluster")

MAX_BATCH = 512
REMINDER_FIRST = 60.0  # an outage is logged once, then again after 1, 2, 4 ... minutes
REMINDER_MAX = 600.0
STAGE_CHUNK = 1000  # users, claims or rooms per command when a resync stages its state
STAGE_TTL_MS = 60_000  # a staging left behind by a lost connection goes away by itself


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


@dataclass(slots=True)
class Outage:
    """When the link went down and when to say again that it still is (logs stay few)."""

    since: float
    next_reminder: float
    interval: float = REMINDER_FIRST


@dataclass(slots=True)
class Liveness:
    """When this node may declare others dead: only after ``grace`` seconds of steady
    contact with Redis.

    Contact starts over at every (re)connection, when Redis's ``run_id`` changes (a
    restart or a failover to another instance, even behind a proxy that kept our
    connection) and when two of our heartbeats are further apart than ``stall``
    seconds: then Redis, or this process, stood still, and the others' presence keys
    may have expired without their fault. ``stall`` is below what it takes a
    heartbeat key to expire (ttl minus one heartbeat), so no such pause goes unseen.
    """

    grace: float
    stall: float
    since: float | None = None  # start of the current steady contact; None = none
    last_beat: float | None = None
    run_id: str | None = None

    def restart(self, now: float) -> None:
        self.since = now
        self.last_beat = None

    def lost(self) -> None:
        self.since = None
        self.last_beat = None

    def beat(self, now: float, run_id: str | None) -> bool:
        """A heartbeat succeeded at ``now``; True when the node may reap."""
        if run_id is not None and self.run_id is not None and run_id != self.run_id:
            log.warning("cluster: redis restarted or failed over (new run_id); grace period")
            self.since = now
        if run_id is not None:
            self.run_id = run_id
        if self.last_beat is not None and now - self.last_beat > self.stall:
            log.info(
                "cluster: %.1f s between heartbeats (redis or this node stalled); grace period",
                now - self.last_beat,
            )
            self.since = now
        self.last_beat = now
        return self.since is not None and now - self.since >= self.grace


class Refused(Exception):
    """Redis will not let this process act for its node id (duplicate or replaced)."""


@dataclass(slots=True)
class Request:
    """One thing for Redis to do; ``token`` 0 means nobody waits for the answer."""

    kind: str  # publish | claim | resync (args: users, claims, rooms; see _resync)
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
        events_max: int = 100_000,
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
        self.events_max = events_max
        self.rsock, self._wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._out: collections.deque[tuple[Any, ...]] = collections.deque()
        self._signalled = False
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._epoch = 0  # bumped on every loss of the link; the loop keeps the same count
        self._reader_gen = 0  # bumped whenever the reader must drop what it holds
        self._read_pos: str | None = None  # where the reader reads next; None = paused
        self._last_seen: str | None = None  # newest entry handed to the loop
        self._live: list[str] | None = None  # other nodes last reported live to the loop
        self._shas: dict[str, str] = {}
        self._threads: list[threading.Thread] = []
        self._outage: Outage | None = None  # set by the command thread while unreachable

    # -- loop side -------------------------------------------------------------------

    def start(self) -> None:
        for target, name in (
            (self._command_main, "redis-commands"),
            (self._reader_main, "redis-reader"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, request: Request) -> None:
        self._requests.put(request)

    def drain(self) -> list[tuple[Any, ...]]:
        """What the threads posted since the last call (called when ``rsock`` is readable)."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.rsock.recv(4096):
                pass
        self._signalled = False  # before popping: a post after this sends a new byte
        out = self._out
        items = []
        while out:
            items.append(out.popleft())
        return items

    def stop(self, leave: bool = True) -> None:
        """Stop the threads; with ``leave``, free our nicks at once instead of by expiry."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if leave and self._outage is None and self.refused is None:
            try:
                client = redis.Redis.from_url(
                    self.url, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
                )
                reason = "Server shutting down"
                args = (self.node_id, reason, self.events_max, "1", self.generation)
                client.eval(SCRIPTS["reap"], 0, *args)
                client.close()
            except (RedisError, OSError, ValueError) as exc:
                log.warning("cluster: could not leave cleanly (%s); our nicks free on expiry", exc)
        elif leave:
            log.info("cluster: redis unreachable at shutdown; our nicks there free on expiry")
        for thread in self._threads:
            thread.join(timeout=1.0)
        self.rsock.close()
        self._wsock.close()

    # -- thread side -----------------------------------------------------------------

    def _post(self, item: tuple[Any, ...]) -> None:
        self._out.append(item)
        if not self._signalled:
            self._signalled = True
            with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
                self._wsock.send(b"\0")

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
                self._shas = {name: client.script_load(src) for name, src in SCRIPTS.items()}
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
            return
        if now >= outage.next_reminder:
            log.warning(
                "cluster: redis at %s still unreachable after %.0f s (%s); retrying",
                self.where,
                now - outage.since,
                reason,
            )
            outage.interval = min(outage.interval * 2, REMINDER_MAX)
            outage.next_reminder = now + outage.interval

    def _lost(self, reason: str) -> None:
        """Pause the reader, tell the loop, and fail whatever was asked before now."""
        with self._cond:
            self._reader_gen += 1
            self._read_pos = None
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
                    if request.token:
                        self._post(("reply", request.token, None, "link lost"))
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
        pipe.evalsha(self._shas["heartbeat"], 0, self.node_id, self.generation, self.ttl_ms)
        pipe.info("server")
        status, info = pipe.execute(raise_on_error=False)
        if isinstance(status, Exception):
            raise status
        if not isinstance(info, dict):  # INFO renamed away: no run_id, the rest holds
            info = {}
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
        pipe = client.pipeline(transaction=False)
        for request in batch:
            pipe.evalsha(self._shas[request.kind], 0, *request.args)
        try:
            results = pipe.execute(raise_on_error=False)
        except RedisError as exc:
            for request in batch:
                if request.token:
                    self._post(("reply", request.token, None, str(exc)))
            raise
        stale = False
        for request, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                this_stale = STALE in str(result)
                stale = stale or this_stale
                if not this_stale:
                    log.error("cluster: %s failed in redis: %s", request.kind, result)
                if request.token:
                    self._post(("reply", request.token, None, str(result)))
            elif request.token:
                self._post(("reply", request.token, result, None))
        if stale:
            raise Refused(self._taken_over())

    def _resync(self, client: redis.Redis, request: Request) -> None:
        """Register this node's whole state, atomically, and take a snapshot of the rest.

        ``request.args`` is ``[users, claims, rooms]``: flat ``folded, doc, ...``, a list
        of distinct folded nicks, and flat ``folded, meta, ...``. However many there are,
        they never become one script's arguments (Lua cannot unpack more than ~8000
        values): they are first staged, in chunks, in keys under a name of this attempt
        that no other node reads, and the RESYNC script then reads the staging and makes
        every change the others can see (nicks, state, rooms, the sync event) in one
        atomic run. Staging is pipelined with the script, so this is one round trip.
        """
        users, claims, chans = request.args
        with self._cond:
            self._reader_gen += 1  # the reader drops anything it read before this
            self._read_pos = None
            last = self._last_seen
        stage = f"dc:resync:{self.node_id}:{secrets.token_hex(8)}"
        # The script runs about 20 us per user or room in Redis: allow for that (2 s for
        # 100,000) on a connection of its own rather than take a slow answer for a lost link.
        size = (len(users) + len(chans)) // 2 + len(claims)
        own = self._connect(timeout=5.0 + size / 20_000) if size > 20_000 else None
        pipe = (own or client).pipeline(transaction=False)
        step = 2 * STAGE_CHUNK
        for key, flat in ((stage + ":u", users), (stage + ":m", chans)):
            for i in range(0, len(flat), step):
                pipe.hset(key, items=flat[i : i + step])
                pipe.pexpire(key, STAGE_TTL_MS)
        for i in range(0, len(claims), STAGE_CHUNK):
            pipe.sadd(stage + ":c", *claims[i : i + STAGE_CHUNK])
            pipe.pexpire(stage + ":c", STAGE_TTL_MS)
        args: list[str | int] = [self.node_id, self.ttl_ms, self.events_max, stage]
        args += [len(users) // 2, len(claims), len(chans) // 2, SYNC_PART, self.generation]
        pipe.evalsha(self._shas["resync"], 0, *args)
        try:
            result = pipe.execute()[-1]  # any failure raises: the link reconnects, retries
        finally:
            if own is not None:
                own.close()
        sync_id = result[0]
        history = None if last is not None else self._load_history(client, sync_id)
        self._post(("synced", result, history))
        self.liveness.restart(time.monotonic())  # registered: steady contact from here
        self._registered = True
        self._live = None  # the heartbeat right after says which of those nodes are live
        with self._cond:
            self._read_pos = last or sync_id
            self._cond.notify_all()

    def _load_history(self, client: redis.Redis, upto: str) -> dict[str, list[Any]]:
        """The newest messages of every conversation, up to the snapshot's position."""
        keys = sorted(_texts(client.smembers("dc:histkeys")))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.xrevrange("dc:h:" + key, max=upto, min="-", count=self.history_max)
        return {key: list(reversed(rows)) for key, rows in zip(keys, pipe.execute(), strict=True)}

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
                args = (node, reason, self.events_max, "0", "")
                if client.evalsha(self._shas["reap"], 0, *args):
                    log.warning("cluster: node %s stopped its heartbeat; its users quit", node)
        if live != self._live:
            self._live = live
            self._post(("nodes", live))

    def _reader_main(self) -> None:
        client: redis.Redis | None = None
        while not self._stopping.is_set():
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping.is_set() or self._read_pos is not None, timeout=1.0
                )
                gen, pos = self._reader_gen, self._read_pos
            if pos is None:
                continue
            try:
                if client is None:
                    client = self._connect(timeout=5.0)
                reply: Any = client.xread({EVENTS: pos}, count=2000, block=1000)
            except RedisError as exc:
                log.debug("cluster: reader: %s", exc)
                client = None
                self._stopping.wait(0.2)
                continue
            if not reply:
                continue
            entries = reply[0][1]
            with self._cond:
                if gen != self._reader_gen:
                    continue  # a resync or an outage began meanwhile; re-read after it
                self._read_pos = self._last_seen = entries[-1][0]
                self._post(("events", entries))


def _texts(members: Any) -> list[str]:
    """A set reply as the strings it holds (our clients decode replies; the stubs of
    redis-py cannot know that)."""
    return [str(m) for m in members]


def _reason(exc: Exception) -> str:
    """An exception as a short phrase for a log line (redis-py's own text when it has one)."""
    return str(exc) or type(exc).__name__
