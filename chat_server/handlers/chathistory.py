"""CHATHISTORY (IRCv3 draft/chathistory) and the batch both it and the join replay use.

Replies follow the spec (ircv3/ircv3-specifications, extensions/chathistory.md): a
``batch`` for every query that can be answered, an empty one when "no content exists
to return"; ``FAIL CHATHISTORY <code> <subcommand> ...`` standard replies otherwise
(``INVALID_PARAMS`` for a parameter we cannot read, ``NEED_MORE_PARAMS``,
``INVALID_TARGET``, and ``MESSAGE_ERROR`` when "no message history can be returned due
to an error").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chat_protocol.casemap import casefold, is_channel
from chat_protocol.message import Message
from chat_protocol.numbers import ascii_int
from chat_server.history import HistoryStoreError, Ref, StoredMessage, dm_key, format_time

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger(__name__)

SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS")

# A client's parameter echoed in a FAIL: at most this long, and made sendable as a
# middle parameter (no space, CR, LF or NUL, not empty, no leading colon).
_CONTEXT_MAX = 64
_UNSENDABLE = str.maketrans(" \r\n\0", "____")


def _context(text: str) -> str:
    """``text`` as a FAIL context parameter. Echoing it as it came would make the reply
    itself unsendable (``CHATHISTORY :a b`` has a space in its subcommand, ``CHATHISTORY
    :`` an empty one), and Message.to_str refuses such a middle parameter."""
    cleaned = text[:_CONTEXT_MAX].translate(_UNSENDABLE)
    return "*" + cleaned if not cleaned or cleaned[0] == ":" else cleaned


def send_history_batch(
    server: Server, user: User, target: str, messages: Sequence[StoredMessage]
) -> None:
    """Replay stored messages to ``user`` inside one ``chathistory`` batch.

    The reply can be a thousand long lines: it is paced (flow.py), so it reaches a slow
    reader in full instead of counting against its send queue all at once.
    """
    conn = user.conn
    if conn is None:
        return
    ref = None
    lines: list[bytes] = []
    if "batch" in user.caps:
        ref = server.delivery.next_msgid().replace("-", "")
        start = Message("BATCH", [f"+{ref}", "chathistory", target], server.name)
        lines.append(start.to_str().encode() + b"\r\n")
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
        lines.append(line.to_str().encode() + b"\r\n")
    if ref is not None:
        lines.append(Message("BATCH", [f"-{ref}"], server.name).to_str().encode() + b"\r\n")
    server.send_paced(conn, lines)


def handle_chathistory(server: Server, user: User, msg: Message) -> None:
    sub = msg.params[0].upper()
    if sub not in SUBCOMMANDS:
        server.out.fail(user, "CHATHISTORY", "INVALID_PARAMS", _context(sub), "Unknown subcommand")
        return
    needed = {"BETWEEN": 5, "TARGETS": 4}.get(sub, 4)
    if len(msg.params) < needed:
        server.out.fail(user, "CHATHISTORY", "NEED_MORE_PARAMS", sub, "Missing parameters")
        return
    limit_text = msg.params[needed - 1]
    # ASCII digits only: "²" and "٣" pass str.isdigit(), and int() of the first raises.
    # Past 9 digits is no count anyone means either.
    count = ascii_int(limit_text)
    if count is None:
        server.out.fail(
            user, "CHATHISTORY", "INVALID_PARAMS", sub, _context(limit_text), "Invalid limit"
        )
        return
    limit = min(count, server.config.chathistory_max)
    try:
        refs = [Ref.parse(p) for p in msg.params[2 : needed - 1]]
        if sub == "TARGETS":
            refs = [Ref.parse(msg.params[1]), Ref.parse(msg.params[2])]
    except ValueError:
        server.out.fail(user, "CHATHISTORY", "INVALID_PARAMS", sub, "Invalid message reference")
        return
    target = msg.params[1]
    if sub == "TARGETS":
        try:
            _targets(server, user, refs[0], refs[1], limit)
        except HistoryStoreError as exc:
            log.error("CHATHISTORY TARGETS: %s", exc)
            server.out.fail(
                user, "CHATHISTORY", "MESSAGE_ERROR", sub, "Messages could not be retrieved"
            )
        return
    key = _target_key(server, user, target)
    if key is None:
        server.out.fail(
            user,
            "CHATHISTORY",
            "INVALID_TARGET",
            sub,
            _context(target),
            "No such target or not allowed",
        )
        return
    if (sub != "LATEST" and refs[0] is None) or (sub == "BETWEEN" and refs[1] is None):
        server.out.fail(user, "CHATHISTORY", "INVALID_PARAMS", sub, "A reference is required")
        return
    try:
        messages = _query(server, sub, key, refs, limit)
    except HistoryStoreError as exc:
        log.error("CHATHISTORY %s %s: %s", sub, key, exc)
        server.out.fail(
            user,
            "CHATHISTORY",
            "MESSAGE_ERROR",
            sub,
            _context(target),
            "Messages could not be retrieved",
        )
        return
    # A msgid that names no message here (not one we minted, or another conversation's)
    # gives no messages: the spec's "If no content exists to return, an empty batch
    # SHOULD be returned", not an error. The store recognises it in O(log n) at most.
    send_history_batch(server, user, target, messages)


def _query(
    server: Server, sub: str, key: str, refs: list[Ref | None], limit: int
) -> list[StoredMessage]:
    """Ask the store; the references a subcommand needs are present (checked above)."""
    store = server.history
    ref = refs[0]
    if sub == "LATEST":
        return store.latest(key, limit, after=ref)
    assert ref is not None
    if sub == "BEFORE":
        return store.before(key, ref, limit)
    if sub == "AFTER":
        return store.after(key, ref, limit)
    if sub == "AROUND":
        return store.around(key, ref, limit)
    end = refs[1]
    assert end is not None
    return store.between(key, ref, end, limit)


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
        server.out.fail(user, "CHATHISTORY", "INVALID_PARAMS", "TARGETS", "Timestamps are required")
        return
    keys = [chan.folded for chan in user.channels.values()]
    names = {chan.folded: chan.name for chan in user.channels.values()}
    me = casefold(user.nick)
    for peer in server.history.dm_peers(me):
        key = dm_key(me, peer)
        keys.append(key)
        online = server.users.get(peer)
        names[key] = online.nick if online is not None else peer
    found = server.history.targets(keys, start, end, limit)  # before the batch: it may fail
    ref = server.out.start_batch(user, "draft/chathistory-targets")
    for key, latest in found:
        tags = {"batch": ref} if ref else {}
        line = Message(
            "CHATHISTORY", ["TARGETS", names.get(key, key), format_time(latest)], server.name, tags
        )
        server.out.send_raw(user, line.to_str())
    server.out.end_batch(user, ref)
