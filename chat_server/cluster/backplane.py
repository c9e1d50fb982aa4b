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
from typing import TYPE_CHECKING, Any

from chat_server.cluster import events
from chat_server.cluster.redis_link import RedisLink, Request
from chat_server.cluster.replica import RemoteUser, chan_meta, dumps, user_doc

if TYPE_CHECKING:
    from chat_server.cluster.node import ClusterServer
    from chat_server.connection import Connection
    from chat_server.model import User

log = logging.getLogger("chat_server.cluster")

HOLD_TIMEOUT = 5.0  # a client waits at most this long for Redis before it is told
DOWN_NOTICE = "*** Cluster link lost: messages cannot reach other nodes for now"


@dataclass(slots=True)
class Pending:
    """A request some local client waits for."""

    user: User
    started: float
    kind: str  # "msg" (released by its event) or "claim" (released by the reply)
    on_reply: Callable[[Any, str | None], None] | None = None
    folded: str = ""
    label: str = ""


class Backplane:
    """Connects one Server to the cluster through a RedisLink."""

    def __init__(self, server: ClusterServer, link: RedisLink) -> None:
        self.server = server
        self.link = link
        self.node_id = link.node_id
        self.state = "connecting"  # connecting | syncing | up | down
        self.epoch = 0
        self.pending: dict[int, Pending] = {}
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
                events.apply_entries(self.server, self, item[1])
            elif kind == "reply":
                self._on_reply(item[1], item[2], item[3])
            elif kind in ("up", "resync-needed"):
                self.state = "syncing"
                self._send_resync()
            elif kind == "synced":
                self._on_synced(item[1], item[2])
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
        for token, pending in list(self.pending.items()):
            if pending.kind == "claim":
                self._on_reply(token, True, None)  # see claim(): ours until the resync
            else:
                self._on_reply(token, None, "cluster link down")
        if was != "down":
            log.warning(
                "cluster: redis at %s unreachable (%s); serving this node's clients only, retrying",
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

    def _on_synced(self, result: list[Any], history: dict[str, list[Any]] | None) -> None:
        _sync_id, lost, others, metas = result
        if history:
            events.load_history(self.server, history)
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
            "cluster: node %s in sync; %d users on %d other nodes",
            self.node_id,
            remote,
            len(states),
        )
        self.state = "up"
        if self.was_down:
            self.was_down = False
            self.notice_all("*** Cluster link restored")

    def _on_reply(self, token: int, result: Any, error: str | None) -> None:
        pending = self.pending.get(token)
        if pending is None:
            return
        if error is None and pending.kind == "msg":
            return  # released when its event comes back through the stream
        del self.pending[token]
        if pending.kind == "claim" and pending.user.conn is not None:
            self.claim_holds.discard(pending.user.conn)
        try:
            if pending.on_reply is not None:
                pending.on_reply(result, error)  # before unhold: the next lines come after
            elif error is not None:
                self.server.out.send_raw(
                    pending.user,
                    f":{self.server.name} FAIL {pending.label} CLUSTER_UNAVAILABLE :"
                    f"Message may not have been delivered ({error})",
                )
        finally:
            self.unhold(pending.user)

    def check_timeouts(self) -> None:
        """Release clients Redis keeps waiting; drop users of nodes that never came back."""
        now = time.monotonic()
        for token, pending in list(self.pending.items()):
            if now - pending.started <= HOLD_TIMEOUT:
                continue
            del self.pending[token]
            if pending.kind == "claim" and pending.user.conn is not None:
                self.claim_holds.discard(pending.user.conn)
            if pending.on_reply is not None:
                pending.on_reply(None, "cluster too slow")
            else:
                self.server.out.send_raw(
                    pending.user,
                    f":{self.server.name} NOTICE {pending.user.nick} :*** The cluster is slow;"
                    " your message is queued and may arrive late",
                )
            self.unhold(pending.user)
        for node, deadline in list(self.suspects.items()):
            if now >= deadline:
                del self.suspects[node]
                events.drop_node(self.server, node, f"Node {node} went away")

    def notice_all(self, text: str) -> None:
        server = self.server
        for conn in list(server.conns.values()):
            user = conn.user
            if user is not None and user.registered:
                server.out.send_raw(user, f":{server.name} NOTICE {user.nick} :{text}")

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

    def message_sequenced(self, token: int) -> User | None:
        """Our own message came back: the sender may go on. Returns the sender."""
        pending = self.pending.pop(token, None)
        if pending is None:
            return None
        self.unhold(pending.user)
        return pending.user

    # -- requests ------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self.state != "down"

    def publish(
        self,
        kind: str,
        data: Any,
        ops: list[str] | None = None,
        *,
        hist_key: str = "",
        token: int = 0,
    ) -> None:
        """Announce a change (and apply ``ops`` to the shared state) in one script."""
        if self.state == "down":
            return  # the resync after the outage carries our whole state instead
        ops = ops or []
        args: list[Any] = [self.link.events_max, len(ops) // 4, *ops]
        args += [kind, self.node_id, dumps(data), hist_key, self.link.history_max]
        args.append(self.link.generation)
        self.link.submit(Request("publish", self.epoch, args, token))

    def send_message(self, user: User, command: str, data: dict[str, Any], hist_key: str) -> bool:
        """Sequence a PRIVMSG/NOTICE/TAGMSG through Redis; False when the link is down."""
        if self.state == "down":
            return False
        token = next(self._tokens)
        data["o"] = token
        self.pending[token] = Pending(user, time.monotonic(), "msg", label=command)
        self.hold(user)
        self.publish("msg", data, hist_key=hist_key, token=token)
        return True

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

    def doc_ops(self, user: User, *, skip: str | None = None) -> list[str]:
        node = user.node if isinstance(user, RemoteUser) else self.node_id
        return ["hset", f"dc:state:{node}", user.folded, dumps(user_doc(user, skip=skip))]


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
