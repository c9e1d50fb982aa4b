"""Message events (``msg``) applied to this node: its members' copies, the sender's
echo, and the shared history every node keeps in the same order.

Every node that reads a message (all nodes with a member in its room, and the
sender's) delivers it to its own members, the origin included, with the stream id as
msgid and its milliseconds as server-time, so all members everywhere see one order.
The origin also resolves the message for its sender (inflight.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from chat_server.cluster.inflight import Sent
from chat_server.delivery import Delivery
from chat_server.dispatch import captured
from chat_server.history import StoredMessage
from chat_server.history.worker import stream_seq

if TYPE_CHECKING:
    from chat_server.cluster.backplane import Backplane
    from chat_server.model import Channel, User
    from chat_server.server import Server

log = logging.getLogger("chat_server.cluster")


def deliver(server: Server, recipients: Channel | Iterable[User], *args: Any, **kw: Any) -> None:
    """The plain local fan-out, never re-published (events came from another node)."""
    Delivery.deliver(server.delivery, recipients, *args, **kw)


def stored_from(entry_id: str, data: dict[str, Any]) -> tuple[str, float, StoredMessage]:
    """The history record of a ``msg`` event: the same on every node."""
    when = int(entry_id.split("-", 1)[0]) / 1000
    tags = tuple((data.get("g") or {}).items())
    if data.get("b"):
        tags += (("bot", ""),)
    key = data.get("k", "")
    text = data.get("t", "")
    stored = StoredMessage(entry_id, when, key, data["s"], data["c"], data["x"], text, tags)
    return entry_id, when, stored


def entry_seq(entry_id: str) -> int:
    """A stream entry's history sequence (the same on every node)."""
    ms, _, n = entry_id.partition("-")
    return stream_seq(int(ms), int(n or 0))


def apply_msg(
    server: Server, bp: Backplane, entry_id: str, node: str, data: dict[str, Any]
) -> None:
    msgid, when, stored = stored_from(entry_id, data)
    if data["c"] != "TAGMSG":
        server.history.append(stored, entry_seq(entry_id))
    sent = bp.messages.delivered(data.get("o", 0)) if node == bp.node_id else None
    sender = sent.user if sent is not None else server.users.get(data["f"])
    if sender is not None:
        sender.last_spoke = when
    local_sender = sender if sender is not None and sender.conn is not None else None
    if sent is None:
        _deliver_msg(server, data, msgid, when, local_sender)
        return
    # Our own message: its echo answers its label (labeled-response), if it has one.
    conn = local_sender.conn if local_sender is not None and sent.answer is not None else None
    produce = partial(_deliver_msg, server, data, msgid, when, local_sender)
    bp.messages.echoed(sent, captured(conn, server, produce), msgid)


def _deliver_msg(
    server: Server, data: dict[str, Any], msgid: str, when: float, local_sender: User | None
) -> None:
    """A message event to its local recipients, and its echo to a local sender."""
    command = data["c"]
    echo = local_sender is not None and "echo-message" in local_sender.caps
    text = data.get("t", "")
    params = [data["x"]] if command == "TAGMSG" else [data["x"], text]
    common = {
        "client_tags": data.get("g") or None,
        "msgid": msgid,
        "when": when,
        "bot": bool(data.get("b")),
        "sender": local_sender,
        "tags_only": command == "TAGMSG",
    }
    if "ch" in data:
        chan = server.channels.get(data["ch"])
        if chan is not None:
            deliver(server, chan, data["s"], command, params, echo=echo, **common)
        return
    recipient = server.users.get(data["r"])
    targets = [u for u in (recipient, local_sender) if u is not None and u.conn is not None]
    if targets:
        to_self = recipient is local_sender
        deliver(server, list(dict.fromkeys(targets)), data["s"], command, params,
                echo=echo or to_self, **common)  # fmt: skip


def echo_first(server: Server, sent: Sent, first: str) -> None:
    """A retried message (same ``+distchat/once`` token) was already written as
    ``first``: its sender gets that message's echo, with its msgid and time."""
    user = sent.user
    if user.conn is None or "echo-message" not in user.caps:
        return
    data = sent.data
    command = data["c"]
    params = [data["x"]] if command == "TAGMSG" else [data["x"], data.get("t", "")]
    when = int(first.partition("-")[0]) / 1000
    tags = data.get("g") or None
    deliver(server, [user], data["s"], command, params, client_tags=tags, msgid=first,
            when=when, bot=bool(data.get("b")), tags_only=command == "TAGMSG")  # fmt: skip


def load_history(server: Server, history: dict[str, list[Any]]) -> int:
    """Put messages read from the conversations' Redis histories (``dc:h:<key>``) into
    this node's history; returns how many. Writes are idempotent (by sequence), so
    messages the node already has cost nothing."""
    count = 0
    for rows in history.values():
        for entry_id, fields in rows:
            if fields.get("k") == "msg":
                stored = stored_from(entry_id, json.loads(fields["d"]))[2]
                server.history.append(stored, entry_seq(entry_id))
                count += 1
    return count
