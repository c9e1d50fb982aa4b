"""JOIN in a cluster: who creates a room (and so gets ops) is decided in Redis.

A node only knows the rooms its replica holds. Two users joining a new room on two
nodes at the same moment each found it missing and each became its op (40 of 40
times). Now a JOIN that names a room this node does not know waits (like a JOIN of a
room whose history loads: ``server.defer(rerun=True)``) while the ROOM script
(scripts.py) answers, atomically for the whole cluster:

- ``create``: the room has no member anywhere; it is reserved for this user until its
  JOIN is published, and the JOIN runs as on one server (the creator gets ops);
- ``exists``: it has members; the JOIN runs on a local copy of its settings (key,
  limit, bans, +i: enforced as usual), and its members arrive with their events;
- ``busy``: another JOIN is creating it right now: ask again 50 ms later.

While Redis is down (or slower than HOLD_TIMEOUT) the JOIN runs at once as on one
server; two nodes cut off together can then both create a room, as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from chat_protocol.casemap import casefold, valid_channel
from chat_protocol.message import Message
from chat_server.cluster import events
from chat_server.connection import PAUSED_HISTORY
from chat_server.handlers.channels import handle_join

if TYPE_CHECKING:
    from chat_server.cluster.backplane import Backplane
    from chat_server.cluster.node import ClusterServer
    from chat_server.deferred import Deferred
    from chat_server.model import User
    from chat_server.server import Server

BUSY_RETRY = 0.05  # seconds before asking again about a room another JOIN is creating


@dataclass(slots=True)
class RoomPlan:
    """What Redis said for one user's pending JOIN."""

    create: set[str] = field(default_factory=set)  # rooms reserved for this user
    placeholders: set[str] = field(default_factory=set)  # local copies made for the JOIN


def handle_cluster_join(server: Server, user: User, msg: Message) -> None:
    """JOIN: rooms unknown here are first asked about (see the module docstring)."""
    node: ClusterServer = server  # type: ignore[assignment]
    bp = node.backplane
    plan = bp.room_plans.get(user)
    unknown = [
        folded
        for folded in _named(server, msg)
        if folded not in server.channels
        and folded not in user.channels
        and (plan is None or folded not in plan.create)
    ]
    if unknown and bp.state != "down":
        deferred = server.defer(user, rerun=True)
        if deferred is not None:
            bp.ask_rooms(user, unknown, partial(_answered, server, bp, deferred, unknown))
        return
    # Rooms whose history this node does not keep yet (subscriptions.py): fetch it
    # first, so the JOIN's replay and CHATHISTORY are whole here too.
    cold = [
        folded
        for folded in _named(server, msg)
        if folded not in user.channels and bp.subs.needs_load(folded)
    ]
    if cold and bp.state != "down" and bp.subs.position is not None:
        deferred = server.defer(user, rerun=True)
        if deferred is not None:
            bp.load_rooms(user, cold, partial(_fetched, server, deferred))
        return
    handle_join(server, user, msg)
    conn = user.conn
    if conn is not None and conn.paused & PAUSED_HISTORY:
        return  # the JOIN waits for history and runs again: keep the plan for then
    plan = bp.room_plans.pop(user, None)
    if plan is not None:
        finish_plan(server, bp, user, plan)


def _named(server: Server, msg: Message) -> list[str]:
    if msg.params[0] == "0":
        return []
    limit = server.config.channel_len
    names = msg.params[0].split(",")[: server.config.max_channels_per_user]
    return list(dict.fromkeys(casefold(n) for n in names if valid_channel(n, limit)))


def _fetched(server: Server, deferred: Deferred) -> None:
    """The rooms' history is in (or could not be had): the JOIN runs again."""
    conn = deferred.conn
    if server.conns.get(conn.fd) is conn:
        server.resume(conn, PAUSED_HISTORY)


def _answered(
    server: Server,
    bp: Backplane,
    deferred: Deferred,
    rooms: list[str],
    answer: list[Any] | None,
) -> None:
    """Redis said who creates each room; the JOIN runs again (see server.defer)."""
    user = deferred.user
    plan = bp.room_plans.setdefault(user, RoomPlan())
    busy = False
    if answer is None:  # Redis down or too slow: as on one server
        plan.create.update(rooms)
    else:
        for i, folded in enumerate(rooms):
            verdict, meta = answer[2 * i], answer[2 * i + 1]
            if verdict == "create":
                plan.create.add(folded)
            elif verdict == "busy":
                busy = True
            elif folded not in server.channels:
                settings = json.loads(meta) if meta else {"name": folded}
                events.local_room(server, settings.get("name") or folded, settings)
                plan.placeholders.add(folded)
    conn = deferred.conn
    if server.conns.get(conn.fd) is not conn:
        bp.room_plans.pop(user, None)
        finish_plan(server, bp, user, plan)
        return
    if busy:
        server.loop.call_later(BUSY_RETRY, lambda: server.resume(conn, PAUSED_HISTORY))
    else:
        server.resume(conn, PAUSED_HISTORY)


def finish_plan(server: Server, bp: Backplane, user: User, plan: RoomPlan) -> None:
    """After the JOIN: give back reservations it did not use (refused by a limit, or
    the client left), and drop local copies of rooms nobody here joined after all."""
    for folded in plan.create:
        if folded not in user.channels:
            bp.publish("noop", None, ["unlock", f"dc:creating:{folded}", "", bp.room_owner(user)])
    for folded in plan.placeholders:
        chan = server.channels.get(folded)
        if chan is not None and not chan.members:
            del server.channels[folded]
