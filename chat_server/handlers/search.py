"""SEARCH (the ``soju.im/search`` extension): words, sender, time, over history.

``SEARCH in=#room;text=some words;from=nick;after=<time>;before=<time>;limit=N``;
the attributes are escaped like message-tag values. Every attribute is optional; the
answer is the newest ``limit`` matches (at most chathistory_max), oldest first, in a
``soju.im/search`` batch, as the messages were sent (with their time and msgid).

Only what the asker may read is searched: a room it is in (``in=#room``), or without
``in=``, every room it is in and its direct messages (``in=nick``: those with one
person), under the same rules as CHATHISTORY. The work is bounded: the worker stops a
query that runs past its budget and the asker gets ``FAIL SEARCH`` (worker.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel
from chat_protocol.message import Message, parse_tags
from chat_protocol.numbers import ascii_int
from chat_server.handlers.chathistory import readable
from chat_server.history.model import format_time, parse_time, to_ms
from chat_server.history.queries import row_message

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger(__name__)

ATTRIBUTES = frozenset({"in", "text", "from", "after", "before", "limit"})
MAX_TEXT = 256  # characters of search words


def handle_search(server: Server, user: User, msg: Message) -> None:
    if "soju.im/search" not in user.caps:
        server.out.reply(
            user, N.ERR_UNKNOWNCOMMAND, "SEARCH", "Needs the soju.im/search capability"
        )
        return
    attrs = parse_tags(msg.params[0])
    unknown = sorted(set(attrs) - ATTRIBUTES)
    if unknown:
        # The name goes back as a middle parameter: only a plain token can (an empty
        # or spaced one, as in "SEARCH ;;=x", is named "*").
        name = unknown[0][:32]
        shown = name if name and all(c.isalnum() or c in "/._-" for c in name) else "*"
        server.out.fail(user, "SEARCH", "INVALID_PARAMS", shown, "Unknown attribute")
        return
    limit = server.config.chathistory_max
    if "limit" in attrs:
        asked = ascii_int(attrs["limit"])
        if asked is None:
            server.out.fail(user, "SEARCH", "INVALID_PARAMS", "limit", "Invalid limit")
            return
        limit = min(asked, limit)
    bounds: dict[str, int | None] = {}
    for edge in ("after", "before"):
        try:
            bounds[edge] = to_ms(parse_time(attrs[edge])) if attrs.get(edge) else None
        except ValueError:
            server.out.fail(user, "SEARCH", "INVALID_PARAMS", edge, "Invalid timestamp")
            return
    after, before = bounds["after"], bounds["before"]
    text = attrs.get("text", "")[:MAX_TEXT]
    sender = casefold(attrs["from"]) if attrs.get("from") else None
    where = attrs.get("in")
    if where:
        scope = readable(server, user, where)
        if scope is None:
            server.out.fail(user, "SEARCH", "INVALID_PARAMS", "in", "No such target or not allowed")
            return
        conversations = [scope]
        names = {scope[0]: where}
    else:
        conversations = [(chan.folded, 0) for chan in user.channels.values()]
        names = {chan.folded: chan.name for chan in user.channels.values()}
        # Every direct conversation of this nick, read from when it took the nick.
        conversations.append(("dm:*", user.history_floor))
    if not text.split() and not sender and where is None:
        server.out.fail(user, "SEARCH", "INVALID_PARAMS", "text", "Nothing to search for")
        return
    deferred = server.defer(user)
    if deferred is None:
        return

    def answered(ok: bool, value: Any) -> None:
        if not ok:
            log.warning("SEARCH by %s: %s", user.nick, value)
            server.complete(deferred, lambda: server.out.fail(
                user, "SEARCH", "INTERNAL_ERROR", f"Search failed: {value}"))  # fmt: skip
            return
        server.complete(deferred, lambda: _send_results(server, user, names, value))

    args = (conversations, casefold(user.nick), text, sender, after, before, limit)
    server.history.ask("search", args, answered)


def _send_results(server: Server, user: User, names: dict[str, str], rows: list[Any]) -> None:
    ref = server.out.start_batch(user, "soju.im/search")
    with_time = "server-time" in user.caps
    with_tags = "message-tags" in user.caps
    for row in rows:
        stored = row_message(row)
        tags: dict[str, str] = {"batch": ref} if ref else {}
        if with_time:
            tags["time"] = format_time(stored.time)
        if with_tags:
            tags["msgid"] = stored.msgid
            tags.update(stored.tags)
        recipient = stored.recipient
        if is_channel(recipient):
            recipient = names.get(stored.target, recipient)
        line = Message(stored.command, [recipient, stored.text], stored.source, tags)
        server.out.send_raw(user, line.to_str())
    server.out.end_batch(user, ref)
