"""Applying the cluster's event stream to this node: replica updates and local delivery.

Every node reads every state event, and the messages of the rooms it has members in
(subscriptions.py), in one id order. Messages (``msg``) are delivered by each node that
reads them to its own members (message_events.py), so all members everywhere see one order;
a gap in the stream is reported by the reader and handled in gaps.py. State events
(``join``, ``part``, ...) were already applied by the node that made them; the others
update their replica and tell their local members. Applying is idempotent, because after
an outage a node re-reads events its snapshot already reflects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chat_protocol.casemap import casefold
from chat_server.cluster import message_events
from chat_server.cluster.message_events import deliver
from chat_server.cluster.replica import RemoteUser, apply_meta, channel_from_meta, update_user
from chat_server.handlers import presence
from chat_server.handlers.accounts import announce_account
from chat_server.server import Server

if TYPE_CHECKING:
    from chat_server.cluster.backplane import Backplane
    from chat_server.model import Channel, User

log = logging.getLogger("chat_server.cluster")


def apply_entries(server: Server, bp: Backplane, entries: list[tuple[str, dict[str, str]]]) -> None:
    me = bp.node_id
    for entry_id, fields in entries:
        kind = fields.get("k")
        node = fields.get("n", "")
        try:
            if kind == "msg":
                message_events.apply_msg(server, bp, entry_id, node, json.loads(fields["d"]))
            elif kind == "sync":
                if node == me:
                    bp.on_own_sync(fields.get("e", ""))
                else:
                    whole = collect_sync(bp, node, fields)
                    if whole is not None:
                        bp.suspects.pop(node, None)
                        bp.live_nodes.add(node)  # it just registered (heartbeats follow)
                        replace_node(server, node, *whole)
            elif kind == "down":
                bp.sync_parts.pop(node, None)
                if node == me:
                    bp.state = "syncing"
                    bp.on_declared_dead()
                else:
                    bp.live_nodes.discard(node)
                    bp.stats.dropped_nodes += 1
                    drop_node(server, node, fields.get("d", "") or f"Node {node} went away")
            elif node != me and kind in APPLIERS:
                bp.suspects.pop(node, None)
                APPLIERS[kind](server, node, json.loads(fields["d"]))
        except Exception:
            log.exception("cluster: cannot apply %s event %s from %s", kind, entry_id, node)


def collect_sync(
    bp: Backplane, node: str, fields: dict[str, str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]] | None:
    """A node's whole announced state (docs, room metas), once its sync event is complete.

    A large state comes in several consecutive entries with ``p`` = ``index/count``
    (see RESYNC in scripts.py); one script wrote them all, so nothing else comes between
    them, though they may arrive in different reads. Until the last one, None.
    """
    docs = {k[2:]: json.loads(v) for k, v in fields.items() if k[:2] == "u:"}
    metas = {k[2:]: v for k, v in fields.items() if k[:2] == "c:"}
    part = fields.get("p")
    if part is None:
        bp.sync_parts.pop(node, None)
        return docs, metas
    index, count = (int(x) for x in part.split("/"))
    held = (0, {}, {}) if index == 0 else bp.sync_parts.pop(node, None)
    if held is None or held[0] != index:
        bp.sync_parts.pop(node, None)
        log.error("cluster: sync of node %s: part %s without the parts before it", node, part)
        return None
    _, all_docs, all_metas = held
    all_docs.update(docs)
    all_metas.update(metas)
    if index + 1 < count:
        bp.sync_parts[node] = (index + 1, all_docs, all_metas)
        return None
    return all_docs, all_metas


# -- users ---------------------------------------------------------------------------


def _remote(server: Server, folded: str) -> User | None:
    user = server.users.get(folded)
    return user if isinstance(user, RemoteUser) else None


def upsert_user(server: Server, node: str, doc: dict[str, Any]) -> RemoteUser | None:
    """Create or refresh a remote user; a local user of that nick always wins."""
    folded = casefold(doc["nick"])
    user = server.users.get(folded)
    if user is not None and not isinstance(user, RemoteUser):
        log.warning("cluster: %s on node %s collides with a local user; ignored", doc["nick"], node)
        return None
    if isinstance(user, RemoteUser) and user.node != node:
        server.quit_user(user, "Nick collision")
        user = None
    if user is None:
        user = RemoteUser(node, doc)
        server.users[folded] = user
        server.mode_counts.update(user.modes)
        presence.user_online(server, user)
        return user
    server.mode_counts.subtract(user.modes)
    away, realname, account = user.away, user.realname, user.account
    update_user(user, doc)
    server.mode_counts.update(user.modes)
    presence.remote_updated(server, user, away, realname)
    if user.account != account:
        announce_account(server, user)
    return user


def apply_user(server: Server, node: str, data: dict[str, Any]) -> None:
    upsert_user(server, node, data["u"])


def apply_nick(server: Server, node: str, data: dict[str, Any]) -> None:
    user = _remote(server, data["o"])
    if user is None:
        upsert_user(server, node, data["u"])
        return
    old_source = user.source
    server.records.whowas.remember(user)
    del server.users[user.folded]
    update_user(user, data["u"])
    server.users[user.folded] = user
    for chan in user.channels.values():
        chan.members_changed()
    deliver(server, server.channel_peers(user), old_source, "NICK", [user.nick])
    presence.nick_changed(server, user, old_source)


def apply_quit(server: Server, node: str, data: dict[str, Any]) -> None:
    user = _remote(server, data["u"])
    if user is not None:
        server.quit_user(user, data.get("r", "Quit"))


def drop_node(server: Server, node: str, reason: str) -> None:
    """A node is gone: its users quit, seen by everyone sharing a room with them."""
    gone = [u for u in server.users.values() if isinstance(u, RemoteUser) and u.node == node]
    for user in gone:
        server.quit_user(user, reason)
    if gone:
        log.info("cluster: %d users of node %s quit (%s)", len(gone), node, reason)


# -- rooms ---------------------------------------------------------------------------


def local_room(server: Server, name: str, meta: dict[str, Any] | None = None) -> Channel:
    """The room ``name`` here, made from its settings ``meta`` when it is new here."""
    folded = casefold(name)
    chan = server.channels.get(folded)
    if chan is None:
        chan = channel_from_meta(folded, meta or {"name": name})
        server.channels[folded] = chan
    return chan


def add_member(server: Server, user: User, chan: Channel, prefix: str) -> None:
    """Put a remote user in a room and tell the local members (no-op when already in)."""
    if chan.members.get(user) == prefix:
        return
    joined = user not in chan.members
    chan.add_member(user, prefix)
    if joined:
        deliver(server, chan, user.source, "JOIN", [chan.name])
        presence.joined(server, user, chan)


def apply_join(server: Server, node: str, data: dict[str, Any]) -> None:
    user = _remote(server, data["u"])
    if user is None:
        return
    chan = local_room(server, data["c"], data.get("m"))
    add_member(server, user, chan, data.get("p", ""))


def apply_part(server: Server, node: str, data: dict[str, Any]) -> None:
    user = _remote(server, data["u"])
    chan = server.channels.get(casefold(data["c"]))
    if user is None or chan is None or user not in chan.members:
        return
    reason = data.get("r")
    deliver(server, chan, user.source, "PART", [chan.name, reason] if reason else [chan.name])
    server.remove_member(chan, user)


def apply_kick(server: Server, node: str, data: dict[str, Any]) -> None:
    chan = server.channels.get(casefold(data["c"]))
    target = server.users.get(data["t"])
    if chan is None or target is None or target not in chan.members:
        return
    deliver(server, chan, data["s"], "KICK", [chan.name, target.nick, data.get("r", "")])
    server.remove_member(chan, target)


def apply_topic(server: Server, node: str, data: dict[str, Any]) -> None:
    chan = server.channels.get(casefold(data["c"]))
    if chan is None:
        return
    apply_meta(chan, data["m"])
    deliver(server, chan, data["s"], "TOPIC", [chan.name, chan.topic])


def apply_cmode(server: Server, node: str, data: dict[str, Any]) -> None:
    chan = server.channels.get(casefold(data["c"]))
    if chan is None:
        return
    apply_meta(chan, data["m"])
    for folded, prefix in (data.get("pf") or {}).items():
        member = server.users.get(folded)
        if member is not None and member in chan.members:
            chan.set_prefix(member, prefix)
    deliver(server, chan, data["s"], "MODE", [chan.name, *data["p"]])


def apply_invite(server: Server, node: str, data: dict[str, Any]) -> None:
    chan = server.channels.get(casefold(data["c"]))
    target = server.users.get(data["t"])
    if chan is None or target is None:
        return
    chan.invites.add(target.folded)
    if target.conn is not None:
        deliver(server, [target], data["s"], "INVITE", [target.nick, chan.name])


def apply_kill(server: Server, node: str, data: dict[str, Any]) -> None:
    target = server.users.get(data["t"])
    if target is None or target.conn is None:
        return
    deliver(server, [target], data["s"], "KILL", [target.nick, data["r"]])
    killer = data["s"].split("!", 1)[0]
    server.drop(target.conn, f"Killed ({killer} ({data['r']}))")


APPLIERS: dict[str, Callable[[Server, str, dict[str, Any]], None]] = {
    "user": apply_user,
    "nick": apply_nick,
    "quit": apply_quit,
    "join": apply_join,
    "part": apply_part,
    "kick": apply_kick,
    "topic": apply_topic,
    "cmode": apply_cmode,
    "invite": apply_invite,
    "kill": apply_kill,
}


# -- whole-node state ----------------------------------------------------------------


def replace_node(
    server: Server, node: str, docs: dict[str, dict[str, Any]], metas: dict[str, str]
) -> None:
    """Make our replica of ``node`` match its announced state, telling local members."""
    for user in [u for u in server.users.values() if isinstance(u, RemoteUser) and u.node == node]:
        if user.folded not in docs:
            server.quit_user(user, "Left the network")
    for doc in docs.values():
        member = upsert_user(server, node, doc)
        if member is None:
            continue
        user = member
        wanted: dict[str, str] = doc.get("chans") or {}
        for folded, prefix in wanted.items():
            chan = server.channels.get(folded)
            if chan is None:
                meta = json.loads(metas[folded]) if folded in metas else {"name": folded}
                chan = local_room(server, meta["name"], meta)
            add_member(server, user, chan, prefix)
        for folded, chan in list(user.channels.items()):
            if folded not in wanted:
                deliver(server, chan, user.source, "PART", [chan.name])
                server.remove_member(chan, user)


def apply_snapshot(
    server: Server, states: dict[str, dict[str, str]], metas: dict[str, str]
) -> set[str]:
    """Adopt every other node's state; returns nodes we knew that the snapshot lacks."""
    for node, flat in states.items():
        replace_node(server, node, {f: json.loads(d) for f, d in flat.items()}, metas)
    for folded, raw in metas.items():
        chan = server.channels.get(folded)
        if chan is not None:
            apply_meta(chan, json.loads(raw))
    known = {u.node for u in server.users.values() if isinstance(u, RemoteUser)}
    return known - set(states)
