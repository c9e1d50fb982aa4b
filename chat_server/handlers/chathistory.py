"""CHATHISTORY (IRCv3 draft/chathistory) and the batch both it and the join replay use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chat_protocol.casemap import casefold, is_channel
from chat_protocol.message import Message
from chat_server.commands import command
from chat_server.history import Ref, StoredMessage, dm_key, format_time

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS")


def send_history_batch(
    server: Server, user: User, target: str, messages: Sequence[StoredMessage]
) -> None:
    """Replay stored messages to ``user`` inside one ``chathistory`` batch."""
    ref = server.start_batch(user, "chathistory", target)
    conn = user.conn
    if conn is None:
        return
    with_time = "server-time" in user.caps
    with_tags = "message-tags" in user.caps
    for stored in messages:
        tags: dict[str, str] = {}
        if ref is not None:
            tags["batch"] = ref
        if with_time:
            tags["time"] = format_time(stored.time)
        if with_tags:
            tags["msgid"] = stored.msgid
            tags.update(stored.tags)
        line = Message(stored.command, [stored.recipient, stored.text], stored.source, tags)
        server.send_raw(user, line.to_str())
    server.end_batch(user, ref)


@command("CHATHISTORY", min_params=1)
def handle_chathistory(server: Server, user: User, msg: Message) -> None:
    sub = msg.params[0].upper()
    if sub not in SUBCOMMANDS:
        server.fail(user, "CHATHISTORY", "INVALID_PARAMS", sub, "Unknown subcommand")
        return
    needed = {"BETWEEN": 5, "TARGETS": 4}.get(sub, 4)
    if len(msg.params) < needed:
        server.fail(user, "CHATHISTORY", "NEED_MORE_PARAMS", sub, "Missing parameters")
        return
    limit_text = msg.params[needed - 1]
    if not limit_text.isdigit():
        server.fail(user, "CHATHISTORY", "INVALID_PARAMS", sub, limit_text, "Invalid limit")
        return
    limit = min(int(limit_text), server.config.chathistory_max)
    try:
        refs = [Ref.parse(p) for p in msg.params[2 : needed - 1]]
        if sub == "TARGETS":
            refs = [Ref.parse(msg.params[1]), Ref.parse(msg.params[2])]
    except ValueError:
        server.fail(user, "CHATHISTORY", "INVALID_PARAMS", sub, "Invalid message reference")
        return
    if sub == "TARGETS":
        _targets(server, user, refs[0], refs[1], limit)
        return
    target = msg.params[1]
    key = _target_key(server, user, target)
    if key is None:
        server.fail(
            user, "CHATHISTORY", "INVALID_TARGET", sub, target, "No such target or not allowed"
        )
        return
    store = server.history
    ref = refs[0]
    if sub == "LATEST":
        messages = store.latest(key, limit, after=ref)
    elif ref is None:
        server.fail(user, "CHATHISTORY", "INVALID_PARAMS", sub, "A reference is required")
        return
    elif sub == "BEFORE":
        messages = store.before(key, ref, limit)
    elif sub == "AFTER":
        messages = store.after(key, ref, limit)
    elif sub == "AROUND":
        messages = store.around(key, ref, limit)
    else:
        end = refs[1]
        if end is None:
            server.fail(user, "CHATHISTORY", "INVALID_PARAMS", sub, "A reference is required")
            return
        messages = store.between(key, ref, end, limit)
    send_history_batch(server, user, target, messages)


def _target_key(server: Server, user: User, target: str) -> str | None:
    """The history key for a target the user may read, or None."""
    if is_channel(target):
        folded = casefold(target)
        chan = server.channels.get(folded)
        if chan is not None and user not in chan.members:
            return None
        return folded
    if not target or target == "*":
        return None
    return dm_key(user.nick, target)


def _targets(server: Server, user: User, start: Ref | None, end: Ref | None, limit: int) -> None:
    if start is None or end is None:
        server.fail(user, "CHATHISTORY", "INVALID_PARAMS", "TARGETS", "Timestamps are required")
        return
    keys = [chan.folded for chan in user.channels.values()]
    names = {chan.folded: chan.name for chan in user.channels.values()}
    me = casefold(user.nick)
    for peer in server.history.dm_peers(me):
        key = dm_key(me, peer)
        keys.append(key)
        online = server.users.get(peer)
        names[key] = online.nick if online is not None else peer
    ref = server.start_batch(user, "draft/chathistory-targets")
    for key, latest in server.history.targets(keys, start, end, limit):
        tags = {"batch": ref} if ref else {}
        line = Message(
            "CHATHISTORY", ["TARGETS", names.get(key, key), format_time(latest)], server.name, tags
        )
        server.send_raw(user, line.to_str())
    server.end_batch(user, ref)
