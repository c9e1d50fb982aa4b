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
from typing import TYPE_CHECKING, Any

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.message import Message
from chat_protocol.numbers import ascii_int
from chat_server.history.model import Ref, StoredMessage, dm_key, dm_parties, format_time
from chat_server.history.queries import row_message

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
    if "draft/chathistory" not in user.caps:
        server.out.reply(
            user, N.ERR_UNKNOWNCOMMAND, "CHATHISTORY", "Needs the draft/chathistory capability"
        )
        return
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
    if sub == "TARGETS":
        _targets(server, user, refs[0], refs[1], limit)
        return
    target = msg.params[1]
    scope = readable(server, user, target)
    if scope is None:
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
    key, floor = scope
    deferred = server.defer(user)
    if deferred is None:
        return

    def answered(ok: bool, value: Any) -> None:
        if not ok:
            log.error("CHATHISTORY %s %s: %s", sub, key, value)
            server.complete(deferred, lambda: server.out.fail(
                user, "CHATHISTORY", "MESSAGE_ERROR", sub, _context(target),
                "Messages could not be retrieved"))  # fmt: skip
            return
        if isinstance(value, dict):
            # A msgid that names no message of this conversation (never did, or retention
            # deleted it) is an error, not an empty batch: "nothing there" would be a lie
            # a client cannot tell from the truth. The code is ours (the spec has none).
            server.complete(deferred, lambda: server.out.fail(
                user, "CHATHISTORY", "UNKNOWN_MSGID", sub, _context(target),
                "No message with that msgid in this conversation"))  # fmt: skip
            return
        messages = [row_message(row) for row in value]
        server.complete(deferred, lambda: send_history_batch(server, user, target, messages))

    args = (sub, key, [_ref_spec(ref) for ref in refs], limit, floor)
    server.history.ask("chathistory", args, answered)


def _ref_spec(ref: Ref | None) -> tuple[str, Any] | None:
    """A reference as the worker takes it (queries.RefSpec)."""
    if ref is None:
        return None
    return ("msgid", ref.msgid) if ref.msgid is not None else ("time", ref.time)


def readable(server: Server, user: User, target: str) -> tuple[str, int] | None:
    """The conversation key of a target the user may read, and the lowest sequence it
    may read there; None when it may not read it at all.

    A room's history is its current members' (the room keeps its key and modes when it
    empties, see room_settings.py). Direct messages are those of the user's nick since
    it took that nick: whoever held it before keeps theirs.
    """
    if is_channel(target):
        chan = server.channels.get(casefold(target))
        if chan is None or user not in chan.members:
            return None
        return chan.folded, 0
    if not target or target == "*" or not valid_target_nick(target):
        return None
    return dm_key(user.nick, target), user.history_floor


def valid_target_nick(text: str) -> bool:
    """A nick-like target: no spaces, commas or wildcards (they name nobody)."""
    return not any(c in text for c in " ,*?!@") and len(text) <= 64


def _targets(server: Server, user: User, start: Ref | None, end: Ref | None, limit: int) -> None:
    if start is None or end is None or start.time is None or end.time is None:
        server.out.fail(user, "CHATHISTORY", "INVALID_PARAMS", "TARGETS", "Timestamps are required")
        return
    rooms = [chan.folded for chan in user.channels.values()]
    names = {chan.folded: chan.name for chan in user.channels.values()}
    me = casefold(user.nick)
    deferred = server.defer(user)
    if deferred is None:
        return

    def answered(ok: bool, value: Any) -> None:
        if not ok:
            log.error("CHATHISTORY TARGETS: %s", value)
            server.complete(deferred, lambda: server.out.fail(
                user, "CHATHISTORY", "MESSAGE_ERROR", "TARGETS",
                "Messages could not be retrieved"))  # fmt: skip
            return
        server.complete(deferred, lambda: _send_targets(server, user, me, names, value))

    args = (rooms, me, user.history_floor, start.time, end.time, limit)
    server.history.ask("targets", args, answered)


def _send_targets(
    server: Server, user: User, me: str, names: dict[str, str], found: list[tuple[str, int]]
) -> None:
    ref = server.out.start_batch(user, "draft/chathistory-targets")
    for key, latest_ms in found:
        parties = dm_parties(key)
        if parties is not None:
            peer = parties[1] if parties[0] == me else parties[0]
            online = server.users.get(peer)
            name = online.nick if online is not None else peer
        else:
            name = names.get(key, key)
        tags = {"batch": ref} if ref else {}
        line = Message("CHATHISTORY", ["TARGETS", name, format_time(latest_ms / 1000)],
                       server.name, tags)  # fmt: skip
        server.out.send_raw(user, line.to_str())
    server.out.end_batch(user, ref)
