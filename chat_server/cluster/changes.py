"""Turning what a handler just did on this node into an event for the others.

The single-server handlers already validate, change the model and tell local members
through ``deliver``. ``ClusterServer.deliver`` passes the room and user changes among
those deliveries here, where they become events (with the shared-state writes that go
with them), so the handlers need no cluster code at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chat_protocol.casemap import casefold
from chat_server.cluster.replica import RemoteUser, chan_meta, dumps, user_doc
from chat_server.model import Channel

if TYPE_CHECKING:
    from chat_server.cluster.backplane import Backplane
    from chat_server.model import User
    from chat_server.server import Server

REPLICATED = frozenset({"JOIN", "PART", "KICK", "TOPIC", "MODE", "INVITE", "KILL"})


def local_delivery(
    server: Server,
    bp: Backplane,
    recipients: Channel | Iterable[User],
    source: str,
    command: str,
    params: list[str],
) -> None:
    """Publish the change a local handler announced with this delivery."""
    actor = server.users.get(casefold(source.split("!", 1)[0]))
    if isinstance(recipients, Channel):
        chan = recipients
        if command == "JOIN" and actor is not None:
            _join(bp, chan, actor)
        elif command == "PART" and actor is not None:
            data = {"u": actor.folded, "c": chan.name, "r": params[1] if len(params) > 1 else ""}
            bp.publish("part", data, bp.doc_ops(actor, skip=chan.folded))
        elif command == "KICK":
            target = server.users.get(casefold(params[1]))
            if target is not None:
                data = {"s": source, "c": chan.name, "t": target.folded, "r": params[2]}
                bp.publish("kick", data, bp.doc_ops(target, skip=chan.folded))
        elif command == "TOPIC":
            meta = chan_meta(chan)
            ops = ["hset", "dc:chans", chan.folded, dumps(meta)]
            bp.publish("topic", {"s": source, "c": chan.name, "m": meta}, ops)
        elif command == "MODE":
            _channel_mode(server, bp, chan, source, params)
        return
    if command == "JOIN" and actor is not None and len(params) == 3:
        # With extended-join members, the JOIN goes out to lists of users: plain to
        # some, then always this extended form (handlers/channels.announce_join), so
        # publishing on it publishes every such JOIN once.
        joined = server.channels.get(casefold(params[0]))
        if joined is not None and actor in joined.members:
            _join(bp, joined, actor)
    elif command == "MODE" and actor is not None:
        bp.publish("user", {"u": user_doc(actor)}, bp.doc_ops(actor))
    elif command == "INVITE":
        target = server.users.get(casefold(params[0]))
        if target is not None:
            bp.publish("invite", {"s": source, "t": target.folded, "c": params[1]})
    elif command == "KILL":
        target = server.users.get(casefold(params[0]))
        if isinstance(target, RemoteUser):
            bp.publish("kill", {"s": source, "t": target.folded, "r": params[1]})


def _join(bp: Backplane, chan: Channel, user: User) -> None:
    bp.follow_room(chan.folded)  # a local member: its messages are read here from now on
    data: dict[str, Any] = {"u": user.folded, "c": chan.name, "p": chan.members.get(user, "")}
    ops = bp.doc_ops(user)
    if len(chan.members) == 1 and data["p"] == "@":  # we created the room (see rooms.py)
        meta = chan_meta(chan)
        data["m"] = meta
        ops += ["hset", "dc:chans", chan.folded, dumps(meta)]
        ops += ["unlock", f"dc:creating:{chan.folded}", "", bp.room_owner(user)]
    bp.publish("join", data, ops)


def _channel_mode(
    server: Server, bp: Backplane, chan: Channel, source: str, params: list[str]
) -> None:
    meta = chan_meta(chan)
    ops = ["hset", "dc:chans", chan.folded, dumps(meta)]
    prefixes: dict[str, str] = {}
    for arg in params[2:]:
        member = server.users.get(casefold(arg))
        if member is not None and member in chan.members:
            prefixes[member.folded] = chan.members[member]
            ops += bp.doc_ops(member)
    data = {"s": source, "c": chan.name, "p": params[1:], "m": meta, "pf": prefixes}
    bp.publish("cmode", data, ops)


def local_quit(bp: Backplane, user: User, reason: str) -> None:
    """A local registered user left: free the nick and tell the others."""
    folded = bp.claims.pop(user, user.folded)
    ops = [*bp.undoc_ops(user.folded), *bp.release_ops(folded)]
    bp.publish("quit", {"u": user.folded, "r": reason}, ops)
