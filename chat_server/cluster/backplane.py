"""The loop side of the cluster link: requests out, answers and events in, holds.

Everything here runs on the loop thread. It never waits: a request goes into the
link's queue, and the client that made it is *held* (its further lines stay unread in
its buffer) until the answer or the event comes back. That keeps each client's lines
handled in order and a room message delivered everywhere before the sender's next line,
as on one server.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from chat_server.cluster import events, gaps, message_events
from chat_server.cluster.event_reader import Batch, Gap, ReadPosition, id_order
from chat_server.cluster.inflight import HOLD_TIMEOUT, ONCE_MAX, ONCE_TAG, InFlight, Sent
from chat_server.cluster.redis_link import RedisLink, Request, fence_of
from chat_server.cluster.replica import RemoteUser, chan_meta, dumps, user_doc
from chat_server.cluster.scripts import EVENTS
from chat_server.cluster.shards import shard_stream
from chat_server.cluster.stats import LoopStats
from chat_server.cluster.subscriptions import Subscriptions

if TYPE_CHECKING:
    from chat_server.cluster.node import ClusterServer
    from chat_server.cluster.rooms import RoomPlan
    from chat_server.connection import Connection
    from chat_server.model import User

log = logging.getLogger("chat_server.cluster")

ROOM_RESERVE_MS = 5000  # how long a room being created is held off for other creators
# Says what is true during an outage: no message goes anywhere, not even to a user of
# this node (they are sequenced by Redis), while registration, JOIN, PART and NICK go
# on here and are announced once the link is back.
DOWN_NOTICE = (
    "*** Cluster link lost: no message can be sent until it is back, not even within"
    " this server; joining, leaving and nick changes still work"
)


@dataclass(slots=True)
class Pending:
    """A request (other than a message, see inflight.py) some local client waits for."""

    user: User | None  # None: nobody waits (a history fetch after a resync)
    started: float
    kind: str  # "claim" (a nick; the client is held), "room" (a JOIN waits), "history"
    on_reply: Callable[[Any, str | None], None]
    folded: str = ""


class Backplane:
    """Connects one Server to the cluster through a RedisLink."""

    def __init__(self, server: ClusterServer, link: RedisLink) -> None:
        self.server = server
        self.link = link
        self.node_id = link.node_id
        self.state = "connecting"  # connecting | syncing | up | down
        self.epoch = 0
        self.pending: dict[int, Pending] = {}
        self.stats = LoopStats()
        self.messages = InFlight(server, self.unhold, self.stats)
        self.subs = Subscriptions(link.shard_count)  # the shards read, the rooms held
        self.gap_since_down = False  # entries went missing since the link was last lost
        self.sync_id = ""  # the stream id of our last resync's sync entry
        self.room_plans: dict[User, RoomPlan] = {}  # JOINs waiting on room creation
        self.holds: dict[Connection, int] = {}  # held client -> requests it waits for
        self.claim_holds: set[Connection] = set()  # clients waiting for a nick claim
        self.claims: dict[User, str] = {}  # local user -> the folded nick it holds
        self.suspects: dict[str, float] = {}  # node -> when to give up on it
        # other live nodes: checked at each heartbeat, updated by their sync/down events
        self.live_nodes: set[str] = set()
        # node -> (next part, docs, metas) of a sync event that spans several entries
        self.sync_parts: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {}
        self._tokens = itertools.count(1)
        self.was_down = False

    # -- the link ----------------------------------------------------------------------

    def on_readable(self) -> None:
        """The link posted something: apply it in order."""
        for item in self.link.drain():
            kind = item[0]
            if kind == "events":
                batch: Batch = item[1]
                if batch.rewinds == self.subs.rewinds:  # else read again from our position
                    events.apply_entries(self.server, self, batch.entries)
                    self.subs.position = batch.upto
            elif kind == "reply":
                self._on_reply(item[1], item[2], item[3], item[4])
            elif kind == "gap":
                if item[2] == self.subs.rewinds:
                    self._on_gap(item[1])
            elif kind in ("up", "resync-needed"):
                self.state = "syncing"
                self._send_resync()
            elif kind == "synced":
                self._on_synced(item[1], item[2], item[3])
            elif kind == "down":
                self._on_down(item[1])
            elif kind == "nodes":
                self.live_nodes = set(item[1])
            elif kind == "refused":
                self.server.refuse(item[1])

    def _on_down(self, reason: str) -> None:
        self.epoch += 1
        was = self.state
        self.state = "down"
        self.messages.link_lost()  # see inflight.py: their fate is known after the resync
        self.gap_since_down = False
        for token, pending in list(self.pending.items()):
            if pending.kind == "claim":
                self._on_reply(token, True, None, False)  # see claim(): ours until the resync
            else:
                self._on_reply(token, None, "cluster link down", False)
        if was != "down":
            log.warning(
                "cluster: redis at %s unreachable (%s); messages are refused until it is back"
                " (registration, JOIN, PART, NICK go on here); retrying",
                self.link.where,
                reason,
            )
            self.was_down = True
            self.notice_all(DOWN_NOTICE)

    def _send_resync(self) -> None:
        server = self.server
        users: list[str] = []
        for user in server.users.values():
            if user.conn is not None:
                users += [user.folded, dumps(user_doc(user))]
        claims = [f for u, f in self.claims.items() if not u.registered]
        claims += [p.folded for p in self.pending.values() if p.kind == "claim"]
        chans: list[str] = []
        for chan in server.channels.values():
            if any(m.conn is not None for m in chan.members):
                chans += [chan.folded, dumps(chan_meta(chan))]
        # any size: the link stages it in Redis instead of passing it as script arguments
        args = [users, list(dict.fromkeys(claims)), chans]
        self.link.submit(Request("resync", self.epoch, args))

    def on_declared_dead(self) -> None:
        """Other nodes dropped our users (we missed heartbeats): announce them again."""
        log.warning(
            "cluster: node %s was declared dead by the others; resynchronising", self.node_id
        )
        self._send_resync()

    def _on_synced(
        self, result: list[Any], history: dict[str, list[Any]] | None, took_ms: float
    ) -> None:
        self.sync_id, lost, others, metas = result
        if self.subs.position is None:  # the first resync: the reader starts after it
            self.subs.position = ReadPosition(self.sync_id)
        if history:
            count = message_events.load_history(self.server, history)
            log.info("cluster: loaded %d messages of %d direct conversations", count, len(history))
        for folded in lost:
            user = self.server.users.get(folded)
            if user is not None and user.conn is not None:
                self.claims.pop(user, None)
                self.server.drop(user.conn, "Nickname collision after cluster resync")
        states = {others[i]: _pairs(others[i + 1]) for i in range(0, len(others), 2)}
        self.live_nodes = set(states)  # until the next heartbeat says which are alive
        gone = events.apply_snapshot(self.server, states, _pairs(metas))
        # Nodes missing from the snapshot: Redis restarted empty and they have not
        # registered again yet. They get what a reaper would give them (the grace
        # period, then the timeout) before their users quit here.
        deadline = time.monotonic() + self.link.grace + self.link.ttl_ms / 1000 + 1
        for node in gone:
            self.suspects.setdefault(node, deadline)
        remote = sum(1 for u in self.server.users.values() if isinstance(u, RemoteUser))
        log.info(
            "cluster: node %s in sync in %.0f ms; %d users on %d other nodes",
            self.node_id,
            took_ms,
            remote,
            len(states),
        )
        self.state = "up"
        # rooms joined while Redis was away: their history is fetched now
        local = {f for c in self.server.conns.values() if c.user for f in c.user.channels}
        missing = sorted(r for r in local if self.subs.needs_load(r) and r not in self.subs.loading)
        if missing:
            self.load_rooms(None, missing, None)
        if self.was_down:
            self.was_down = False
            self.notice_all("*** Cluster link restored")

    def _on_reply(self, token: int, result: Any, error: str | None, doubt: bool) -> None:
        """Redis answered request ``token`` (``doubt``: the answer was lost, not refused)."""
        if token in self.messages.sent:
            if error is None and isinstance(result, str) and result.startswith("dup:"):
                echo = partial(message_events.echo_first, self.server)
                self.messages.duplicate(token, result[4:], echo)
            elif error is not None and doubt:
                self.messages.doubted(token)
            elif error is not None:
                self.messages.refused(token, error)
            return  # else released when its event comes back through the stream
        pending = self.pending.pop(token, None)
        if pending is None:
            return
        user = pending.user
        if pending.kind == "claim" and user is not None and user.conn is not None:
            self.claim_holds.discard(user.conn)
        try:
            pending.on_reply(result, error)  # before unhold: the next lines come after
        finally:
            if pending.kind == "claim" and user is not None:
                self.unhold(user)

    def _on_gap(self, gap: Gap) -> None:
        # A message of ours in doubt may have been in the gap, whatever the stream.
        self.gap_since_down = True
        events_end = gap.streams.get(EVENTS, "").lstrip("(")
        if self.sync_id and events_end and id_order(events_end) > id_order(self.sync_id):
            # Our own sync entry went with the gap: it will never be read, and what was
            # in doubt from before it is unknowable now (see inflight.py).
            self.messages.own_sync(self.epoch, gap=True)
        self.link.stats.gaps += 1
        state_missed = bool(events_end) or gap.data_lost
        gaps.report(self.server, gap, reloaded=state_missed)
        if state_missed and not gap.fresh and self.state == "up":
            self._send_resync()  # room and user state may have missed changes: reload it

    def on_own_sync(self, fence: str) -> None:
        """Our sync entry came back through the stream (see inflight.py)."""
        generation, _, epoch = fence.partition(":")
        if generation == self.link.generation and epoch.isdigit():
            self.messages.own_sync(int(epoch), self.gap_since_down)

    def check_timeouts(self) -> None:
        """Release clients Redis keeps waiting; drop users of nodes that never came back;
        stop reading shards nobody here needs any more."""
        now = time.monotonic()
        self.messages.check_timeouts(now)
        self._unfollow_idle(now)
        for token, pending in list(self.pending.items()):
            if now - pending.started > HOLD_TIMEOUT:
                self._on_reply(token, None, "cluster too slow", False)
        for node, deadline in list(self.suspects.items()):
            if now >= deadline:
                del self.suspects[node]
                self.stats.dropped_nodes += 1
                events.drop_node(self.server, node, f"Node {node} went away")

    def notice_all(self, text: str) -> None:
        server = self.server
        for conn in list(server.conns.values()):
            user = conn.user
            if user is not None and user.registered:
                server.out.send_raw(user, f":{server.name} NOTICE {user.nick} :{text}")

    # -- shards --------------------------------------------------------------------------

    def follow_room(self, folded: str) -> None:
        """Read the shard of ``folded`` (a room that gets a local member, or a message
        of ours), from the position the loop has applied: nothing after it is missed."""
        subs = self.subs
        shard = subs.shard(folded)
        if shard in subs.shards:
            return
        subs.shards.add(shard)
        subs.rewinds = self.link.reader.follow(subs.streams(), subs.position)

    def _unfollow_idle(self, now: float) -> None:
        subs = self.subs
        in_flight = [str(s.data["ch"]) for s in self.messages.sent.values() if "ch" in s.data]
        idle = subs.idle(subs.wanted(self.server, in_flight), now)
        if not idle:
            return
        for room in subs.drop(idle):
            self.server.history.forget(room)  # no longer whole here: fetched again at a JOIN
        self.link.reader.follow(subs.streams(), None)

    def load_rooms(
        self, user: User | None, rooms: list[str], done: Callable[[], None] | None
    ) -> None:
        """Start keeping ``rooms``' history here (subscriptions.py): read their shards,
        and fetch their newest messages up to the position the loop has applied (the
        shards bring everything after it). ``done`` is called when they are in, or the
        fetch failed (the JOIN then goes ahead without them)."""
        subs = self.subs
        position = subs.position
        if self.state == "down" or position is None:
            if done is not None:
                done()
            return
        for room in rooms:
            self.follow_room(room)
        subs.loading.update(rooms)
        token = next(self._tokens)

        def on_reply(result: Any, error: str | None) -> None:
            if error is None:
                history = {room: _rows(rows) for room, rows in zip(rooms, result, strict=True)}
                count = message_events.load_history(self.server, history)
                log.debug("cluster: fetched %d messages of rooms %s", count, ", ".join(rooms))
                subs.loaded(rooms)
            else:
                log.warning("cluster: history of %s not fetched: %s", ", ".join(rooms), error)
                subs.load_failed(rooms)
            if done is not None:
                done()

        self.pending[token] = Pending(user, time.monotonic(), "history", on_reply)
        args = [position.upto, self.link.history_max, *rooms]
        self.link.submit(Request("history", self.epoch, args, token))

    # -- holds ---------------------------------------------------------------------------

    def hold(self, user: User) -> None:
        conn = user.conn
        if conn is not None:
            self.holds[conn] = self.holds.get(conn, 0) + 1

    def unhold(self, user: User) -> None:
        conn = user.conn
        if conn is None or conn not in self.holds:
            return
        left = self.holds[conn] - 1
        if left > 0:
            self.holds[conn] = left
            return
        del self.holds[conn]
        if self.server.conns.get(conn.fd) is conn:
            self.server.resume_held(conn)

    # -- requests ------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.state != "down"

    def _fence(self) -> str:
        """The fence our writes carry (scripts.py); none before the first resync, when
        no connection can have been lost yet."""
        if self.state == "connecting":
            return ""
        return fence_of(self.link.generation, self.epoch)

    def publish(self, kind: str, data: Any, ops: list[str] | None = None) -> None:
        """Announce a change (and apply ``ops`` to the shared state) in one script."""
        if self.state == "down":
            return  # the resync after the outage carries our whole state instead
        ops = ops or []
        link = self.link
        args: list[Any] = [len(ops) // 4, *ops, self.node_id, link.generation, self._fence()]
        args += [kind, dumps(data)]
        link.submit(Request("publish", self.epoch, args))

    def send_message(
        self, user: User, command: str, target: str, data: dict[str, Any], hist_key: str
    ) -> Sent | None:
        """Sequence a PRIVMSG/NOTICE/TAGMSG through Redis; None when the link is down.

        A ``+distchat/once`` token makes a retry safe (see inflight.py): it is kept
        per conversation for as long as the stream keeps events."""
        if self.state == "down":
            return None
        token = next(self._tokens)
        data["o"] = token
        sent = Sent(user, command, target, data, self.epoch, time.monotonic())
        self.messages.add(token, sent)
        self.hold(user)
        once = str((data.get("g") or {}).get(ONCE_TAG, ""))
        link = self.link
        once_key = f"dc:once:{data.get('k', '')}:{once}" if 0 < len(once) <= ONCE_MAX else ""
        stream = EVENTS
        if "ch" in data:
            room = str(data["ch"])
            self.follow_room(room)  # its echo must come back to us
            stream = shard_stream(self.subs.shard(room))
        args: list[Any] = [self.node_id, link.generation, self._fence(), dumps(data), hist_key]
        args += [link.history_max, once_key, link.keep_ms, stream]
        link.submit(Request("message", self.epoch, args, token))
        return sent

    def claim(self, user: User, folded: str, done: Callable[[bool | None], None]) -> None:
        """Ask Redis for a nick; ``done(True|False)``, or ``done(None)`` when Redis is too
        slow to answer.

        While Redis is unreachable the nick is granted here (the handler has checked it
        against every user this node knows): people can still connect and talk on this
        node. The resync when Redis is back registers it; should another node have
        taken the same nick meanwhile, that resync reports a collision and the user is
        disconnected with "Nickname collision after cluster resync".
        """
        if self.state == "down":
            done(True)
            return
        token = next(self._tokens)

        def on_reply(result: Any, error: str | None) -> None:
            done(None if error is not None else bool(result))

        self.pending[token] = Pending(user, time.monotonic(), "claim", on_reply, folded)
        self.hold(user)
        if user.conn is not None:
            self.claim_holds.add(user.conn)
        args = [folded, self.node_id, self.link.generation]
        self.link.submit(Request("claim", self.epoch, args, token))

    def release_ops(self, folded: str) -> list[str]:
        return [
            "release", "dc:nicks", folded, self.node_id,
            "srem", f"dc:claims:{self.node_id}", folded, "",
        ]  # fmt: skip

    def release(self, folded: str) -> None:
        """Give a nick back (no event: nobody else saw it in use)."""
        if self.state != "down":
            self.publish("noop", None, self.release_ops(folded))

    def ask_rooms(
        self, user: User, rooms: list[str], done: Callable[[list[Any] | None], None]
    ) -> None:
        """Ask Redis who creates each of ``rooms`` (see ROOM in scripts.py); ``done``
        gets the flat answer, or None when Redis is down or too slow."""
        if self.state == "down":
            done(None)
            return
        token = next(self._tokens)

        def on_reply(result: Any, error: str | None) -> None:
            done(None if error is not None else list(result))

        self.pending[token] = Pending(user, time.monotonic(), "room", on_reply)
        args = [self.room_owner(user), ROOM_RESERVE_MS, *rooms]
        self.link.submit(Request("room", self.epoch, args, token))

    def room_owner(self, user: User) -> str:
        """Who holds a room's creation reservation (see ROOM in scripts.py)."""
        return f"{self.node_id}:{user.folded}"

    def doc_ops(self, user: User, *, skip: str | None = None) -> list[str]:
        """The ops that store ``user``'s document (and so its rooms' member counts)."""
        node = user.node if isinstance(user, RemoteUser) else self.node_id
        return ["doc", node, user.folded, dumps(user_doc(user, skip=skip))]

    def undoc_ops(self, folded: str) -> list[str]:
        """The ops that forget a local user's document."""
        return ["undoc", self.node_id, folded, ""]


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _rows(rows: list[Any]) -> list[tuple[str, dict[str, str]]]:
    """XREVRANGE's rows as a script returns them, oldest first, fields as a dict."""
    return [(entry_id, _pairs(fields)) for entry_id, fields in reversed(rows)]
